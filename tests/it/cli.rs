//! The command line against the Python original (scripts/classify_image.py): the same stdout, line for line,
//! and the same annotated image, pixel for pixel, for each model on the same weights and image. The one
//! allowed difference: a percentage whose value lies on a rounding boundary may print one hundredth apart
//! (`same_but_rounding` in tests/common checks that it does lie there).
use crate::common;

use assert_cmd::Command;
use common::{fixture, image, real_lite0_weights};
use std::path::Path;

fn classify_image() -> Command {
    Command::cargo_bin("classify-image").unwrap()
}

/// Runs both programs on the sample photo `img` with `model` and `weights` (tests/common's comparison: as many
/// stdout lines, each the same or a hundredth apart on a rounding boundary, and the same annotated PNG).
fn assert_same_as_python(model: &str, img: &str, weights: &Path) {
    common::assert_same_as_python(model, &image(img), weights);
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

/// classify-image's stdout, run from the repository root, offline.
fn stdout_of(args: &[&str]) -> String {
    let out =
        classify_image().current_dir(common::root()).args(args).env("CLASSIFY_IMAGE_OFFLINE", "1").output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// docs/GUIDE.md: "Text output gives each image's block under `== path`": with several images, exactly
/// `== PATH` then K lines `N. label: P%` per image, in the order given (positional paths and -i alike), with the
/// labels and probabilities of the JSON output, and nothing else on stdout.
#[test]
fn several_images_print_one_block_each() {
    let paths = ["images/orange.jpg", "images/coffee.png", "images/chelsea.png"];
    let k = 3;
    let common_args = ["-m", "efficientnet_lite0", "-k", "3"];
    let positional = stdout_of(&[&paths[..], &common_args].concat());
    let with_i = stdout_of(&[&["-i"], &paths[..], &common_args].concat());
    assert_eq!(positional, with_i, "positional paths and -i print the same");
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&stdout_of(&[&paths[..], &common_args, &["--format", "json"]].concat())).unwrap();
    assert_eq!(json.len(), paths.len());
    let mut expected = String::new();
    for (path, record) in paths.iter().zip(&json) {
        assert_eq!(record["image"], *path);
        expected += &format!("== {path}\n");
        let predictions = record["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), k);
        for (rank, p) in predictions.iter().enumerate() {
            let probability = p["probability"].as_f64().unwrap() as f32;
            expected += &format!("{rank}. {}: {:.2}%\n", p["label"].as_str().unwrap(), (probability * 100.0) as f64);
        }
    }
    assert_eq!(positional, expected);
    // The structure itself, independently of the JSON: a header, then ranks 0..K with a two-decimal percentage.
    let lines: Vec<&str> = positional.lines().collect();
    assert_eq!(lines.len(), paths.len() * (k + 1), "{positional}");
    for (block, path) in lines.chunks(k + 1).zip(paths) {
        assert_eq!(block[0], format!("== {path}"));
        for (rank, line) in block[1..].iter().enumerate() {
            let (head, percent) = line.rsplit_once(": ").unwrap_or_else(|| panic!("{line:?}"));
            let label = head.strip_prefix(&format!("{rank}. ")).unwrap_or_else(|| panic!("{line:?}: rank {rank}"));
            assert!(!label.is_empty(), "{line:?}");
            let number = percent.strip_suffix('%').unwrap_or_else(|| panic!("{line:?}"));
            assert!(number.parse::<f64>().is_ok_and(|v| (0.0..=100.0).contains(&v)), "{line:?}");
            assert_eq!(number.split_once('.').map(|(_, d)| d.len()), Some(2), "{line:?}: two decimals");
        }
    }
}

/// The JSON top-5 (class index, probability) of the sample photo `img`.
fn json_top5(img: &str, args: &[&str]) -> Vec<(usize, f64)> {
    let json = stdout_of(&[&["-i", image(img).to_str().unwrap(), "--format", "json", "-k", "5"], args].concat());
    let json: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let predictions = json[0]["predictions"].as_array().unwrap();
    predictions.iter().map(|p| (p["index"].as_u64().unwrap() as usize, p["probability"].as_f64().unwrap())).collect()
}

/// PyTorch's top-5 (the Python reference, with the seed's preparation at the given size, mean and std).
fn pytorch_top5(model: &str, weights: &Path, img: &str, options: &[&str]) -> Vec<(usize, f64)> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut args = crate::os_args!["scripts/reference.py", "logits", "--model", model, "--weights", weights];
    args.extend(crate::os_args!["--out", out.path()]);
    args.extend(options.iter().map(std::ffi::OsString::from));
    args.push(image(img).into());
    let status = common::python_cached(&args, &[weights, &image(img)], &[out.path()]).status;
    assert!(status.success(), "reference.py logits {options:?}");
    let logits = &common::read_logits(out.path())[img];
    let max = logits.iter().copied().fold(f32::MIN, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    common::top_k(logits, 5).into_iter().map(|i| (i, (logits[i] as f64 - max).exp() / sum)).collect()
}

fn assert_close(have: &[(usize, f64)], want: &[(usize, f64)], context: &str) {
    let indices = |v: &[(usize, f64)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(indices(have), indices(want), "{context}: top-5 classes\n{have:?}\n{want:?}");
    for (a, b) in have.iter().zip(want) {
        assert!((a.1 - b.1).abs() <= 1e-4, "{context}: {have:?} vs PyTorch's {want:?}");
    }
}

/// --mean, --std and --size: the model's own values change nothing (stdout and annotated image identical);
/// other values change the result, to PyTorch's on the seed's preparation with those values.
#[test]
fn mean_std_and_size_override_the_preparation() {
    let model = ["-m", "efficientnet_lite0"];
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, args: &[&str]| {
        let png = dir.path().join(format!("{name}.png"));
        let img = image("orange.jpg");
        let stdout =
            stdout_of(&[&["-i", img.to_str().unwrap(), "-o", png.to_str().unwrap()], &model[..], args].concat());
        (stdout, png)
    };
    let (base, base_png) = run("base", &[]);
    assert_eq!(base.lines().count(), 9, "{base}");
    // Lite0's own: 224×224, mean = std = 0.5.
    for (name, args) in [
        ("own-mean-std", &["--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5"][..]),
        ("own-size", &["--size", "224"][..]),
        ("own-all", &["--size", "224", "--mean", "0.5, 0.5, 0.5", "--std", "0.5,0.5,0.5"][..]),
    ] {
        let (stdout, png) = run(name, args);
        assert_eq!(stdout, base, "{args:?}: the model's own values change nothing");
        let (same, detail) = common::pixels_equal(&png, &base_png);
        assert!(same, "{args:?}: {detail}");
    }
    let weights = real_lite0_weights();
    let imagenet = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"];
    for (name, args) in [
        ("imagenet", &imagenet[..]),
        ("mean", &["--mean", "0.4,0.5,0.6"][..]),
        ("std", &["--std", "0.25,0.3,0.35"][..]),
        ("size", &["--size", "256"][..]),
    ] {
        let (stdout, _) = run(name, args);
        assert_ne!(stdout, base, "{args:?} changes the probabilities");
        assert_eq!(stdout.lines().take(4).collect::<Vec<_>>(), base.lines().take(4).collect::<Vec<_>>());
        let have = json_top5("orange.jpg", &[&model[..], args].concat());
        let want = pytorch_top5("efficientnet_lite0", &weights, "orange.jpg", args);
        assert_close(&have, &want, &format!("{args:?}"));
    }
}
