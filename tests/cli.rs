//! The command line against the Python original (scripts/classify_image.py): the same stdout, line for line,
//! and the same annotated image, pixel for pixel, for each model on the same weights and image.
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
    assert_eq!(rs_out, py_out, "{model} on {img}: stdout differs from the Python original");
    let (same, detail) = pixels_equal(&rs_png, &py_png);
    assert!(same, "{model} on {img}: annotated image differs from the Python original's ({detail})");
    eprintln!("{model} on {img}: stdout identical, annotated PNG identical\n{rs_out}");
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
