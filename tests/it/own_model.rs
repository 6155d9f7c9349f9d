//! Your own model: a fine-tuned state dict for a zoo architecture with another number of classes, and a
//! TorchScript module, both exported by the Python reference at test time, each with its own labels and input
//! size; classify-image must give PyTorch's logits and print the user's labels.
use crate::common;

use assert_cmd::Command;
use classify_image::{models::Preset, preprocess, Classifier, ModelId};
use common::{export_fixture, image, images, max_abs_diff, read_logits, top_k};
use std::path::Path;

fn imagenet(size: i64) -> Preset {
    Preset { size, ..classify_image::models::SEED }
}

fn assert_logits(classifier: &Classifier, expected: &Path, classes: usize) {
    let expected = read_logits(expected);
    assert_eq!(classifier.classes() as usize, classes);
    for path in images() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let logits = classifier.logits(&preprocess::read_image(&path).unwrap()).unwrap().squeeze_dim(0);
        let have = Vec::<f32>::try_from(&logits).unwrap();
        let want = &expected[&name];
        let diff = max_abs_diff(&have, want);
        eprintln!("{name}: max |Δlogit| = {diff:.2e}");
        assert!(diff <= 1e-4, "{name}: {diff:e}");
        assert_eq!(top_k(&have, 5), top_k(want, 5));
    }
}

/// Runs the CLI and checks that it prints five results in the user's labels, led by PyTorch's top-1.
fn assert_cli_uses_labels(args: &[&str], labels: &Path, logits: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("classify-image")
        .unwrap()
        .arg("-i")
        .arg(image("coffee.png"))
        .args(args)
        .arg("--labels")
        .arg(labels)
        .arg("-o")
        .arg(dir.path().join("out.png"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = std::fs::read_to_string(labels).unwrap().lines().map(str::to_owned).collect();
    let want = &read_logits(logits)["coffee.png"];
    let results: Vec<&str> = stdout.lines().skip(4).collect();
    assert_eq!(results.len(), 5, "{stdout}");
    assert!(results[0].starts_with(&format!("0. {}: ", names[top_k(want, 1)[0]])), "{stdout}");
    assert!(results.iter().all(|l| names.iter().any(|n| l.contains(&format!(" {n}: ")))), "{stdout}");
    assert!(dir.path().join("out.png").is_file());
}

#[test]
fn fine_tuned_ten_class_resnet18_state_dict() {
    let dir = export_fixture();
    let weights = dir.join("finetuned_resnet18.pth");
    let classifier = Classifier::new(ModelId::Resnet18, &weights, tch::Device::Cpu).unwrap().with_preset(imagenet(160));
    assert_logits(&classifier, &dir.join("finetuned.logits.json"), 10);
    let weights = weights.to_str().unwrap();
    assert_cli_uses_labels(
        &["-m", "resnet18", "--weights", weights, "--size", "160"],
        &dir.join("finetuned.labels.txt"),
        &dir.join("finetuned.logits.json"),
    );
}

#[test]
fn torchscript_module() {
    let dir = export_fixture();
    let module = dir.join("scripted_mobilenet_v2.pt");
    let classifier =
        Classifier::torchscript(&module, imagenet(128), tch::Device::Cpu, classify_image::models::Precision::Fp32)
            .unwrap();
    assert_logits(&classifier, &dir.join("scripted.logits.json"), 7);
    assert_cli_uses_labels(
        &["--torchscript", module.to_str().unwrap(), "--size", "128"],
        &dir.join("scripted.labels.txt"),
        &dir.join("scripted.logits.json"),
    );
}

#[test]
fn a_state_dict_is_not_torchscript_and_labels_must_match_the_classes() {
    let dir = export_fixture();
    let state_dict = dir.join("finetuned_resnet18.pth");
    let out_dir = tempfile::tempdir().unwrap();
    let out_png = out_dir.path().join("x.png");
    let out_png = out_png.to_str().unwrap();
    let run = |args: &[&str]| {
        Command::cargo_bin("classify-image")
            .unwrap()
            .arg("-i")
            .arg(image("coffee.png"))
            .args(args)
            .args(["-o", out_png])
            .output()
            .unwrap()
    };
    let out = run(&["--torchscript", state_dict.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.trim_end().lines().count() == 1 && stderr.contains("is not a TorchScript file"), "{stderr}");

    let out = run(&["-m", "resnet18", "--weights", state_dict.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("1000 labels but the model has 10 classes"), "{stderr}");
    assert!(!Path::new(out_png).exists());
}
