//! Parity with PyTorch: for every model, classify-image's logits equal the Python reference's on the same
//! weights and images (max |Δ| ≤ 1e-4, identical top-5), with the seed's preprocessing. The weights are
//! calibrated random initialisations written by scripts/reference.py at test time in both .pth containers
//! (SPEC §4), plus the real EfficientNet-Lite0 weights.
mod common;

use classify_image::ModelId;
use common::{assert_classifies_samples, assert_parity, fixture, real_lite0_weights, reference_logits};

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
    let weights = real_lite0_weights();
    assert_parity("efficientnet_lite0", &weights, &reference_logits("efficientnet_lite0", &weights));
    assert_classifies_samples(ModelId::EfficientnetLite0);
}
