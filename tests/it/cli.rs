//! The command line against the Python original (scripts/classify_image.py): the same stdout, line for line,
//! and the same annotated image, pixel for pixel, for each model on the same weights and image. The one
//! allowed difference: a percentage whose value lies on a rounding boundary may print one hundredth apart
//! (`same_but_rounding` checks that it does lie there).
mod common;

use assert_cmd::Command;
use common::{fixture, image, python, real_lite0_weights};
use opencv::{core, imgcodecs, prelude::*};
use std::path::Path;

fn classify_image() -> Command {
    Command::cargo_bin("classify-image").unwrap()
}

fn pixels_equal(a: &Path, b: &Path) -> (bool, String) {
    let read = |p: &Path| imgcodecs::imread(p.to_str().unwrap(), imgcodecs::IMREAD_UNCHANGED).unwrap();
    let (a, b) = (read(a), read(b));
    if a.size().unwrap() != b.size().unwrap() || a.typ() != b.typ() {
        return (false, format!("sizes {:?} vs {:?}", a.size().unwrap(), b.size().unwrap()));
    }
    let diff = core::norm2(&a, &b, core::NORM_INF, &core::no_array()).unwrap();
    (diff == 0.0, format!("max pixel difference {diff}"))
}

/// Runs both programs on `image` with `model` and `weights`; both write their annotated image.
fn assert_same_as_python(model: &str, img: &str, weights: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let (py_png, rs_png) = (dir.path().join("python.png"), dir.path().join("rust.png"));
    let py = python()
        .args(["scripts/classify_image.py", "-i"])
        .arg(image(img))
        .args(["-m", model, "--weights"])
        .arg(weights)
        .arg("--output")
        .arg(&py_png)
        .output()
        .unwrap();
    assert!(py.status.success(), "Python original failed: {}", String::from_utf8_lossy(&py.stderr));
    let rs = classify_image()
        .arg("-i")
        .arg(image(img))
        .args(["-m", model, "--weights"])
        .arg(weights)
        .arg("--output")
        .arg(&rs_png)
        .output()
        .unwrap();
    assert!(rs.status.success(), "classify-image failed: {}", String::from_utf8_lossy(&rs.stderr));
    let (py_out, rs_out) = (String::from_utf8(py.stdout).unwrap(), String::from_utf8(rs.stdout).unwrap());
    assert_eq!(rs_out.lines().count(), 9, "{rs_out}");
    let rounded_apart =
        if rs_out == py_out { Vec::new() } else { same_but_rounding(model, img, weights, &rs_out, &py_out) };
    // The annotated image: the Python original's, or, where the caption's percentage was rounded the other way,
    // the original's drawing (cv2.putText, as in classify_image.py) of classify-image's caption.
    let expected_png = if rounded_apart.contains(&0) {
        let caption = caption_of(rs_out.lines().nth(4).unwrap());
        let drawn = dir.path().join("python-drawn.png");
        let status = python()
            .args(["-c", DRAW, image(img).to_str().unwrap(), &caption, drawn.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        drawn
    } else {
        py_png
    };
    let (same, detail) = pixels_equal(&rs_png, &expected_png);
    assert!(same, "{model} on {img}: annotated image differs from the Python original's ({detail})");
    let rounding = if rounded_apart.is_empty() {
        String::new()
    } else {
        format!(" but for the percentages of ranks {rounded_apart:?}, rounded the other way on a boundary")
    };
    eprintln!("{model} on {img}: stdout identical{rounding}, annotated PNG identical\n{rs_out}");
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
fn same_but_rounding(model: &str, img: &str, weights: &Path, rs_out: &str, py_out: &str) -> Vec<usize> {
    let json = classify_image()
        .arg("-i")
        .arg(image(img))
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
        let context = format!("{model} on {img}: stdout differs from the Python original:\n{rs}\n{py}");
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

#[test]
fn vgg16_output_equals_the_python_original() {
    assert_same_as_python("vgg16", "chelsea.png", &fixture("vgg16").zip);
}

#[test]
fn vgg19_output_equals_the_python_original() {
    assert_same_as_python("vgg19", "coffee.png", &fixture("vgg19").legacy);
}

#[test]
fn inception_output_equals_the_python_original() {
    assert_same_as_python("inception", "squirrel_cls.jpg", &fixture("inception").zip);
}

#[test]
fn densenet_output_equals_the_python_original() {
    assert_same_as_python("densenet", "orange.jpg", &fixture("densenet").legacy);
}

#[test]
fn resnet_output_equals_the_python_original() {
    assert_same_as_python("resnet", "baboon.jpg", &fixture("resnet").zip);
}

#[test]
fn efficientnet_lite0_real_weights_output_equals_the_python_original() {
    for img in ["chelsea.png", "coffee.png", "squirrel_cls.jpg", "orange.jpg"] {
        assert_same_as_python("efficientnet_lite0", img, &real_lite0_weights());
    }
}

#[test]
fn default_model_is_vgg16_and_official_weights_come_from_torch_home() {
    // The official file name in $TORCH_HOME/hub/checkpoints is found without --weights.
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("hub/checkpoints");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::copy(fixture("vgg16").zip, cache.join("vgg16-397923af.pth")).unwrap();
    let out = home.path().join("out.png");
    let assert = classify_image()
        .env("TORCH_HOME", home.path())
        .arg("-i")
        .arg(image("chelsea.png"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.starts_with("[INFO] loading vgg16...\n"), "{stdout}");
    assert!(stdout.contains("[INFO] classifying image with 'vgg16'..."));
    assert!(out.is_file());
}

#[test]
fn help_names_the_seed_models_and_weights_list_every_model() {
    let assert = classify_image().arg("--help").assert().success();
    let help = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    for m in ["vgg16", "vgg19", "inception", "densenet", "resnet", "weights list", "--output", "--weights"] {
        assert!(help.contains(m), "--help lacks {m}");
    }
    let assert = classify_image().args(["weights", "list"]).assert().success();
    let list = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    for m in classify_image::MODELS {
        assert!(list.lines().any(|l| l.starts_with(&format!("{} ", m.name))), "weights list lacks {}", m.name);
    }
}
