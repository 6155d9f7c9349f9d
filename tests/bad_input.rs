//! Bad input: each case gives a clear one-line error naming the thing, a non-zero exit code, and writes nothing.
mod common;

use assert_cmd::Command;
use common::{fixture, image, python};
use std::path::{Path, PathBuf};

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs classify-image with `args` plus `-o <dir>/out.png`, an empty TORCH_HOME, offline (no test reaches
    /// for the real download.pytorch.org), and no display; checks the
    /// exit code, that stderr is one line containing every `needle`, and that out.png was not written.
    fn fails(&self, args: &[&str], code: i32, needles: &[&str]) -> String {
        let out_png = self.path("out.png");
        let before = listing(self.dir.path());
        let out = Command::cargo_bin("classify-image")
            .unwrap()
            .args(args)
            .arg("-o")
            .arg(&out_png)
            .env("TORCH_HOME", self.path("torch-home"))
            .env("CLASSIFY_IMAGE_OFFLINE", "1")
            .env_remove("DISPLAY")
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "args {args:?}: stderr {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line, got: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
        }
        assert!(!out_png.exists(), "nothing may be written");
        assert_eq!(listing(self.dir.path()), before, "no file appears or changes");
        stderr
    }
}

fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut all: Vec<(PathBuf, u64)> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()).map(|e| (e.path(), e.metadata().unwrap().len())).collect();
    all.sort();
    all
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn missing_image() {
    let c = Case::new();
    let missing = c.path("nope.jpg");
    c.fails(&["-i", s(&missing), "-m", "efficientnet_lite0"], 2, &["cannot read image", s(&missing), "No such file"]);
}

#[test]
fn file_that_is_not_an_image() {
    let c = Case::new();
    let text = c.path("notes.jpg");
    std::fs::write(&text, "this is not a JPEG\n").unwrap();
    c.fails(&["-i", s(&text), "-m", "efficientnet_lite0"], 2, &["cannot read image", s(&text), "cannot decode"]);
}

#[test]
fn directory_without_images() {
    let c = Case::new();
    let empty = c.path("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not an image").unwrap();
    // A folder is several inputs: --output-dir, not --output.
    let out = Command::cargo_bin("classify-image")
        .unwrap()
        .args(["-i", s(&empty), "-m", "efficientnet_lite0", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has no image files") && stderr.trim_end().lines().count() == 1, "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_model() {
    let c = Case::new();
    let img = image("coffee.png");
    c.fails(&["-i", s(&img), "-m", "alexnet"], 2, &["'alexnet'", "--model", "vgg16", "efficientnet_lite0"]);
}

#[test]
fn missing_weights_names_the_expected_path_and_the_url() {
    let c = Case::new();
    let img = image("coffee.png");
    let expected = c.path("torch-home/hub/checkpoints/resnet50-0676ba61.pth");
    c.fails(
        &["-i", s(&img), "-m", "resnet"],
        3,
        &[
            "no weights for resnet",
            s(&expected),
            "https://download.pytorch.org/models/resnet50-0676ba61.pth",
            "offline",
            "--weights",
        ],
    );
}

#[test]
fn missing_weights_file() {
    let c = Case::new();
    let img = image("coffee.png");
    let missing = c.path("missing.pth");
    c.fails(&["-i", s(&img), "-m", "resnet", "--weights", s(&missing)], 3, &[s(&missing), "--weights"]);
}

#[test]
fn truncated_pth_in_both_containers() {
    let fx = fixture("resnet");
    for (name, source) in [("zip", &fx.zip), ("legacy", &fx.legacy)] {
        let c = Case::new();
        let truncated = c.path(&format!("truncated-{name}.pth"));
        let bytes = std::fs::read(source).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let img = image("coffee.png");
        let err = c.fails(&["-i", s(&img), "-m", "resnet", "--weights", s(&truncated)], 3, &[s(&truncated)]);
        eprintln!("{name}: {err}");
    }
}

#[test]
fn pth_of_another_architecture() {
    let c = Case::new();
    let img = image("coffee.png");
    let resnet = fixture("resnet").zip;
    c.fails(&["-i", s(&img), "-m", "vgg16", "--weights", s(&resnet)], 3, &["does not fit vgg16", "features.0.weight"]);
    let lite = common::real_lite0_weights();
    c.fails(&["-i", s(&img), "-m", "resnet", "--weights", s(&lite)], 3, &["does not fit resnet"]);
}

#[test]
fn malicious_pickle_is_refused_without_running_it() {
    let c = Case::new();
    let evil = c.path("evil.pth");
    let marker = c.path("pwned");
    let made = python()
        .args(["scripts/reference.py", "malicious", "--out", s(&evil), "--marker", s(&marker)])
        .status()
        .unwrap();
    assert!(made.success());
    let img = image("coffee.png");
    c.fails(&["-i", s(&img), "-m", "resnet", "--weights", s(&evil)], 3, &[s(&evil), "posix.system", "refused"]);
    assert!(!marker.exists(), "the payload ran");

    // The payload is real: Python's unsafe torch.load runs it.
    let ran = python()
        .args(["-c", "import sys, torch; torch.load(sys.argv[1], weights_only=False)", s(&evil)])
        .status()
        .unwrap();
    assert!(ran.success());
    assert!(marker.exists(), "the fixture's payload should run under an unsafe loader");
}

#[test]
fn output_with_unknown_extension_missing_folder_or_equal_to_input() {
    let c = Case::new();
    let img = image("coffee.png");
    for (output, needle) in [
        (c.path("out.xyz"), "encoder"),
        (c.path("no/such/dir/out.png"), "does not exist"),
        (img.clone(), "never overwritten"),
    ] {
        let before = std::fs::read(&img).unwrap();
        let out = Command::cargo_bin("classify-image")
            .unwrap()
            .args(["-i", s(&img), "-m", "efficientnet_lite0", "-o", s(&output)])
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle) && stderr.contains("--output"), "{stderr}");
        assert!(!output.exists() || output == img);
        assert_eq!(std::fs::read(&img).unwrap(), before, "the input is untouched");
    }
}

#[test]
fn label_file_with_the_wrong_number_of_lines() {
    let c = Case::new();
    let labels = c.path("labels.txt");
    std::fs::write(&labels, "cat\ndog\n").unwrap();
    let img = image("coffee.png");
    c.fails(
        &["-i", s(&img), "-m", "efficientnet_lite0", "--labels", s(&labels)],
        2,
        &[s(&labels), "2 labels", "1000 classes"],
    );
}
