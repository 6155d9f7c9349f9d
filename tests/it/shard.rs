//! Many machines: `--shard K/N` splits a folder run into disjoint parts whose union is the whole run, record for
//! record; `--shard auto` takes K from a Kubernetes Indexed Job's or a Slurm array's environment; `--resume FILE`
//! survives SIGKILL at any moment and, run again until done, gives the uninterrupted run's records, each once.
//! The runs classify with `--batch-size 1` where records must be equal to the last bit: a batch's size changes
//! the kernels' rounding.
use crate::common;

use opencv::{core, imgcodecs, imgproc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The folder's name, given relative to the run's working directory, so that records name
/// `photos/a/photo-01.png` whichever temporary directory holds it.
const FOLDER: &str = "photos";
const IMAGES: usize = 24;
const ENV: [&str; 6] = [
    "JOB_COMPLETION_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_STEP",
];

/// 24 small images (the sample photos, resized) in `dir/photos` and folders under it; returns their paths as
/// the records name them.
fn make_folder(dir: &Path) -> Vec<String> {
    let photos = common::images();
    let subs = ["", "a", "a/deep", "b", "c d"];
    let mut names = Vec::new();
    for i in 0..IMAGES {
        let photo = imgcodecs::imread(photos[i % photos.len()].to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
        let mut small = core::Mat::default();
        let size = core::Size::new(40 + 3 * i as i32, 36 + 2 * i as i32);
        imgproc::resize(&photo, &mut small, size, 0.0, 0.0, imgproc::INTER_AREA).unwrap();
        let sub = Path::new(FOLDER).join(subs[i % subs.len()]);
        std::fs::create_dir_all(dir.join(&sub)).unwrap();
        let name = sub.join(format!("photo-{i:02}.{}", if i % 3 == 0 { "jpg" } else { "png" }));
        imgcodecs::imwrite(dir.join(&name).to_str().unwrap(), &small, &core::Vector::new()).unwrap();
        names.push(name.to_str().unwrap().to_string());
    }
    names.sort();
    names
}

/// classify-image on the folder in `dir` with `args` added; no job environment.
fn base(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_classify-image"));
    cmd.current_dir(dir).args([FOLDER, "-m", "efficientnet_lite0", "-k", "3"]).args(args).stdin(Stdio::null());
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The same in JSON Lines, batches of one.
fn command(dir: &Path, args: &[&str]) -> Command {
    base(dir, &[&["--batch-size", "1", "--format", "jsonl"][..], args].concat())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Records by image; each line must be one complete JSON object, and no image may come twice.
fn records(jsonl: &str) -> BTreeMap<String, Value> {
    let mut by_image = BTreeMap::new();
    for line in jsonl.lines() {
        let record: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON record ({e}): {line}"));
        let image = record["image"].as_str().expect("a record names its image").to_string();
        assert!(by_image.insert(image, record).is_none(), "an image recorded twice: {line}");
    }
    by_image
}

/// One uninterrupted run over the folder, made once: the records every other run is compared with.
fn whole_run() -> &'static BTreeMap<String, Value> {
    static WHOLE: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    WHOLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let names = make_folder(dir.path());
        let out = command(dir.path(), &["-q"]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let whole = records(&text(&out.stdout));
        assert!(whole.values().all(|r| r["predictions"].as_array().is_some_and(|p| p.len() == 3)));
        assert_eq!(whole.keys().cloned().collect::<Vec<_>>(), names, "every image once");
        whole
    })
}

#[test]
fn three_shards_in_parallel_are_disjoint_and_together_the_whole_run() {
    let whole = whole_run();
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());
    // All three at once, as three machines would run them, each with its own resume file.
    let children: Vec<Child> = (1..=3)
        .map(|k| {
            let (shard, resume) = (format!("{k}/3"), format!("shard-{k}.jsonl"));
            command(dir.path(), &["--shard", &shard, "--resume", &resume])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut union = BTreeMap::new();
    for (k, out) in (1..=3).zip(&outputs) {
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "shard {k}/3: {stderr}");
        let stdout = text(&out.stdout);
        let shard = records(&stdout);
        assert!(!shard.is_empty(), "shard {k}/3 holds some of the {IMAGES} images");
        let held = format!("shard {k}/3 holds {} of the {IMAGES} image(s)", shard.len());
        assert!(stderr.contains(&held), "{stderr}");
        let file = std::fs::read_to_string(dir.path().join(format!("shard-{k}.jsonl"))).unwrap();
        assert_eq!(file, stdout, "shard {k}/3: the resume file holds what stdout printed");
        for (image, record) in shard {
            assert!(union.insert(image.clone(), record).is_none(), "{image} is in two shards");
        }
    }
    assert_eq!(union.len(), IMAGES);
    assert_eq!(&union, whole, "the shards' records are the whole run's");
}

/// xorshift64: the same kill points on every run of the test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Complete lines in `path` (0 while it does not exist).
fn lines_in(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |bytes| bytes.iter().filter(|&&b| b == b'\n').count())
}

#[test]
fn a_run_killed_at_random_points_and_resumed_equals_an_uninterrupted_run() {
    const SEED: u64 = 0x5eed_2024_cafe_f00d;
    let whole = whole_run();
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());
    let resume = dir.path().join("out/run.jsonl");
    let run = || command(dir.path(), &["-q", "--resume", "out/run.jsonl"]);
    let mut rng = Rng(SEED);
    let mut kills = Vec::new();
    // The first kill comes at a random moment of the start-up (the model loading, most likely); the next ones a
    // random number of records into the run, plus a random few milliseconds, mid-image or mid-write.
    for attempt in 0..5 {
        let before = lines_in(&resume);
        let mut child = run().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let started = Instant::now();
        if attempt == 0 {
            std::thread::sleep(Duration::from_millis(50 + rng.below(500)));
        } else {
            let target = before + 1 + rng.below(4) as usize;
            while lines_in(&resume) < target && child.try_wait().unwrap().is_none() {
                assert!(started.elapsed() < Duration::from_secs(60), "no progress after a restart");
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(rng.below(25)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills.push((attempt, before, lines_in(&resume)));
    }
    eprintln!("kills (attempt, records before, records after), seed {SEED:#x}: {kills:?}");
    assert!(lines_in(&resume) < IMAGES, "the kills left work to do (seed {SEED:#x}): {kills:?}");
    // As if the last kill had struck mid-write: half a line at the end of the file.
    let done = records(&std::fs::read_to_string(&resume).unwrap());
    let next = whole.keys().find(|image| !done.contains_key(*image)).unwrap();
    let line = serde_json::to_string(&whole[next]).unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&resume).unwrap();
    std::io::Write::write_all(&mut file, &line.as_bytes()[..line.len() / 2]).unwrap();
    drop(file);

    let out = run().output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("last line was cut off") && stderr.contains("run.jsonl"), "{stderr}");
    let file = std::fs::read_to_string(&resume).unwrap();
    assert!(file.ends_with('\n'), "complete lines only");
    let recorded = records(&file);
    assert_eq!(&recorded, whole, "kills {kills:?} (seed {SEED:#x})");
    // This run printed the images it classified, and those only.
    let printed = records(&text(&out.stdout));
    assert_eq!(printed.len(), IMAGES - done.len(), "{kills:?}");
    assert!(printed.contains_key(next) && printed.keys().all(|image| !done.contains_key(image)));

    // Everything recorded: said, exit 0, the model not even loaded, the file untouched.
    let out = command(dir.path(), &["--resume", "out/run.jsonl"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("nothing to do: {IMAGES} of {IMAGES} already recorded")), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&resume).unwrap(), file);
}

#[test]
fn a_half_done_file_is_completed_in_batches_and_stdout_is_this_runs_report() {
    let whole = whole_run();
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());
    // Every other image recorded already, one of them as a failure: failures count as done.
    let mut text_before = String::new();
    for (i, (image, record)) in whole.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let line = if i == 0 {
            serde_json::json!({"image": image, "model": "efficientnet_lite0", "error": "was unreadable"}).to_string()
        } else {
            serde_json::to_string(record).unwrap()
        };
        text_before += &format!("{line}\n");
    }
    std::fs::write(dir.path().join("run.jsonl"), &text_before).unwrap();
    let out = base(dir.path(), &["--resume", "run.jsonl", "--batch-size", "5", "--format", "json"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("classified 12 of 12 image(s)") && stderr.contains("12 of 24 already recorded"),
        "{stderr}"
    );
    // stdout: this run's twelve, as the JSON array --format json prints.
    let printed: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone();
    let file = std::fs::read_to_string(dir.path().join("run.jsonl")).unwrap();
    assert!(file.starts_with(&text_before), "appended, nothing rewritten");
    let appended: Vec<Value> = file[text_before.len()..].lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(printed, appended, "the same records on stdout and in the file");
    let all = records(&file);
    assert_eq!(all.keys().collect::<Vec<_>>(), whole.keys().collect::<Vec<_>>(), "each image once");
    // Batches of five round differently from batches of one, within 1e-4; the classes are the same.
    for record in &appended {
        let want = &whole[record["image"].as_str().unwrap()]["predictions"];
        for (got, want) in record["predictions"].as_array().unwrap().iter().zip(want.as_array().unwrap()) {
            assert_eq!(got["index"], want["index"], "{record}");
            let (a, b) = (got["probability"].as_f64().unwrap(), want["probability"].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-4, "{record}");
        }
    }
}

/// A resume file that records every image of the folder (as failures), so that a run only selects its shard,
/// says how many images it holds, and stops before loading the model.
fn all_recorded(dir: &Path, names: &[String]) -> PathBuf {
    let path = dir.join("all.jsonl");
    let lines: Vec<String> = names
        .iter()
        .map(|image| serde_json::json!({"image": image, "model": "efficientnet_lite0", "error": "x"}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// The one stderr line of a run that had nothing to do, after checking it exited 0.
fn nothing_to_do(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.starts_with("nothing to do: ") && stderr.lines().count() == 1, "{stderr}");
    stderr
}

#[test]
fn auto_takes_the_index_from_kubernetes_or_slurm() {
    let dir = tempfile::tempdir().unwrap();
    let names = make_folder(dir.path());
    all_recorded(dir.path(), &names);
    let resume = ["--resume", "all.jsonl"];
    let explicit: Vec<String> = (1..=3)
        .map(|k| nothing_to_do(&mut command(dir.path(), &[&["--shard", &format!("{k}/3")][..], &resume].concat())))
        .collect();
    let held: usize = explicit
        .iter()
        .map(|line| {
            let count = line.split(" holds ").nth(1).unwrap().split(' ').next().unwrap();
            count.parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(held, IMAGES, "{explicit:?}");
    // Kubernetes: the pod's 0-based index; N from the option.
    let kubernetes = nothing_to_do(
        command(dir.path(), &[&["--shard", "auto/3"][..], &resume].concat()).env("JOB_COMPLETION_INDEX", "1"),
    );
    assert_eq!(kubernetes, explicit[1]);
    // Slurm: ids from SLURM_ARRAY_TASK_MIN (an array 5-7), N from SLURM_ARRAY_TASK_COUNT.
    let slurm = |id: &str| {
        let mut cmd = command(dir.path(), &[&["--shard", "auto"][..], &resume].concat());
        cmd.envs([("SLURM_ARRAY_TASK_ID", id), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
        cmd.env("SLURM_ARRAY_TASK_MAX", "7");
        cmd
    };
    assert_eq!(nothing_to_do(&mut slurm("5")), explicit[0]);
    assert_eq!(nothing_to_do(&mut slurm("7")), explicit[2]);
    let out = slurm("8").output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.lines().count() == 1 && stderr.contains("SLURM_ARRAY_TASK_ID=8"), "{stderr}");
}

/// The README's Kubernetes `args` and Slurm command line, as written there, with the folders and the job's
/// variables filled in.
fn readme_jobs() -> (Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let yaml = readme.split("```yaml\n").nth(1).expect("README has a Kubernetes manifest").split("```").next().unwrap();
    let args = yaml.split("args: ").nth(1).expect("the manifest has args").split(']').next().unwrap().to_string() + "]";
    let kubernetes: Vec<String> = serde_json::from_str(&args.replace('\n', " ")).expect("args is a flow sequence");
    let script = readme.split("```bash\n#!/bin/bash\n").nth(1).expect("README has a Slurm script");
    let line = script.lines().find(|l| l.starts_with("classify-image ")).expect("the script runs classify-image");
    let slurm = line.split_whitespace().skip(1).map(|w| w.trim_matches('"').to_string()).collect();
    (kubernetes, slurm)
}

#[test]
fn the_readmes_kubernetes_job_and_slurm_array_classify_every_image_once() {
    let (kubernetes, slurm) = readme_jobs();
    let dir = tempfile::tempdir().unwrap();
    let names = make_folder(dir.path());
    let data = dir.path().join(FOLDER).to_str().unwrap().to_string();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let fill = |args: &[String], index: &str| -> Vec<String> {
        args.iter()
            .map(|a| match a.as_str() {
                "/data" | "/data/photos" => data.clone(),
                _ => a
                    .replace("$(JOB_COMPLETION_INDEX)", index)
                    .replace("$SLURM_ARRAY_TASK_ID", index)
                    .replace("/out/", "out/")
                    .replace("out/", &format!("{}/", out.display())),
            })
            .collect()
    };
    let run = |args: Vec<String>, env: &[(&str, String)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_classify-image"));
        cmd.current_dir(dir.path()).args(&args).stdin(Stdio::null());
        for var in ENV {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
    };
    // All eight pods of the Indexed Job.
    for index in 0..8 {
        run(fill(&kubernetes, &index.to_string()), &[("JOB_COMPLETION_INDEX", index.to_string())]);
    }
    let shard = |i: usize| std::fs::read_to_string(out.join(format!("shard-{i}.jsonl"))).unwrap_or_default();
    let mut every: Vec<String> = Vec::new();
    for i in 0..8 {
        every.extend(records(&shard(i)).into_keys().map(|image| image.replace(&format!("{data}/"), "")));
    }
    every.sort();
    let expected: Vec<String> = names.iter().map(|n| n.trim_start_matches(&format!("{FOLDER}/")).to_string()).collect();
    assert_eq!(every, expected, "the eight shards hold every image once");
    // The Slurm array's first task takes the same shard as the Job's first pod.
    let first = shard(0);
    std::fs::remove_file(out.join("shard-0.jsonl")).unwrap();
    let slurm_env = [("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "7"), ("SLURM_ARRAY_TASK_COUNT", "8")];
    let mut env: Vec<(&str, String)> = slurm_env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    env.push(("SLURM_ARRAY_TASK_ID", "0".into()));
    run(fill(&slurm, "0"), &env);
    assert_eq!(records(&shard(0)), records(&first), "Slurm task 0 is Kubernetes index 0");
}

#[test]
fn bad_shards_and_resume_files_are_one_line_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());
    let fails = |args: &[&str], env: &[(&str, &str)], needle: &str| {
        let before = snapshot(dir.path());
        let out = command(dir.path(), args).envs(env.iter().copied()).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(needle), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(snapshot(dir.path()), before, "{args:?}: nothing written");
    };
    let resume = ["--resume", "new/run.jsonl"];
    fails(&[&["--shard", "0/3"][..], &resume].concat(), &[], "--shard 0/3: K counts from 1");
    fails(&[&["--shard", "4/3"][..], &resume].concat(), &[], "--shard 4/3: there are only 3 shards");
    fails(&[&["--shard", "x"][..], &resume].concat(), &[], "--shard x: give K/N");
    fails(&[&["--shard", "auto"][..], &resume].concat(), &[], "no shard index in the environment");
    fails(&["--shard", "auto"], &[("JOB_COMPLETION_INDEX", "0")], "give --shard auto/N");
    fails(&["--shard", "auto/2"], &[("JOB_COMPLETION_INDEX", "2")], "JOB_COMPLETION_INDEX=2 is not below N=2");
    // A complete line that is not a record: named with its line number, the file left as it is.
    let record = r#"{"image":"photos/photo-00.jpg","model":"efficientnet_lite0","error":"x"}"#;
    std::fs::write(dir.path().join("bad.jsonl"), format!("{record}\n{{\"image\": 1\n{record}")).unwrap();
    fails(&["--resume", "bad.jsonl"], &[], "--resume bad.jsonl: line 2: not JSON");
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeSet<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect()
}
