//! Nothing lost, nothing silent: a full stdout fails, a closed one stops the printing but not the files,
//! output names never collide, a decoder's warning is reported and recorded, a file without frames is no
//! video, and an interrupted JSON array is closed.
use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("classify-image")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs classify-image through bash, so that its stdout can be redirected or piped: `{bin}` in `script` is the
/// binary, and the script's own exit status is classify-image's (`PIPESTATUS[0]` for a pipe).
fn sh(dir: &Path, script: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(script.replace("{bin}", s(&bin())))
        .current_dir(dir)
        .env("CLASSIFY_IMAGE_OFFLINE", "1")
        .env("TORCH_HOME", dir.join("torch-home"))
        .env_remove("DISPLAY")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A folder of three sample photos.
fn three_images(dir: &Path) -> PathBuf {
    let images = dir.join("in");
    std::fs::create_dir(&images).unwrap();
    for name in ["coffee.png", "chelsea.png", "orange.jpg"] {
        std::fs::copy(common::image(name), images.join(name)).unwrap();
    }
    images
}

#[test]
fn a_full_stdout_is_an_error_naming_stdout_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let images = three_images(dir.path());
    let coffee = common::image("coffee.png");
    for format in ["text", "json", "jsonl", "csv"] {
        // One image, with its annotated copy: the copy is written and stays.
        let out = sh(
            dir.path(),
            &format!("{{bin}} -i {} -m efficientnet_lite0 --format {format} -o one.png > /dev/full", s(&coffee)),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{format}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{format}: {err}");
        assert!(errors[0].contains("stdout") && errors[0].contains("No space left"), "{format}: {err}");
        assert!(dir.path().join("one.png").is_file(), "{format}: the annotated copy stays");
        std::fs::remove_file(dir.path().join("one.png")).unwrap();
        // A folder, with annotated copies: all written.
        let out = sh(
            dir.path(),
            &format!("{{bin}} -i {} -m efficientnet_lite0 --format {format} --output-dir od > /dev/full", s(&images)),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{format}: {err}");
        assert!(err.lines().any(|l| l.starts_with("error:") && l.contains("stdout")), "{format}: {err}");
        assert_eq!(std::fs::read_dir(dir.path().join("od")).unwrap().count(), 3, "{format}");
        std::fs::remove_dir_all(dir.path().join("od")).unwrap();
    }
}

#[test]
fn a_closed_stdout_stops_the_printing_not_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let images = three_images(dir.path());
    let coffee = common::image("coffee.png");
    let out = sh(
        dir.path(),
        &format!("{{bin}} -i {} -m efficientnet_lite0 -o y.png | head -1; exit ${{PIPESTATUS[0]}}", s(&coffee)),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[INFO] loading efficientnet_lite0...\n");
    assert!(dir.path().join("y.png").is_file(), "the annotated image is written");
    assert!(stderr(&out).is_empty(), "quiet: {}", stderr(&out));

    let out = sh(
        dir.path(),
        &format!(
            "{{bin}} -i {} --output-dir od -m efficientnet_lite0 --batch-size 1 | head -2; exit ${{PIPESTATUS[0]}}",
            s(&images)
        ),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let mut written: Vec<String> = std::fs::read_dir(dir.path().join("od"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["chelsea.png", "coffee.png", "orange.jpg"], "every file is written");
    assert!(stderr(&out).contains("classified 3 of 3"), "{}", stderr(&out));
}

#[test]
fn colliding_output_names_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (folder, image) in [("a", "coffee.png"), ("b", "orange.jpg")] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        std::fs::copy(common::image(image), dir.path().join(folder).join("x.png")).unwrap();
    }
    let out = sh(dir.path(), "{bin} -i a b --output-dir d -m efficientnet_lite0");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("a/x.png") && err.contains("b/x.png") && err.contains("d/x.png"), "{err}");
    assert!(out.stdout.is_empty(), "refused before the model loads");
    assert!(!dir.path().join("d").exists(), "nothing written");

    // The same with two files of the same name given directly.
    let out = sh(dir.path(), "{bin} -i a/x.png b/x.png --output-dir d -m efficientnet_lite0");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!dir.path().join("d").exists());

    // One file given twice is no clash: it is classified twice, and written once.
    let out = sh(dir.path(), "{bin} -i a/x.png a/x.png --output-dir d -m efficientnet_lite0 --format jsonl");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

#[test]
fn a_truncated_jpeg_is_classified_with_one_warning_line_and_a_recorded_warning() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(common::image("squirrel_cls.jpg")).unwrap();
    std::fs::write(dir.path().join("cut.jpg"), &whole[..5000]).unwrap();

    let out = sh(dir.path(), "{bin} -i cut.jpg -m efficientnet_lite0 -o cut-annotated.png");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("warning: cut.jpg: truncated JPEG"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 9, "classified as the original does");
    assert!(dir.path().join("cut-annotated.png").is_file());

    let out = sh(dir.path(), "{bin} -i cut.jpg -m efficientnet_lite0 --format json");
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = records[0]["warnings"].as_array().expect("the record carries the warning");
    assert!(warnings[0].as_str().unwrap().starts_with("truncated JPEG"), "{records}");
    assert!(records[0]["predictions"].is_array());

    let out = sh(dir.path(), "{bin} -i cut.jpg -m efficientnet_lite0 --format csv -k 1");
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",error,warning"));
    assert!(lines.next().unwrap().contains(",,truncated JPEG"), "{csv}");

    // An intact JPEG: no warning.
    let out = sh(
        dir.path(),
        &format!("{{bin}} -i {} -m efficientnet_lite0 --format jsonl", s(&common::image("squirrel_cls.jpg"))),
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warnings"));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn a_video_without_frames_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a video\n").unwrap();
    // An AVI header with nothing after it: OpenCV may open it, but no frame comes out.
    std::fs::write(dir.path().join("empty.avi"), b"RIFF\x04\x00\x00\x00AVI ").unwrap();
    for video in ["notes.txt", "empty.avi"] {
        let out = sh(dir.path(), &format!("{{bin}} --video {video} -m efficientnet_lite0 -o out.avi"));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{video}: {err}");
        assert_eq!(err.lines().count(), 1, "{video}: {err}");
        assert!(err.contains(&format!("cannot read video {video}")), "{err}");
        assert!(out.stdout.is_empty(), "refused before the model loads");
        assert!(!dir.path().join("out.avi").exists());
    }
}

/// Ctrl-C (SIGINT) and SIGTERM in the middle of a JSON array: the array printed so far is closed, the exit code
/// is 130, and no unfinished file is left.
#[test]
fn an_interrupted_json_array_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("many");
    std::fs::create_dir(&images).unwrap();
    for i in 0..200 {
        std::fs::copy(common::image("coffee.png"), images.join(format!("{i:03}.png"))).unwrap();
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let mut child = Command::new(bin())
            .args(["-i", s(&images), "-m", "efficientnet_lite0", "--format", "json", "--batch-size", "1"])
            .args(["--output-dir", s(&dir.path().join("od"))])
            .env("CLASSIFY_IMAGE_OFFLINE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the first record, then interrupt.
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"predictions\"") {
            use std::io::Read;
            let n = stdout.read(&mut buf).unwrap();
            assert!(n > 0, "stdout ended early: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        let mut all = seen;
        use std::io::Read;
        stdout.read_to_end(&mut all).unwrap();
        all.extend_from_slice(&out.stdout);
        assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
        let records: serde_json::Value = serde_json::from_slice(&all)
            .unwrap_or_else(|e| panic!("not valid JSON ({e}): {}", String::from_utf8_lossy(&all)));
        let n = records.as_array().unwrap().len();
        assert!((1..200).contains(&n), "{n} records");
        // The interruption may come before the first copy is written; then the folder does not exist yet.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("od"))
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = std::fs::remove_dir_all(dir.path().join("od"));
    }
}
