//! Parity with PyTorch: for every model, classify-image's logits equal the Python reference's on the same
//! weights and images (max |Δ| ≤ 1e-4, identical top-5), with the seed's preprocessing. The weights are
//! calibrated random initialisations written by scripts/reference.py at test time in both .pth containers
//! (default initialisations give logits that do not depend on the input, so they would prove nothing), plus the real EfficientNet-Lite0 weights.
use crate::common;

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

#[test]
fn safetensors_weights_give_the_same_logits() {
    use safetensors::tensor::{serialize_to_file, Dtype, TensorView};
    let fx = fixture("resnet");
    let tensors = classify_image::weights::read(&fx.zip).unwrap();
    let bytes: Vec<(String, Vec<i64>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let t = t.to_kind(tch::Kind::Float).contiguous();
            let values = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
            (name.clone(), t.size(), values.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(name, size, data)| {
            let shape: Vec<usize> = size.iter().map(|&d| d as usize).collect();
            (name.clone(), TensorView::new(Dtype::F32, shape, data).unwrap())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet50.safetensors");
    serialize_to_file(views, &None, &path).unwrap();
    assert_parity("resnet", &path, &fx.logits);
}

/// Where oneDNN cannot be called directly (another libtorch than the build's), the convolutions go through
/// libtorch's fused operator, which computes the same primitives: `CLASSIFY_IMAGE_DIRECT_ONEDNN=0` forces that
/// path, and ResNet-50 (plain and residual-sum convolutions) and EfficientNet-Lite0 (depthwise, ReLU6) give the
/// same probabilities, in float32 and bfloat16, on the five photos.
#[test]
fn convolutions_through_libtorchs_operator_give_the_same_predictions() {
    use assert_cmd::Command;
    let photos: Vec<String> = common::images().iter().map(|p| p.display().to_string()).collect();
    let resnet = fixture("resnet").zip;
    let lite0 = real_lite0_weights();
    for (model, weights) in [("resnet50", &resnet), ("efficientnet_lite0", &lite0)] {
        for precision in ["fp32", "bf16"] {
            let run = |direct: &str| -> Vec<serde_json::Value> {
                let out = Command::cargo_bin("classify-image")
                    .unwrap()
                    .env("CLASSIFY_IMAGE_DIRECT_ONEDNN", direct)
                    .args(&photos)
                    .args(["-m", model, "--weights", &weights.display().to_string(), "--precision", precision])
                    .args(["--format", "json", "-q", "-k", "5"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                serde_json::from_slice(&out.stdout).unwrap()
            };
            let (direct, operator) = (run("1"), run("0"));
            assert_eq!(direct.len(), photos.len());
            for (a, b) in direct.iter().zip(&operator) {
                let (pa, pb) = (a["predictions"].as_array().unwrap(), b["predictions"].as_array().unwrap());
                for (x, y) in pa.iter().zip(pb) {
                    assert_eq!(x["label"], y["label"], "{model} {precision} {}", a["image"]);
                    let (x, y) = (x["probability"].as_f64().unwrap(), y["probability"].as_f64().unwrap());
                    assert!((x - y).abs() < 1e-5, "{model} {precision} {}: {x} vs {y}", a["image"]);
                }
            }
        }
    }
}
