//! Parity with PyTorch: for every model, classify-image's logits equal the Python reference's on the same
//! weights and images (max |Δ| ≤ 1e-4, identical top-5), with the seed's preprocessing. The weights are
//! calibrated random initialisations written by scripts/reference.py at test time in both .pth containers
//! (SPEC §4), plus the real EfficientNet-Lite0 weights.
mod common;

use classify_image::{preprocess, Classifier, Labels, ModelId};
use common::{fixture, image, images, max_abs_diff, read_logits, top_k};
use std::collections::HashMap;
use std::path::Path;
use tch::Device;

const TOLERANCE: f32 = 1e-4;

fn rust_logits(model: &str, weights: &Path) -> HashMap<String, Vec<f32>> {
    let id = ModelId::from_name(model).unwrap();
    let classifier = Classifier::new(id, weights, Device::Cpu).unwrap();
    images()
        .iter()
        .map(|path| {
            let image = preprocess::read_image(path).unwrap();
            let logits = classifier.logits(&image).unwrap().squeeze_dim(0);
            (path.file_name().unwrap().to_string_lossy().into_owned(), Vec::<f32>::try_from(&logits).unwrap())
        })
        .collect()
}

fn assert_parity(model: &str, weights: &Path, expected: &HashMap<String, Vec<f32>>) {
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
    // The fixture must be able to tell models apart: the images give different top-1s or clearly different logits.
    let rows: Vec<&Vec<f32>> = expected.values().collect();
    assert!(max_abs_diff(rows[0], rows[1]) > 0.1, "{model}: logits do not depend on the input");
}

fn parity(model: &str) {
    let fx = fixture(model);
    assert_parity(model, &fx.zip, &fx.logits);
    assert_parity(model, &fx.legacy, &fx.logits);
}

#[test]
fn vgg16_matches_torchvision() {
    parity("vgg16");
}

#[test]
fn vgg19_matches_torchvision() {
    parity("vgg19");
}

#[test]
fn inception_matches_torchvision() {
    parity("inception");
}

#[test]
fn densenet_matches_torchvision() {
    parity("densenet");
}

#[test]
fn resnet_matches_torchvision() {
    parity("resnet");
}

#[test]
fn efficientnet_lite0_matches_the_reference_on_random_weights() {
    parity("efficientnet_lite0");
}

#[test]
fn efficientnet_lite0_real_weights_match_and_classify_the_samples() {
    let weights = common::real_lite0_weights();
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = common::python()
        .args(["scripts/reference.py", "logits", "--model", "efficientnet_lite0", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(out.path())
        .args(images())
        .status()
        .unwrap();
    assert!(status.success());
    let expected = read_logits(out.path());
    assert_parity("efficientnet_lite0", &weights, &expected);

    let labels = Labels::imagenet();
    let classifier = Classifier::official(ModelId::EfficientnetLite0, Device::Cpu).unwrap();
    let top1 = |name: &str| {
        let scores = classifier.classify(&preprocess::read_image(&image(name)).unwrap()).unwrap();
        labels.get(scores.best().index).to_string()
    };
    let cat = top1("chelsea.png");
    assert!(["Egyptian_cat", "tabby, tabby_cat", "tiger_cat"].contains(&cat.as_str()), "chelsea.png: {cat}");
    let coffee = top1("coffee.png");
    assert!(coffee == "espresso" || coffee == "cup", "coffee.png: {coffee}");
    assert!(top1("squirrel_cls.jpg").starts_with("fox_squirrel"));
    assert_eq!(top1("orange.jpg"), "orange");
}
