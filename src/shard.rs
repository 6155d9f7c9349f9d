//! `--shard`: which part of a folder run this process classifies. An image's shard is picked by a hash of its
//! name alone (the first 8 bytes of the SHA-256 of the name's bytes, as a big-endian number, modulo N), so the
//! N shards are disjoint, together they hold every image, and adding or removing images never moves the others.
//! With `auto` the index comes from the job engine's environment: a Kubernetes Indexed Job or a Slurm job
//! array. Parsing takes the environment's values as arguments, so it is tested without touching the process's.
use classify_image::error::Result;
use classify_image::inputs::{self, Input};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// The Kubernetes Indexed Job's index of this pod, 0-based. Kubernetes does not say how many there are.
pub const ENV_KUBERNETES_INDEX: &str = "JOB_COMPLETION_INDEX";
/// The Slurm job array's task id; with its lowest id and its number of tasks.
pub const ENV_SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
pub const ENV_SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
pub const ENV_SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
/// The array's highest id, and its step (`--array=0-14:2`), when it has one.
pub const ENV_SLURM_MAX: &str = "SLURM_ARRAY_TASK_MAX";
pub const ENV_SLURM_STEP: &str = "SLURM_ARRAY_TASK_STEP";

/// One shard of N: `index` counts from 0 (`--shard 1/3` is index 0 of 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Shard `index` (0-based) of `count`; `None` unless `index < count`.
    pub fn new(index: u64, count: u64) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// Whether the image named `name` is this shard's.
    pub fn holds(&self, name: &Path) -> bool {
        of(name.as_os_str().as_encoded_bytes(), self.count) == self.index
    }
}

/// As the option writes it: 1-based, `2/3`.
impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

/// The command line's paths expanded as [`inputs::expand`] does, and of those the inputs of `shard`, in order. An
/// image under a folder is placed by its path relative to that folder (the same on every machine, wherever the
/// folder is mounted); a file named directly, by its path as given.
pub fn select(paths: &[PathBuf], shard: Shard) -> Result<(Vec<Input>, Vec<Input>)> {
    let (mut all, mut held) = (Vec::new(), Vec::new());
    for path in paths {
        let folder = path.is_dir();
        for input in inputs::expand(std::slice::from_ref(path))? {
            if shard.holds(if folder { &input.relative } else { path }) {
                held.push(input.clone());
            }
            all.push(input);
        }
    }
    Ok((all, held))
}

/// The shard (0-based, below `count`) of the name `bytes`.
pub fn of(bytes: &[u8], count: u64) -> u64 {
    let digest = Sha256::digest(bytes);
    let first: [u8; 8] = digest[..8].try_into().expect("a SHA-256 has 32 bytes");
    u64::from_be_bytes(first) % count
}

/// The environment variables that `--shard auto` reads, as the process has them.
#[derive(Debug, Default, Clone)]
pub struct Env {
    pub kubernetes_index: Option<String>,
    pub slurm_id: Option<String>,
    pub slurm_min: Option<String>,
    pub slurm_count: Option<String>,
    pub slurm_max: Option<String>,
    pub slurm_step: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Env {
            kubernetes_index: var(ENV_KUBERNETES_INDEX),
            slurm_id: var(ENV_SLURM_ID),
            slurm_min: var(ENV_SLURM_MIN),
            slurm_count: var(ENV_SLURM_COUNT),
            slurm_max: var(ENV_SLURM_MAX),
            slurm_step: var(ENV_SLURM_STEP),
        }
    }
}

const FORMS: &str = "give K/N (shard K of N, K from 1 to N, e.g. 1/3), auto, or auto/N";

/// The shard that `--shard ARG` names, with `env` for `auto`. The error is the whole message, one line.
pub fn resolve(arg: &str, env: &Env) -> Result<Shard, String> {
    let fail = |why: String| format!("--shard {arg}: {why}");
    let (k, n) = arg.split_once('/').map_or((arg, None), |(k, n)| (k, Some(n)));
    let count = n.map(|n| whole(n).ok_or_else(|| fail(FORMS.into()))).transpose()?;
    if count == Some(0) {
        return Err(fail("N, the number of shards, must be at least 1".into()));
    }
    if k.eq_ignore_ascii_case("auto") {
        return from_env(env, count).map_err(fail);
    }
    let (Some(k), Some(count)) = (whole(k), count) else { return Err(fail(FORMS.into())) };
    match k {
        0 => Err(fail(format!("K counts from 1; the shards of {count} are 1/{count} to {count}/{count}"))),
        k => Shard::new(k - 1, count).ok_or_else(|| fail(format!("there are only {count} shards; K is 1 to {count}"))),
    }
}

/// A whole number as written in an option or the environment: digits only.
fn whole(text: &str) -> Option<u64> {
    let text = text.trim();
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// The shard of this Kubernetes pod or Slurm task; `count` is N when the option gives it. Kubernetes is looked at
/// first.
fn from_env(env: &Env, count: Option<u64>) -> Result<Shard, String> {
    let number = |name: &str, value: &str| {
        whole(value).ok_or_else(|| format!("{name}={value} is not a whole number; check the job's environment"))
    };
    if let Some(value) = &env.kubernetes_index {
        let index = number(ENV_KUBERNETES_INDEX, value)?;
        let Some(count) = count else {
            return Err(format!(
                "{ENV_KUBERNETES_INDEX}={index} says which pod of a Kubernetes Indexed Job this is, but Kubernetes \
                 does not say how many there are; give --shard auto/N with N the Job's completions"
            ));
        };
        return Shard::new(index, count).ok_or_else(|| {
            format!("{ENV_KUBERNETES_INDEX}={index} is not below N={count}; make N the Job's completions")
        });
    }
    if let Some(value) = &env.slurm_id {
        let id = number(ENV_SLURM_ID, value)?;
        let min = env.slurm_min.as_deref().map(|v| number(ENV_SLURM_MIN, v)).transpose()?.unwrap_or(0);
        let step = env.slurm_step.as_deref().map(|v| number(ENV_SLURM_STEP, v)).transpose()?.unwrap_or(1).max(1);
        let tasks = env.slurm_count.as_deref().map(|v| number(ENV_SLURM_COUNT, v)).transpose()?;
        let count = match (count, tasks) {
            (Some(n), Some(tasks)) if n != tasks => {
                return Err(format!(
                    "N={n} but the Slurm array has {ENV_SLURM_COUNT}={tasks} tasks; submit N tasks (--array=0-{}), \
                     or give --shard K/N",
                    n - 1
                ))
            }
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                return Err(format!("{ENV_SLURM_COUNT} is not set; give --shard auto/N with N the array's tasks"))
            }
        };
        if count == 0 {
            return Err(format!("{ENV_SLURM_COUNT}=0: a Slurm array has at least one task"));
        }
        // An array with gaps (`--array=3,5`, some tasks submitted again) would number its tasks differently.
        let max = env.slurm_max.as_deref().map(|v| number(ENV_SLURM_MAX, v)).transpose()?;
        if let Some(max) =
            max.filter(|&max| Some(max) != (count - 1).checked_mul(step).and_then(|s| s.checked_add(min)))
        {
            return Err(format!(
                "the Slurm array's ids are not consecutive ({ENV_SLURM_MIN}={min}, {ENV_SLURM_MAX}={max}, \
                 {count} tasks); run shards as one array, such as --array=0-{}, and to run some again resubmit it \
                 whole (finished shards stop at once) or give --shard K/N",
                count - 1
            ));
        }
        let offset = id.checked_sub(min).filter(|offset| offset % step == 0).ok_or_else(|| {
            format!(
                "{ENV_SLURM_ID}={id} is not {ENV_SLURM_MIN}={min} plus a multiple of the step {step}; use an \
                 array of consecutive ids, such as --array=0-{}",
                count - 1
            )
        })?;
        return Shard::new(offset / step, count).ok_or_else(|| {
            format!(
                "{ENV_SLURM_ID}={id} is task {} of an array of {count} ({ENV_SLURM_MIN}={min}); use an array of \
                 consecutive ids, such as --array=0-{}",
                offset / step + 1,
                count - 1
            )
        });
    }
    Err(format!(
        "no shard index in the environment ({ENV_KUBERNETES_INDEX} of a Kubernetes Indexed Job, or {ENV_SLURM_ID} \
         of a Slurm job array); outside such a job give --shard K/N"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(arg: &str) -> Result<Shard, String> {
        resolve(arg, &Env::default())
    }

    fn kubernetes(index: &str) -> Env {
        Env { kubernetes_index: Some(index.into()), ..Env::default() }
    }

    fn slurm(id: &str, min: &str, count: &str) -> Env {
        Env {
            slurm_id: Some(id.into()),
            slurm_min: Some(min.into()),
            slurm_count: Some(count.into()),
            ..Env::default()
        }
    }

    #[test]
    fn k_of_n_counts_from_one() {
        assert_eq!(fixed("1/3"), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(fixed("3/3"), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(fixed("1/1"), Ok(Shard { index: 0, count: 1 }));
        assert_eq!(fixed("2/3").unwrap().to_string(), "2/3");
        for (bad, needle) in [
            ("0/3", "K counts from 1"),
            ("4/3", "only 3 shards"),
            ("1/0", "at least 1"),
            ("x", "give K/N"),
            ("3", "give K/N"),
            ("1/", "give K/N"),
            ("/3", "give K/N"),
            ("-1/3", "give K/N"),
            ("1/3/5", "give K/N"),
            ("1.5/3", "give K/N"),
            ("", "give K/N"),
        ] {
            let err = fixed(bad).unwrap_err();
            assert!(err.starts_with(&format!("--shard {bad}: ")) && err.contains(needle), "{bad}: {err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn auto_reads_kubernetes_with_n_given() {
        assert_eq!(resolve("auto/4", &kubernetes("0")), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(resolve("auto/4", &kubernetes("3")), Ok(Shard { index: 3, count: 4 }));
        let err = resolve("auto", &kubernetes("2")).unwrap_err();
        assert!(err.contains("JOB_COMPLETION_INDEX=2") && err.contains("--shard auto/N"), "{err}");
        assert!(resolve("auto/4", &kubernetes("4")).unwrap_err().contains("not below N=4"));
        assert!(resolve("auto/4", &kubernetes("x")).unwrap_err().contains("not a whole number"));
        assert!(resolve("auto/0", &kubernetes("0")).unwrap_err().contains("at least 1"));
    }

    #[test]
    fn auto_reads_a_slurm_array_from_its_base() {
        assert_eq!(resolve("auto", &slurm("0", "0", "8")), Ok(Shard { index: 0, count: 8 }));
        assert_eq!(resolve("auto", &slurm("7", "0", "8")), Ok(Shard { index: 7, count: 8 }));
        // --array=1-8: ids from 1.
        assert_eq!(resolve("auto", &slurm("1", "1", "8")), Ok(Shard { index: 0, count: 8 }));
        assert_eq!(resolve("auto", &slurm("8", "1", "8")), Ok(Shard { index: 7, count: 8 }));
        assert_eq!(resolve("auto/8", &slurm("3", "0", "8")), Ok(Shard { index: 3, count: 8 }));
        // --array=0-6:2: ids 0, 2, 4, 6.
        let stepped = Env { slurm_step: Some("2".into()), ..slurm("4", "0", "4") };
        assert_eq!(resolve("auto", &stepped), Ok(Shard { index: 2, count: 4 }));
        for (env, needle) in [
            (slurm("3", "0", "3"), "task 4 of an array of 3"),
            (slurm("0", "1", "3"), "is not SLURM_ARRAY_TASK_MIN=1 plus"),
            (slurm("1", "0", "0"), "SLURM_ARRAY_TASK_COUNT=0"),
            (Env { slurm_id: Some("1".into()), ..Env::default() }, "SLURM_ARRAY_TASK_COUNT is not set"),
            (Env { slurm_step: Some("2".into()), ..slurm("3", "0", "4") }, "step 2"),
        ] {
            let err = resolve("auto", &env).unwrap_err();
            assert!(err.contains(needle), "{env:?}: {err}");
        }
        assert!(resolve("auto/4", &slurm("1", "0", "8")).unwrap_err().contains("SLURM_ARRAY_TASK_COUNT=8"));
        // With its highest id: 0-7 is whole; 3,5 (tasks submitted again) is not, and is refused.
        let whole = Env { slurm_max: Some("7".into()), ..slurm("7", "0", "8") };
        assert_eq!(resolve("auto", &whole), Ok(Shard { index: 7, count: 8 }));
        let stepped = Env { slurm_max: Some("6".into()), slurm_step: Some("2".into()), ..slurm("6", "0", "4") };
        assert_eq!(resolve("auto", &stepped), Ok(Shard { index: 3, count: 4 }));
        let gaps = Env { slurm_max: Some("5".into()), ..slurm("3", "3", "2") };
        let err = resolve("auto", &gaps).unwrap_err();
        assert!(err.contains("not consecutive") && err.contains("SLURM_ARRAY_TASK_MAX=5"), "{err}");
        // Without the count, N from the option.
        let no_count = Env { slurm_id: Some("2".into()), ..Env::default() };
        assert_eq!(resolve("auto/3", &no_count), Ok(Shard { index: 2, count: 3 }));
    }

    #[test]
    fn auto_without_a_job_says_what_it_looked_for() {
        let err = resolve("auto", &Env::default()).unwrap_err();
        assert!(err.contains("JOB_COMPLETION_INDEX") && err.contains("SLURM_ARRAY_TASK_ID"), "{err}");
        assert!(err.contains("--shard K/N") && !err.contains('\n'), "{err}");
        assert!(resolve("auto/3", &Env::default()).is_err());
    }

    #[test]
    fn the_hash_is_sha256_and_stays_what_it_is() {
        // The first 8 bytes of SHA-256("") are e3b0c44298fc1c14; of SHA-256("abc") ba7816bf8f01cfea.
        assert_eq!(of(b"", u64::MAX), 0xe3b0_c442_98fc_1c14);
        assert_eq!(of(b"abc", u64::MAX), 0xba78_16bf_8f01_cfea);
        assert_eq!(of(b"abc", 3), 0xba78_16bf_8f01_cfea % 3);
    }

    #[test]
    fn shards_split_every_name_once() {
        let shards: Vec<Shard> = (0..4).map(|k| Shard::new(k, 4).unwrap()).collect();
        let mut sizes = [0; 4];
        for i in 0..1000 {
            let name = format!("set{}/photo-{i:04}.jpg", i % 7);
            let holders: Vec<usize> = (0..4).filter(|&k| shards[k].holds(Path::new(&name))).collect();
            assert_eq!(holders.len(), 1, "{name}: in exactly one shard");
            sizes[holders[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| (200..=300).contains(&n)), "about a quarter each: {sizes:?}");
    }

    /// The inputs of each of `count` shards of `paths`, by path.
    fn split(paths: &[PathBuf], count: u64) -> Vec<Vec<PathBuf>> {
        (0..count)
            .map(|k| select(paths, Shard::new(k, count).unwrap()).unwrap().1.into_iter().map(|i| i.path).collect())
            .collect()
    }

    #[test]
    fn a_folder_splits_by_relative_name_and_added_files_move_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (root, other) = (dir.path().join("data"), dir.path().join("elsewhere"));
        let touch = |path: PathBuf| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        };
        for i in 0..30 {
            touch(root.join(format!("sub{}/{i}.png", i % 3)));
        }
        let direct = dir.path().join("named/direct.jpg");
        touch(direct.clone());
        let paths = [root.clone(), direct.clone()];
        let before = split(&paths, 3);
        let all: Vec<PathBuf> = before.concat();
        assert_eq!(all.len(), 31, "every input in one shard");
        assert_eq!(all.iter().collect::<std::collections::BTreeSet<_>>().len(), 31, "no input in two");
        assert!(before.iter().all(|shard| !shard.is_empty()));
        let (all, _) = select(&paths, Shard::new(0, 3).unwrap()).unwrap();
        assert_eq!(all.len(), 31);
        // A file under a folder is placed by its path relative to that folder; one named directly by its path.
        let direct_shard = of(direct.as_os_str().as_encoded_bytes(), 3) as usize;
        assert!(before[direct_shard].contains(&direct));
        let relative_shard = of(b"sub1/1.png", 3) as usize;
        assert!(before[relative_shard].contains(&root.join("sub1/1.png")));
        // Twenty more files, one more folder: the first ones stay where they were.
        for i in 30..50 {
            touch(root.join(format!("sub{}/{i}.png", i % 4)));
        }
        let after = split(&paths, 3);
        for (k, (old, new)) in before.iter().zip(&after).enumerate() {
            assert!(old.iter().all(|p| new.contains(p)), "shard {k}: {old:?} within {new:?}");
        }
        assert_eq!(after.concat().len(), 51);
        // The same tree under another folder name splits the same way.
        std::fs::rename(&root, &other).unwrap();
        let moved = split(std::slice::from_ref(&other), 3);
        for (old, new) in after.iter().zip(&moved) {
            let rel = |paths: &[PathBuf], base: &Path| -> Vec<PathBuf> {
                paths.iter().filter_map(|p| p.strip_prefix(base).ok().map(Path::to_path_buf)).collect()
            };
            assert_eq!(rel(old, &root), rel(new, &other));
        }
    }
}
