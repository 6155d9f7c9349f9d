//! The bad-input matrix: every case asserts the exit code, a clear one-line message naming the thing, and
//! that nothing was written (no output file; the working folder unchanged). Images OpenCV can read but that
//! are not 8-bit BGR (gray, alpha, 16-bit) are converted, not refused.
use crate::common;

use assert_cmd::Command;
use common::{fixture, image, python, real_lite0_weights};
use std::path::{Path, PathBuf};

/// A scratch folder, an empty TORCH_HOME, offline (no test reaches for the real download.pytorch.org), no display.
struct Case {
    dir: tempfile::TempDir,
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            all.extend(listing(&e.path()));
        }
        all.push((e.path(), if m.is_dir() { 0 } else { m.len() }));
    }
    all.sort();
    all
}

impl Case {
    fn new() -> Case {
        Case { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn run(&self, args: &[&str], output: Option<&Path>) -> std::process::Output {
        let default_out = self.path("out.png");
        Command::cargo_bin("classify-image")
            .unwrap()
            .args(args)
            .arg("-o")
            .arg(output.unwrap_or(&default_out))
            .env("TORCH_HOME", self.path("torch-home"))
            .env("CLASSIFY_IMAGE_OFFLINE", "1")
            .env_remove("DISPLAY")
            .output()
            .unwrap()
    }

    /// `args` (plus `-o out.png`) must fail with `code`, one line on stderr containing every needle, and write
    /// nothing.
    fn fails(&self, args: &[&str], code: i32, needles: &[&str]) -> String {
        self.fails_writing(args, None, code, needles)
    }

    fn fails_writing(&self, args: &[&str], output: Option<&Path>, code: i32, needles: &[&str]) -> String {
        let before = listing(self.dir.path());
        let out = self.run(args, output);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "args {args:?}: stderr {stderr}");
        let errors: Vec<&str> = stderr.lines().collect();
        assert_eq!(errors.len(), 1, "one line, got: {stderr}");
        for needle in needles {
            assert!(errors[0].contains(needle), "{:?} lacks {needle:?}", errors[0]);
        }
        assert!(!self.path("out.png").exists(), "nothing may be written");
        assert_eq!(listing(self.dir.path()), before, "no file appears or changes");
        stderr
    }

    /// A usage error that clap reports: exit 2, its first line containing every needle, the rest clap's pointer
    /// to --help, and nothing written.
    fn fails_usage(&self, args: &[&str], needles: &[&str]) {
        let before = listing(self.dir.path());
        let out = self.run(args, None);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "args {args:?}: stderr {stderr}");
        let mut lines = stderr.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().unwrap_or("");
        for needle in needles {
            assert!(first.contains(needle), "{first:?} lacks {needle:?}");
        }
        assert_eq!(lines.collect::<Vec<_>>(), ["For more information, try '--help'."], "{stderr}");
        assert_eq!(listing(self.dir.path()), before, "no file appears or changes");
    }

    /// `args` must classify and write the annotated image.
    fn converts(&self, args: &[&str]) {
        let out = self.run(args, None);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 9);
        assert!(self.path("out.png").is_file());
    }
}

const LITE: [&str; 2] = ["-m", "efficientnet_lite0"];

fn with_image<'a>(image: &'a Path, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-i", s(image)];
    args.extend_from_slice(rest);
    args
}

// ---- images ----

#[test]
fn missing_image() {
    let c = Case::new();
    let missing = c.path("nope.jpg");
    c.fails(&with_image(&missing, &LITE), 2, &["cannot read image", s(&missing), "No such file"]);
}

#[test]
fn folder_without_images() {
    let c = Case::new();
    let empty = c.path("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not an image").unwrap();
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
fn empty_file() {
    let c = Case::new();
    let empty = c.file("empty.png", b"");
    c.fails(&with_image(&empty, &LITE), 2, &[s(&empty), "empty"]);
}

#[test]
fn text_file_named_jpg() {
    let c = Case::new();
    let text = c.file("notes.jpg", b"this is not a JPEG\n");
    c.fails(&with_image(&text, &LITE), 2, &["cannot read image", s(&text), "not a PNG, JPEG"]);
}

/// Found by fuzzing: Debian's OpenCV 4.6 aborts the process on this PPM; it must never reach the decoder.
#[test]
fn malformed_ppm_that_aborted_opencv() {
    let c = Case::new();
    let crash = common::root().join("fuzz/regressions/image/ppm-abort-opencv-4.6");
    let ppm = c.file("crash.ppm", &std::fs::read(crash).unwrap());
    c.fails(&with_image(&ppm, &LITE), 2, &[s(&ppm), "PNM header is malformed"]);
}

#[test]
fn truncated_jpeg_and_png() {
    let c = Case::new();
    for name in ["orange.jpg", "coffee.png"] {
        let bytes = std::fs::read(image(name)).unwrap();
        let cut = c.file(&format!("cut-{name}"), &bytes[..300]);
        c.fails(&with_image(&cut, &LITE), 2, &[s(&cut), "cannot decode"]);
    }
}

/// A PNG whose header declares 20000×20000 (1.2 GB decoded): refused before decoding.
#[test]
fn very_large_image_is_refused_before_decoding() {
    let c = Case::new();
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend(20000u32.to_be_bytes());
    png.extend(20000u32.to_be_bytes());
    png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    let big = c.file("big.png", &png);
    c.fails(&with_image(&big, &LITE), 2, &[s(&big), "20000×20000", "Mpixel limit"]);
}

fn write_png(path: &Path, mat: &opencv::core::Mat) {
    assert!(opencv::imgcodecs::imwrite(s(path), mat, &opencv::core::Vector::new()).unwrap());
}

#[test]
fn gray_alpha_16_bit_and_tiny_images_are_converted() {
    use opencv::{core, imgcodecs, prelude::*};
    let c = Case::new();
    let photo = imgcodecs::imread(s(&image("coffee.png")), imgcodecs::IMREAD_COLOR).unwrap();
    let gray = imgcodecs::imread(s(&image("coffee.png")), imgcodecs::IMREAD_GRAYSCALE).unwrap();
    let mut rgba = core::Mat::default();
    opencv::imgproc::cvt_color_def(&photo, &mut rgba, opencv::imgproc::COLOR_BGR2BGRA).unwrap();
    let mut deep = core::Mat::default();
    photo.convert_to(&mut deep, core::CV_16UC3, 257.0, 0.0).unwrap();
    // Translucent: cv2.imread drops the alpha channel rather than blending.
    let mut translucent = rgba.clone();
    core::mix_channels(&gray, &mut translucent, &[0, 3]).unwrap();
    let one = core::Mat::new_rows_cols_with_default(1, 1, core::CV_8UC3, core::Scalar::all(128.0)).unwrap();
    // At fixed paths, so that the Python original's cached runs are found again (the cache is keyed by the
    // arguments); the files' bytes are the same on every run.
    let stable = common::stable_dir("converted");
    for (name, mat) in [
        ("gray.png", &gray),
        ("rgba.png", &rgba),
        ("translucent.png", &translucent),
        ("deep16.png", &deep),
        ("one.png", &one),
    ] {
        let p = stable.join(name);
        write_png(&p, mat);
        c.converts(&with_image(&p, &LITE));
        std::fs::remove_file(c.path("out.png")).unwrap();
        // Converted as cv2.imread converts it: the Python original prints the same lines and draws the same PNG.
        common::assert_same_as_python("efficientnet_lite0", &p, &real_lite0_weights());
    }
    // The cases are what their names say.
    assert_eq!((gray.channels(), rgba.channels(), deep.depth(), one.rows() * one.cols()), (1, 4, core::CV_16U, 1));
}

#[test]
fn path_with_spaces_and_unicode() {
    let c = Case::new();
    let p = common::stable_dir("unicode").join("café photos — été 2026.png");
    std::fs::copy(image("coffee.png"), &p).unwrap();
    c.converts(&with_image(&p, &LITE));
    // The same results and drawing as the Python original on that path, and as on the photo under its own name.
    let under_that_name = common::assert_same_as_python("efficientnet_lite0", &p, &real_lite0_weights());
    let under_its_own =
        common::assert_same_as_python("efficientnet_lite0", &image("coffee.png"), &real_lite0_weights());
    assert_eq!(under_that_name, under_its_own);
}

// ---- arguments ----

#[test]
fn unknown_model() {
    let c = Case::new();
    let img = image("coffee.png");
    c.fails_usage(&with_image(&img, &["-m", "resnet51"]), &["'resnet51'", "--model", "vgg16", "efficientnet_lite0"]);
    // A model with weights it does not have: the error lists the ones it has.
    c.fails_usage(
        &with_image(&img, &["-m", "resnet50.IMAGENET1K_V9"]),
        &["resnet50.IMAGENET1K_V9", "resnet50 has no weights of that name", "IMAGENET1K_V2, IMAGENET1K_V1"],
    );
}

#[test]
fn top_k_zero_and_too_large() {
    let c = Case::new();
    let img = image("coffee.png");
    c.fails_usage(&with_image(&img, &["-m", "efficientnet_lite0", "-k", "0"]), &["--top-k", "'0'", "at least 1"]);
    c.fails_usage(&with_image(&img, &["-m", "efficientnet_lite0", "-k", "-1"]), &["--top-k", "'-1'", "at least 1"]);
    // Checked against the labels before the model loads: nothing is printed.
    let out = c.run(&with_image(&img, &["-m", "efficientnet_lite0", "-k", "5000"]), None);
    assert!(out.stdout.is_empty());
    c.fails(&with_image(&img, &["-m", "efficientnet_lite0", "-k", "5000"]), 2, &["--top-k 5000", "1000 classes"]);
}

// ---- outputs ----

/// Missing folders are created, for --output as for --output-dir; a file where a folder should be is an error.
#[test]
fn output_in_a_missing_folder_or_under_a_file() {
    let c = Case::new();
    let img = image("coffee.png");
    let out = c.path("no/such/dir/out.png");
    assert!(c.run(&with_image(&img, &LITE), Some(&out)).status.success());
    assert!(out.is_file());
    let blocker = c.file("file", b"a file, not a folder");
    let under = blocker.join("out.png");
    c.fails_writing(&with_image(&img, &LITE), Some(&under), 2, &["--output", s(&blocker), "not a folder"]);
}

#[test]
fn unwritable_output() {
    // /proc accepts no new files, even for root.
    let c = Case::new();
    let img = image("coffee.png");
    c.fails_writing(
        &with_image(&img, &LITE),
        Some(Path::new("/proc/annotated.png")),
        1,
        &["cannot write", "/proc/annotated.png"],
    );
}

#[test]
fn output_equal_to_the_input() {
    let c = Case::new();
    let img = c.path("photo.png");
    std::fs::copy(image("coffee.png"), &img).unwrap();
    let before = std::fs::read(&img).unwrap();
    c.fails_writing(&with_image(&img, &LITE), Some(&img), 2, &["never overwritten", "--output"]);
    assert_eq!(std::fs::read(&img).unwrap(), before);
}

#[test]
fn unsupported_output_extension() {
    let c = Case::new();
    let img = image("coffee.png");
    c.fails_writing(&with_image(&img, &LITE), Some(&c.path("out.xyz")), 2, &["'xyz'", ".png or .jpg"]);
}

#[test]
fn label_file_with_the_wrong_number_of_lines() {
    let c = Case::new();
    let labels = c.file("labels.txt", b"cat\ndog\n");
    let img = image("coffee.png");
    c.fails(
        &with_image(&img, &["-m", "efficientnet_lite0", "--labels", s(&labels)]),
        2,
        &[s(&labels), "2 labels", "1000 classes"],
    );
}

// ---- weights ----

#[test]
fn missing_weights_name_the_expected_path_and_the_url() {
    let c = Case::new();
    let img = image("coffee.png");
    let expected = c.path("torch-home/hub/checkpoints/resnet50-0676ba61.pth");
    c.fails(
        &with_image(&img, &["-m", "resnet"]),
        3,
        &[
            "no weights for resnet",
            s(&expected),
            "https://download.pytorch.org/models/resnet50-0676ba61.pth",
            "--weights",
        ],
    );
    let missing = c.path("missing.pth");
    c.fails(&with_image(&img, &["-m", "resnet", "--weights", s(&missing)]), 3, &[s(&missing), "--weights"]);
}

#[test]
fn weights_of_another_architecture() {
    let c = Case::new();
    let img = image("coffee.png");
    let resnet = fixture("resnet").zip;
    c.fails(
        &with_image(&img, &["-m", "vgg16", "--weights", s(&resnet)]),
        3,
        &["does not fit vgg16", "features.0.weight"],
    );
    let lite = real_lite0_weights();
    c.fails(&with_image(&img, &["-m", "resnet", "--weights", s(&lite)]), 3, &["does not fit resnet"]);
}

#[test]
fn truncated_pth_in_both_containers() {
    let fx = fixture("resnet");
    let c = Case::new();
    let img = image("coffee.png");
    for (name, source) in [("zip", &fx.zip), ("legacy", &fx.legacy)] {
        let bytes = std::fs::read(source).unwrap();
        let cut = c.file(&format!("cut-{name}.pth"), &bytes[..bytes.len() / 2]);
        c.fails(&with_image(&img, &["-m", "resnet", "--weights", s(&cut)]), 3, &[s(&cut)]);
    }
}

/// Rewrites a zip-container .pth with its first storage (`data/0`) replaced by `storage`.
fn patch_storage(source: &Path, dest: &Path, storage: &[u8]) {
    let status = python()
        .args([
            "-c",
            "import sys, zipfile\nsrc, dst, name, data = sys.argv[1:5]\nwith zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as b:\n    for i in a.infolist():\n        b.writestr(i, open(data, 'rb').read() if i.filename.endswith(name) else a.read(i))",
        ])
        .arg(source)
        .arg(dest)
        .arg("/data/0")
        .arg({
            let p = dest.with_extension("storage");
            std::fs::write(&p, storage).unwrap();
            p
        })
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(dest.with_extension("storage")).unwrap();
}

#[test]
fn pth_whose_tensor_sizes_exceed_the_file() {
    let c = Case::new();
    let img = image("coffee.png");
    let small = c.path("small-storage.pth");
    patch_storage(&fixture("resnet").zip, &small, &[0u8; 16]);
    c.fails(
        &with_image(&img, &["-m", "resnet", "--weights", s(&small)]),
        3,
        &[s(&small), "has 16 bytes but should have"],
    );
}

#[test]
fn zip_with_a_huge_declared_size() {
    let c = Case::new();
    let img = image("coffee.png");
    let mut bytes = std::fs::read(fixture("resnet").zip).unwrap();
    // Every central-directory entry (PK\1\2) declares 0xfffffff0 bytes, compressed and not.
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(4).position(|w| w == b"PK\x01\x02") {
        let h = at + i;
        bytes[h + 20..h + 28].copy_from_slice(&[0xf0, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff]);
        at = h + 4;
    }
    let huge = c.file("huge.pth", &bytes);
    c.fails(&with_image(&img, &["-m", "resnet", "--weights", s(&huge)]), 3, &[s(&huge)]);
}

#[test]
fn malicious_pickles_are_refused_without_running() {
    let c = Case::new();
    let img = image("coffee.png");
    let payloads = [
        ("os.system", "posix.system"),
        ("builtins.eval", "__builtin__.eval"),
        ("builtins.exec", "__builtin__.exec"),
        ("subprocess", "commands.check_call"),
        ("custom-class", "__main__.Custom"),
    ];
    // The pickles name the markers they create by absolute path: they live at a fixed place, emptied first,
    // so that the Python runs below are kept (python_cached) and found again with the same bytes.
    let dir = common::stable_dir("malicious-pickles");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let evil = |how: &str| dir.join(format!("{how}.pth"));
    let marker = |how: &str| dir.join(format!("pwned-{how}"));
    // Made by reference.py run as a program (__main__), in one process: the custom class is pickled as
    // __main__.Custom, as a program of its own would pickle it.
    let args = crate::os_args!["scripts/reference.py", "malicious", "--out-dir", &dir];
    let made = common::python_cached(&args, &[], &[&dir]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    for (how, global) in payloads {
        c.fails(
            &with_image(&img, &["-m", "resnet", "--weights", s(&evil(how))]),
            3,
            &[s(&evil(how)), global, "refused"],
        );
        assert!(!marker(how).exists(), "{how}: the payload ran");
    }
    // The payloads are real: Python's unsafe torch.load runs each. The custom class's gadget needs its class
    // importable where the file is loaded, as it is in the program that wrote it: reference.py loads them all.
    let files: Vec<PathBuf> = payloads.iter().map(|(how, _)| evil(how)).collect();
    let markers: Vec<PathBuf> = payloads.iter().map(|(how, _)| marker(how)).collect();
    let mut args = crate::os_args!["scripts/reference.py", "unsafe-load"];
    args.extend(files.iter().map(Into::into));
    let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let outputs: Vec<&Path> = markers.iter().map(PathBuf::as_path).collect();
    assert!(common::python_cached(&args, &inputs, &outputs).status.success());
    for (how, _) in payloads {
        assert!(marker(how).exists(), "{how}: the fixture's payload should run under an unsafe loader");
    }
}

#[test]
fn nan_weights() {
    let c = Case::new();
    let img = image("coffee.png");
    let nan = c.path("nan.pth");
    let script =
        "import sys, torch\nsd = torch.load(sys.argv[1])\nsd['fc.bias'][3] = float('nan')\ntorch.save(sd, sys.argv[2])";
    let resnet = fixture("resnet").zip;
    let args = crate::os_args!["-c", script, &resnet, &nan];
    let made = common::python_cached(&args, &[&resnet], &[&nan]);
    assert!(made.status.success());
    c.fails(&with_image(&img, &["-m", "resnet", "--weights", s(&nan)]), 3, &[s(&nan), "NaN or infinite", "fc.bias"]);
}

#[test]
fn safetensors_with_a_bad_header() {
    let c = Case::new();
    let img = image("coffee.png");
    let mut bad = 40u64.to_le_bytes().to_vec();
    bad.extend(b"{\"fc.weight\": {\"dtype\": \"F32\", \"shape\"");
    let bad = c.file("bad.safetensors", &bad);
    c.fails(&with_image(&img, &["-m", "resnet", "--weights", s(&bad)]), 3, &[s(&bad), "safetensors"]);
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend(b"{}");
    let huge = c.file("huge.safetensors", &huge);
    c.fails(&with_image(&img, &["-m", "resnet", "--weights", s(&huge)]), 3, &[s(&huge)]);
}

#[test]
fn not_a_checkpoint_at_all() {
    let c = Case::new();
    let img = image("coffee.png");
    let junk = c.file("junk.pth", b"definitely not a checkpoint");
    c.fails(
        &with_image(&img, &["-m", "resnet", "--weights", s(&junk)]),
        3,
        &[s(&junk), "neither a torch.save checkpoint"],
    );
}
