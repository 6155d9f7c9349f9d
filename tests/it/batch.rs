//! Many images in one run: a folder of 50 (made here, with one corrupt file) classified in batches gives the
//! one-at-a-time results; the corrupt file is reported and the run goes on, with exit code 1; JSON, JSON
//! Lines and CSV follow the schema documented in src/report.rs and docs/GUIDE.md.
use crate::common;

use assert_cmd::Command;
use common::images;
use opencv::{core, imgcodecs, imgproc, prelude::*};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// 50 images in nested folders: the five photos, flipped, rotated and resized, plus a corrupt "image" and a
/// text file that is not picked up (wrong extension).
fn make_folder(dir: &Path) {
    let mut n = 0;
    for (i, photo) in images().iter().enumerate() {
        let image = imgcodecs::imread(photo.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
        for variant in 0..10 {
            if n == 49 {
                break;
            }
            let mut out = core::Mat::default();
            match variant % 3 {
                0 => core::flip(&image, &mut out, 1).unwrap(),
                1 => core::rotate(&image, &mut out, core::ROTATE_90_CLOCKWISE).unwrap(),
                _ => {
                    let size = core::Size::new(100 + 40 * variant, 90 + 30 * variant);
                    imgproc::resize(&image, &mut out, size, 0.0, 0.0, imgproc::INTER_AREA).unwrap()
                }
            }
            let sub = dir.join(format!("set{}", i % 2));
            std::fs::create_dir_all(&sub).unwrap();
            let ext = if variant % 2 == 0 { "png" } else { "jpg" };
            let path = sub.join(format!("{:02}-{variant}.{ext}", i));
            imgcodecs::imwrite(path.to_str().unwrap(), &out, &core::Vector::new()).unwrap();
            n += 1;
        }
    }
    std::fs::write(dir.join("set0/corrupt.jpg"), b"\xff\xd8\xff\xe0 not really a JPEG").unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::cargo_bin("classify-image").unwrap().args(args).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Checks one record against the schema; returns (image, Some(predictions) or None for a failure).
fn check_record(v: &Value, k: usize) -> (String, Option<Vec<(usize, f64)>>) {
    let obj = v.as_object().expect("a record is an object");
    let image = obj["image"].as_str().expect("image is a string").to_string();
    assert_eq!(obj["model"], "efficientnet_lite0");
    if let Some(error) = obj.get("error") {
        assert!(error.as_str().is_some_and(|e| !e.is_empty()));
        assert!(!obj.contains_key("predictions"));
        assert_eq!(obj.len(), 3, "{obj:?}");
        return (image, None);
    }
    assert_eq!(obj.len(), 3, "image, model, predictions: {obj:?}");
    let preds = obj["predictions"].as_array().expect("predictions is an array");
    assert_eq!(preds.len(), k);
    let labels = classify_image::Labels::imagenet();
    let mut out = Vec::new();
    for (rank, p) in preds.iter().enumerate() {
        let p = p.as_object().unwrap();
        assert_eq!(p.len(), 4, "rank, index, label, probability: {p:?}");
        assert_eq!(p["rank"].as_u64(), Some(rank as u64));
        let index = p["index"].as_u64().expect("index is an integer") as usize;
        assert_eq!(p["label"].as_str(), Some(labels.get(index)));
        let prob = p["probability"].as_f64().expect("probability is a number");
        assert!((0.0..=1.0).contains(&prob));
        if let Some(&(_, prev)) = out.last() {
            assert!(prob <= prev, "descending probabilities");
        }
        out.push((index, prob));
    }
    (image, Some(out))
}

#[test]
fn a_folder_of_fifty_in_batches_equals_one_at_a_time_and_survives_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("photos");
    make_folder(&folder);
    let out_dir = dir.path().join("annotated");
    let f = folder.to_str().unwrap();
    let inputs_before = snapshot(&folder);
    assert_eq!(inputs_before.len(), 51, "49 images, the corrupt one and notes.txt");
    let (code, stdout, stderr) = run(&[
        "-i",
        f,
        "-m",
        "efficientnet_lite0",
        "--batch-size",
        "8",
        "--format",
        "json",
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "one input failed: {stderr}");
    assert!(stderr.contains("corrupt.jpg") && stderr.contains("cannot decode"), "{stderr}");
    assert!(stderr.contains("classified 49 of 50 image(s)"), "{stderr}");
    let records: Vec<Value> = serde_json::from_str::<Value>(&stdout).unwrap().as_array().unwrap().clone();
    assert_eq!(records.len(), 50, "every image has a record, the .txt file none");
    let batched: HashMap<String, Option<Vec<(usize, f64)>>> = records.iter().map(|r| check_record(r, 5)).collect();
    let names: Vec<String> = records.iter().map(|r| r["image"].as_str().unwrap().to_string()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "a stable, sorted order");
    assert_eq!(batched.values().filter(|p| p.is_none()).count(), 1);

    // One image per forward pass, JSON Lines: the same classes and probabilities (to kernel rounding).
    let (code, stdout, _) = run(&["-i", f, "-m", "efficientnet_lite0", "--batch-size", "1", "--format", "jsonl"]);
    assert_eq!(code, Some(1));
    let single: HashMap<String, Option<Vec<(usize, f64)>>> =
        stdout.lines().map(|l| check_record(&serde_json::from_str(l).unwrap(), 5)).collect();
    assert_eq!(single.len(), 50);
    for (image, preds) in &single {
        match (preds, &batched[image]) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                let (ia, ib): (Vec<_>, Vec<_>) = (a.iter().map(|p| p.0).collect(), b.iter().map(|p| p.0).collect());
                assert_eq!(ia, ib, "{image}: top-5 classes");
                for (x, y) in a.iter().zip(b) {
                    assert!((x.1 - y.1).abs() <= 1e-4, "{image}: {} vs {}", x.1, y.1);
                }
            }
            _ => panic!("{image}: failed in one run only"),
        }
    }
    // Annotated copies under their own relative names, none for the corrupt file, inputs untouched.
    let written: Vec<_> = walk(&out_dir);
    assert_eq!(written.len(), 49);
    assert!(out_dir.join("set0").is_dir() && out_dir.join("set1").is_dir());
    assert!(!out_dir.join("set0/corrupt.jpg").exists());
    // Exactly one copy per classified input, under the input's path relative to the folder given, and nothing
    // else (no temporary file, no copy of the corrupt image or of notes.txt).
    let written: BTreeSet<PathBuf> = written.iter().map(|p| p.strip_prefix(&out_dir).unwrap().to_path_buf()).collect();
    let expected: BTreeSet<PathBuf> = inputs_before
        .keys()
        .filter(|p| p.as_path() != Path::new("set0/corrupt.jpg") && p.as_path() != Path::new("notes.txt"))
        .cloned()
        .collect();
    assert_eq!(expected.len(), 49);
    assert_eq!(written, expected, "the annotated copies' relative paths");
    for relative in &written {
        let size = |p: &Path| imgcodecs::imread(p.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap().size().unwrap();
        let (copy, input) = (out_dir.join(relative), folder.join(relative));
        assert_eq!(size(&copy), size(&input), "{}: the copy has the input's size", relative.display());
    }
    // Both runs left every input byte for byte as it was, and added nothing to the input folder.
    assert_eq!(snapshot(&folder), inputs_before, "the inputs are unchanged");
}

/// Every file under `dir`, by its path relative to `dir`, with its SHA-256 (coreutils' sha256sum).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    walk(dir).into_iter().map(|p| (p.strip_prefix(dir).unwrap().to_path_buf(), common::sha256sum(&p))).collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            all.extend(walk(&e.path()));
        } else {
            all.push(e.path());
        }
    }
    all
}

#[test]
fn csv_has_the_documented_columns_and_quotes_labels_with_commas() {
    let squirrel = common::image("squirrel_cls.jpg");
    let (code, stdout, stderr) = run(&[
        "-i",
        squirrel.to_str().unwrap(),
        "/nonexistent.png",
        "-m",
        "efficientnet_lite0",
        "--format",
        "csv",
        "-k",
        "3",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("image,model,rank,index,label,probability,error,warning"));
    let rows: Vec<Vec<String>> = lines.map(parse_csv_line).collect();
    assert_eq!(rows.len(), 4, "three predictions and one failure: {stdout}");
    for (rank, row) in rows[..3].iter().enumerate() {
        assert_eq!(row.len(), 8, "{row:?}");
        assert_eq!(row[2], rank.to_string());
        let index: usize = row[3].parse().unwrap();
        assert_eq!(row[4], classify_image::Labels::imagenet().get(index));
        let p: f64 = row[5].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert!(row[6].is_empty() && row[7].is_empty(), "no error, no warning: {row:?}");
    }
    assert_eq!(rows[0][4], "fox_squirrel, eastern_fox_squirrel, Sciurus_niger", "a quoted label with commas");
    assert_eq!(rows[3][0], "/nonexistent.png");
    assert!(rows[3][2..6].iter().all(String::is_empty) && rows[3][6].contains("cannot read image"));
}

/// RFC 4180 fields of one line.
fn parse_csv_line(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[test]
fn top_k_and_output_rules() {
    let coffee = common::image("coffee.png");
    let c = coffee.to_str().unwrap();
    let (code, stdout, _) = run(&["-i", c, "-m", "efficientnet_lite0", "--format", "jsonl", "-k", "10"]);
    assert_eq!(code, Some(0));
    check_record(&serde_json::from_str(stdout.trim()).unwrap(), 10);
    let (code, _, stderr) = run(&["-i", c, "-m", "efficientnet_lite0", "--format", "jsonl", "-k", "1001"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--top-k 1001") && stderr.trim_end().lines().count() == 1, "{stderr}");
    let (code, _, stderr) = run(&["-i", c, c, "-m", "efficientnet_lite0", "-o", "/tmp/x.png"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--output-dir"), "{stderr}");
}
