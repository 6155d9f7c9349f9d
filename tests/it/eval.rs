//! `classify-image eval`: the committed eval set (evalset/, see its README) is what its manifest says; on it,
//! with EfficientNet-Lite0's real weights, each image's top-1 and whether its class is in the top 5 equal
//! PyTorch's (scripts/eval_reference.py, the seed's preparation), and so do the accuracies; a CSV file gives
//! what its folder gives; an unreadable image is reported and counted as a failure; what is wrong with the data
//! set is one line, exit code 2, and nothing written.
use crate::common;

use assert_cmd::Command;
use common::root;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A row of evalset/manifest.csv.
struct Row {
    path: String,
    wnid: String,
    class: usize,
    sha256: String,
}

fn manifest() -> Vec<Row> {
    let mut reader = csv::Reader::from_path(root().join("evalset/manifest.csv")).unwrap();
    assert_eq!(reader.headers().unwrap(), vec!["path", "wnid", "class_index", "sha256", "original"]);
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Row { path: r[0].into(), wnid: r[1].into(), class: r[2].parse().unwrap(), sha256: r[3].into() }
        })
        .collect()
}

/// `classify-image eval ARGS` from the repository root, offline.
fn eval<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(args: I) -> std::process::Output {
    Command::cargo_bin("classify-image")
        .unwrap()
        .arg("eval")
        .args(args)
        .current_dir(root())
        .env("CLASSIFY_IMAGE_OFFLINE", "1")
        .output()
        .unwrap()
}

/// A row of `--per-image`'s CSV.
#[derive(Debug, PartialEq)]
struct PerImage {
    truth: usize,
    top1: Option<usize>,
    top5: Vec<usize>,
    error: String,
}

fn per_image(path: &Path) -> BTreeMap<String, PerImage> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = ["image", "true_index", "true_label", "top1_index", "top1_label", "top1_probability", "top5", "error"];
    assert_eq!(reader.headers().unwrap(), header.as_slice());
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let row = PerImage {
                truth: r[1].parse().unwrap(),
                top1: r[3].parse().ok(),
                top5: r[6].split_whitespace().map(|i| i.parse().unwrap()).collect(),
                error: r[7].into(),
            };
            (r[0].to_string(), row)
        })
        .collect()
}

fn lite0() -> Vec<OsString> {
    crate::os_args!["-m", "efficientnet_lite0", "--weights", common::real_lite0_weights(), "-q"]
}

#[test]
fn the_eval_set_is_its_manifest() {
    use sha2::{Digest, Sha256};
    let rows = manifest();
    assert!(rows.len() >= 500, "{} photos", rows.len());
    for row in &rows {
        let bytes = std::fs::read(root().join("evalset").join(&row.path)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), row.sha256, "{}", row.path);
        assert_eq!(classify_image::labels::imagenet_class(&row.wnid), Some(row.class), "{}", row.path);
        assert!(row.path.starts_with(&format!("{}/", row.wnid)), "{}: in its class's folder", row.path);
    }
    let listed: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    let mut found = Vec::new();
    for class in std::fs::read_dir(root().join("evalset")).unwrap().flatten().filter(|e| e.path().is_dir()) {
        for file in std::fs::read_dir(class.path()).unwrap().flatten() {
            found.push(format!("{}/{}", class.file_name().to_str().unwrap(), file.file_name().to_str().unwrap()));
        }
    }
    found.sort();
    assert_eq!(found, listed, "every file is in the manifest, in order");
}

#[test]
fn lite0_on_the_eval_set_matches_pytorch_image_for_image() {
    let weights = common::real_lite0_weights();
    let rows = manifest();
    let images: Vec<PathBuf> = rows.iter().map(|r| Path::new("evalset").join(&r.path)).collect();
    let dir = tempfile::tempdir().unwrap();
    let (reference, per) = (dir.path().join("reference.json"), dir.path().join("per-image.csv"));

    let mut args = crate::os_args![
        "scripts/eval_reference.py",
        "top5",
        "--model",
        "efficientnet_lite0",
        "--weights",
        &weights,
        "--out",
        &reference
    ];
    args.extend(images.iter().map(OsString::from));
    let script = root().join("scripts/eval_reference.py");
    let files: Vec<PathBuf> = images.iter().map(|p| root().join(p)).collect();
    let inputs: Vec<&Path> =
        [script.as_path(), &weights].into_iter().chain(files.iter().map(PathBuf::as_path)).collect();
    let py = common::python_cached(&args, &inputs, &[&reference]);
    assert!(py.status.success(), "eval_reference.py failed: {}", String::from_utf8_lossy(&py.stderr));
    let expected: HashMap<String, Value> = serde_json::from_slice(&std::fs::read(&reference).unwrap()).unwrap();

    let out = eval(crate::os_args!["evalset", "--format", "json", "--per-image", &per].into_iter().chain(lite0()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "-q: nothing on stderr, got {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = per_image(&per);
    assert_eq!(got.len(), rows.len());

    let (mut top1, mut top5, mut same_lists) = (0, 0, 0);
    for (row, image) in rows.iter().zip(&images) {
        let key = image.to_str().unwrap();
        let (rust, py) = (&got[key], &expected[key]);
        let py_top5: Vec<usize> = py["top5"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(rust.truth, row.class, "{key}: the class of its folder is the manifest's");
        assert_eq!(rust.top1, Some(py_top5[0]), "{key}: top-1 (PyTorch's top-1 − top-2 logit gap: {})", py["gap"]);
        assert_eq!(
            rust.top5.contains(&row.class),
            py_top5.contains(&row.class),
            "{key}: top-5 {:?} vs {py_top5:?}",
            rust.top5
        );
        top1 += usize::from(py_top5[0] == row.class);
        top5 += usize::from(py_top5.contains(&row.class));
        same_lists += usize::from(rust.top5 == py_top5);
    }
    let n = rows.len();
    let percent = |k: usize| (100 * k) as f64 / n as f64;
    assert_eq!(summary["images"], n);
    assert_eq!((summary["classified"].as_u64(), summary["failed"].as_u64()), (Some(n as u64), Some(0)));
    assert_eq!(summary["classes"], rows.iter().map(|r| r.class).collect::<std::collections::BTreeSet<_>>().len());
    assert_eq!(
        (summary["top1_correct"].as_u64(), summary["top5_correct"].as_u64()),
        (Some(top1 as u64), Some(top5 as u64))
    );
    assert_eq!((summary["top1"].as_f64(), summary["top5"].as_f64()), (Some(percent(top1)), Some(percent(top5))));
    assert_eq!(summary["model"], "efficientnet_lite0");
    assert_eq!(summary["preset"]["name"], "seed");
    let confused = summary["confused"].as_array().unwrap();
    assert!(!confused.is_empty() && confused.len() <= 10);
    eprintln!(
        "efficientnet_lite0 on evalset ({n} images): top-1 {:.1}%, top-5 {:.1}%, as PyTorch's; {same_lists} of {n} \
         top-5 lists identical in order; {:.1} images/s",
        percent(top1),
        percent(top5),
        summary["images_per_second"].as_f64().unwrap()
    );

    // The same network in bf16 and int8, against this run.
    let fp32_top1: BTreeMap<String, usize> = got.iter().map(|(image, r)| (image.clone(), r.top1.unwrap())).collect();
    crate::precision::lite0_keeps_its_accuracy_in_bf16_and_int8(percent(top1), &fp32_top1);
}

/// A small data set cut from the eval set: 4 classes of 5 photos, the class folders named by WordNet id, index
/// and label line; and a CSV file of the same photos, labelled the three ways in turn, with a header and a
/// further column.
fn small_set(dir: &Path) -> (PathBuf, PathBuf) {
    let labels = classify_image::Labels::imagenet();
    let data = dir.join("data");
    let mut csv = String::from("path,label,note\n");
    let mut classes: Vec<(String, usize)> = manifest().into_iter().map(|r| (r.wnid, r.class)).collect();
    classes.dedup();
    for (i, (wnid, class)) in classes.into_iter().take(4).enumerate() {
        let folder = match i % 3 {
            0 => wnid.clone(),
            1 => class.to_string(),
            _ => labels.get(class).to_string(),
        };
        assert!(!folder.contains('/'));
        std::fs::create_dir_all(data.join(&folder)).unwrap();
        let mut photos: Vec<PathBuf> =
            std::fs::read_dir(root().join("evalset").join(&wnid)).unwrap().map(|e| e.unwrap().path()).collect();
        photos.sort();
        for (j, photo) in photos.iter().enumerate() {
            let name = photo.file_name().unwrap().to_str().unwrap();
            std::fs::copy(photo, data.join(&folder).join(name)).unwrap();
            let label = match (i + j) % 3 {
                0 => wnid.clone(),
                1 => class.to_string(),
                _ => format!("\"{}\"", labels.get(class)),
            };
            csv += &format!("{folder}/{name},{label},row {j}\n");
        }
    }
    let list = data.join("list.csv");
    std::fs::write(&list, csv).unwrap();
    (data, list)
}

/// The summary without what differs between two runs of the same images: the data's name and the timing.
fn comparable(mut summary: Value) -> Value {
    for field in ["data", "seconds", "images_per_second"] {
        summary.as_object_mut().unwrap().remove(field).expect(field);
    }
    summary
}

#[test]
fn a_csv_file_gives_what_its_folder_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (data, list) = small_set(dir.path());
    let run = |source: &Path, per: &Path| {
        let out = eval(crate::os_args![source, "--format", "json", "--per-image", per].into_iter().chain(lite0()));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let (folder_per, csv_per) = (dir.path().join("folder.csv"), dir.path().join("csv.csv"));
    let folder = run(&data, &folder_per);
    let csv = run(&list, &csv_per);
    assert_eq!(folder["images"], 20);
    assert_eq!(folder["classes"], 4);
    assert_eq!(comparable(folder), comparable(csv));
    let (folder_rows, csv_rows) = (per_image(&folder_per), per_image(&csv_per));
    assert_eq!(folder_rows.len(), 20);
    assert_eq!(folder_rows, csv_rows, "the same images, paths, classes and predictions");

    // The text summary: timm's accuracy line, the count, the speed.
    let out = eval(crate::os_args![&list].into_iter().chain(lite0()));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("efficientnet_lite0 on ") && lines[0].contains("preset seed (224×224"), "{text}");
    assert!(lines[1].starts_with(" * Acc@1 ") && lines[1].contains(" Acc@5 "), "{text}");
    assert!(lines[2].starts_with("20 images in 4 classes; ") && lines[2].contains(" images/s"), "{text}");
}

#[test]
fn an_unreadable_image_is_reported_and_counted_as_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = small_set(dir.path());
    std::fs::remove_file(data.join("list.csv")).unwrap();
    let class = std::fs::read_dir(&data).unwrap().flatten().next().unwrap().path();
    let corrupt = class.join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 not really a JPEG").unwrap();
    let per = dir.path().join("per.csv");
    let out = eval(crate::os_args![&data, "--format", "json", "--per-image", &per].into_iter().chain(lite0()));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [format!(
            "error: cannot read image {}: OpenCV cannot decode its JPEG data (damaged or truncated)",
            corrupt.display()
        )]
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["images"].as_u64(), summary["classified"].as_u64(), summary["failed"].as_u64()),
        (Some(21), Some(20), Some(1))
    );
    let correct = summary["top1_correct"].as_u64().unwrap();
    assert_eq!(summary["top1"].as_f64(), Some((100 * correct) as f64 / 21.0), "out of all 21 images");
    assert_eq!(summary["failures"][0]["image"], corrupt.to_str().unwrap());
    let rows = per_image(&per);
    let row = &rows[corrupt.to_str().unwrap()];
    assert!(row.top1.is_none() && row.error.starts_with("cannot read image"), "{row:?}");
}

#[test]
fn what_is_wrong_with_the_data_set_is_one_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let per = d.join("per.csv");
    let fails = |data: &Path, needles: &[&str]| {
        let out = eval(crate::os_args![data, "--per-image", &per].into_iter().chain(lite0()));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", data.display());
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        for needle in needles {
            assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
        }
        assert!(out.stdout.is_empty());
        assert!(!per.exists(), "nothing written");
    };
    fails(&d.join("missing"), &["missing", "no such file or folder"]);
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(&empty, &["empty", "no class folders"]);
    let unknown = d.join("unknown");
    std::fs::create_dir_all(unknown.join("tench")).unwrap();
    std::fs::copy(common::image("orange.jpg"), unknown.join("tench/orange.jpg")).unwrap();
    std::fs::create_dir(unknown.join("unicorn")).unwrap();
    std::fs::copy(common::image("orange.jpg"), unknown.join("unicorn/orange.jpg")).unwrap();
    fails(&unknown, &["class folder", "unicorn", "is not a class"]);
    std::fs::remove_dir_all(unknown.join("unicorn")).unwrap();
    std::fs::create_dir(unknown.join("goldfish")).unwrap();
    fails(&unknown, &["class folder", "goldfish", "no image files"]);
    let list = d.join("list.csv");
    std::fs::write(&list, "tench/orange.jpg,tench\ntench/orange.jpg,unicorn\n").unwrap();
    fails(&list, &["list.csv", "line 2", "unicorn"]);
    fails(&common::image("orange.jpg"), &["orange.jpg", "an image"]);

    // No DATA at all: clap's usage error, which names it.
    let out = eval(lite0());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.starts_with("error: ") && stderr.contains("<DATA>"), "{stderr}");
}
