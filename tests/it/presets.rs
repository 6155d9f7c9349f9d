//! --preset torchvision: for each weights of every model, the resize, crop, interpolation, mean and std are those of the
//! official weights' own eval transform as torchvision defines it (`Weights.transforms()`, read by the Python
//! reference, not from our registry); logits equal torchvision's on the same preprocessed tensor (torchvision's
//! transform applied by the reference, with PIL); classify-image's own preparation is that tensor (Pillow's
//! resize bit for bit, bilinear and bicubic); the command line prepares images as the library does. And the
//! guide's table of what the preset changes holds, cell for cell.
use crate::common;

use assert_cmd::Command;
use classify_image::models::PresetKind;
use classify_image::{preprocess, Classifier, ModelId};
use common::{fixture, images, max_abs_diff, read_logits, real_lite0_weights, top_k, zip_fixture};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Our preparation is torchvision's up to float32 rounding: Pillow's resize bit for bit (`classify_image::resize`),
/// then `x / 255` and the normalisation, which torchvision computes in float32 and the seed's arithmetic in float64.
/// Measured: 0 on every sample photo and model, the JPEGs included (OpenCV and PIL decode them alike).
const MAX_DIFF: f64 = 1e-6;

/// What the reference says torchvision's eval transform for `model`'s official weights is.
fn assert_matches_torchvision(model: &str, transform: &Value) {
    let id = ModelId::from_name(model).unwrap();
    let preset = id.preset(PresetKind::Torchvision);
    let int = |k: &str| transform[k].as_i64().unwrap_or_else(|| panic!("{model}: {k} in {transform}"));
    assert_eq!(preset.resize, Some(int("resize")), "{model}: resize of the shorter side, torchvision's {transform}");
    assert_eq!(preset.size, int("crop"), "{model}: centre crop, torchvision's {transform}");
    // What classify-image implements: torchvision's antialiased bilinear or bicubic resize.
    assert_eq!(transform["interpolation"], preset.interpolation.name(), "{model}: {transform}");
    assert_eq!(transform["antialias"], true, "{model}: {transform}");
    let triple =
        |k: &str| -> Vec<f64> { transform[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
    assert_eq!(preset.mean.to_vec(), triple("mean"), "{model}: mean");
    assert_eq!(preset.std.to_vec(), triple("std"), "{model}: std");
    if let Some(url) = transform["url"].as_str() {
        // The transform is that of the weights classify-image uses.
        let file = id.weights().file;
        assert_eq!(file.url, Some(url), "{model}: official weights");
        assert!(url.ends_with(&format!("/{}", file.file)), "{model}: {url} vs {}", file.file);
    }
}

fn parity(model: &str, weights: &Path) {
    let id = ModelId::from_name(model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No sizes given: the reference takes them from torchvision's weights.
    let mut args = crate::os_args!["scripts/reference.py", "tv-inputs", "--model", model, "--weights", weights];
    args.extend(crate::os_args!["--out-dir", dir.path()]);
    args.extend(images().into_iter().map(std::ffi::OsString::from));
    let photos = images();
    let inputs: Vec<&Path> = std::iter::once(weights).chain(photos.iter().map(PathBuf::as_path)).collect();
    let out = common::python_cached(&args, &inputs, &[dir.path()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let transform: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("transform.json")).unwrap()).unwrap();
    assert_matches_torchvision(model, &transform);
    let crop = transform["crop"].as_i64().unwrap();
    let expected = read_logits(&dir.path().join("logits.json"));
    let classifier =
        Classifier::new(id, weights, tch::Device::Cpu).unwrap().with_preset(id.preset(PresetKind::Torchvision));
    let mut worst = 0f64;
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
        let max_diff = (ours - &theirs).abs().max().double_value(&[]);
        eprintln!("{model} {name}: logits Δ {diff:.1e}; our preprocessing vs torchvision's: max |Δ| {max_diff:e}");
        assert!(max_diff <= MAX_DIFF, "{model} {name}: our preparation is {max_diff:e} from torchvision's");
        worst = worst.max(max_diff);
    }
    eprintln!("{model}: worst max |Δ| of the preparation {worst:e}");
    assert_cli_prepares_as_the_library(model, weights, &classifier);
}

/// `classify-image --preset torchvision` gives, for every photo, the library's predictions with the torchvision
/// preset (so the option reaches the preparation checked above).
fn assert_cli_prepares_as_the_library(model: &str, weights: &Path, classifier: &Classifier) {
    let out = Command::cargo_bin("classify-image")
        .unwrap()
        .args(images())
        .args(["-m", model, "--preset", "torchvision", "--format", "json", "-k", "5", "--batch-size", "1", "--weights"])
        .arg(weights)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records.len(), images().len());
    for (record, path) in records.iter().zip(images()) {
        let scores = classifier.classify(&preprocess::read_image(&path).unwrap()).unwrap();
        let want: Vec<(u64, f64)> = scores.top(5).iter().map(|p| (p.index as u64, p.probability as f64)).collect();
        let have: Vec<(u64, f64)> = record["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["index"].as_u64().unwrap(), p["probability"].as_f64().unwrap()))
            .collect();
        let context = format!("{model} {}: CLI {have:?} vs library {want:?}", path.display());
        assert_eq!(
            have.iter().map(|p| p.0).collect::<Vec<_>>(),
            want.iter().map(|p| p.0).collect::<Vec<_>>(),
            "{context}"
        );
        assert!(have.iter().zip(&want).all(|(a, b)| (a.1 - b.1).abs() <= 1e-6), "{context}");
    }
}

#[test]
fn vgg() {
    parity("vgg16", &fixture("vgg16").zip);
}

#[test]
fn resnet_v1_and_v2_resize() {
    let weights = fixture("resnet").zip;
    parity("resnet50.IMAGENET1K_V1", &weights);
    parity("resnet50", &weights); // IMAGENET1K_V2: 232 → 224
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
fn efficientnet_bicubic() {
    parity("efficientnet_b0", &zip_fixture("efficientnet_b0").zip); // bicubic, 256 → 224
}

#[test]
fn efficientnet_lite() {
    parity("efficientnet_lite0", &real_lite0_weights());
}

/// Every torchvision model of the registry, each architecture with each of its weights: `--preset torchvision`
/// is those weights' own transform.
#[test]
fn every_torchvision_model_has_its_weights_transform() {
    let out = tempfile::NamedTempFile::new().unwrap();
    let names: Vec<&str> = ModelId::all()
        .filter(|id| id.weights().file.url.is_some_and(|u| u.starts_with("https://download.pytorch.org/")))
        .map(ModelId::name)
        .collect();
    let mut args = crate::os_args!["scripts/reference.py", "tv-transforms", "--out", out.path()];
    args.extend(names.iter().map(Into::into));
    assert!(common::python_cached(&args, &[], &[out.path()]).status.success());
    let transforms: HashMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(out.path()).unwrap()).unwrap();
    for name in &names {
        assert_matches_torchvision(name, transforms.get(*name).unwrap_or_else(|| panic!("no transform for {name}")));
    }
    assert_eq!(names.len(), 114, "torchvision's ImageNet-1k classification weights");
}

/// docs/GUIDE.md, "What the preset changes": each cell (top-1 label and probability to 0.1%) of the table, by running
/// the command it names (`classify-image -i images -m MODEL --preset P -k 1`): text, in `== path` blocks.
#[test]
fn the_guides_preset_table_holds() {
    let guide = std::fs::read_to_string(common::root().join("docs/GUIDE.md")).unwrap();
    let section = guide.split("## What the preset changes").nth(1).expect("the guide's preset section");
    let mut rows = section.lines().skip_while(|l| !l.starts_with("| model, preset |"));
    let header: Vec<String> = cells(rows.next().expect("the table's header"));
    let photos = &header[1..];
    assert_eq!(photos, ["baboon", "chelsea", "coffee", "orange", "squirrel_cls"]);
    let mut checked = 0;
    for row in rows.skip(1).take_while(|l| l.starts_with('|')) {
        let cells = cells(row);
        let (model, preset) = cells[0].split_once(", ").unwrap();
        let (model, preset) = (model.trim_matches('`'), preset.trim());
        let run = |format: &str| {
            let out = Command::cargo_bin("classify-image")
                .unwrap()
                .current_dir(common::root())
                .args(["-i", "images", "-m", model, "--preset", preset, "-k", "1", "--format", format])
                .env("CLASSIFY_IMAGE_OFFLINE", "1")
                .output()
                .unwrap();
            assert!(out.status.success(), "{model} {preset}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        let text = run("text");
        let json: Vec<Value> = serde_json::from_str(&run("json")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            2 * photos.len(),
            "{model} {preset}: one `== path` block of one line per photo\n{text}"
        );
        for ((photo, cell), (block, record)) in photos.iter().zip(&cells[1..]).zip(lines.chunks(2).zip(&json)) {
            let path = record["image"].as_str().unwrap();
            assert!(Path::new(path).file_stem().is_some_and(|s| s == photo.as_str()), "{path} for {photo}");
            assert_eq!(block[0], format!("== {path}"), "{model} {preset}\n{text}");
            let prediction = &record["predictions"][0];
            let label = prediction["label"].as_str().unwrap();
            let p = prediction["probability"].as_f64().unwrap();
            assert_eq!(block[1], format!("0. {label}: {:.2}%", (p as f32 * 100.0) as f64), "{model} {preset}\n{text}");
            let first_name = label.split(", ").next().unwrap();
            let have = format!("{first_name} {:.1}%", p * 100.0);
            assert_eq!(&have, cell, "docs/GUIDE.md table, {model} {preset}, {photo}");
            checked += 1;
        }
    }
    assert_eq!(checked, 30, "six rows of five photos");
}

fn cells(row: &str) -> Vec<String> {
    row.trim().trim_matches('|').split('|').map(|c| c.trim().to_string()).collect()
}
