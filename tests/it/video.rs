//! Video: a 3-second video generated here is annotated headless into an output video with the same number of
//! frames, each carrying the label; --every N classifies every Nth frame only.
use crate::common;

use assert_cmd::Command;
use opencv::{core, imgcodecs, imgproc, prelude::*, videoio};
use std::path::Path;

const FPS: f64 = 10.0;
const FRAMES: i32 = 30;

/// 3 s at 10 fps: the coffee photo drifting right, written as Motion JPEG.
pub fn make_video(path: &Path) {
    let photo = imgcodecs::imread(common::image("coffee.png").to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
    let size = core::Size::new(320, 240);
    let fourcc = videoio::VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
    let mut writer = videoio::VideoWriter::new(path.to_str().unwrap(), fourcc, FPS, size, true).unwrap();
    assert!(writer.is_opened().unwrap());
    for i in 0..FRAMES {
        let roi = core::Rect::new(i * 4, 20, 480, 360);
        let crop = core::Mat::roi(&photo, roi).unwrap().try_clone().unwrap();
        let mut frame = core::Mat::default();
        imgproc::resize(&crop, &mut frame, size, 0.0, 0.0, imgproc::INTER_AREA).unwrap();
        writer.write(&frame).unwrap();
    }
    writer.release().unwrap();
}

/// The frames of a video file.
pub fn frames(path: &Path) -> Vec<core::Mat> {
    let mut cap = videoio::VideoCapture::from_file(path.to_str().unwrap(), videoio::CAP_ANY).unwrap();
    assert!(cap.is_opened().unwrap(), "{} opens", path.display());
    let mut all = Vec::new();
    let mut frame = core::Mat::default();
    while cap.read(&mut frame).unwrap() && !frame.empty() {
        all.push(frame.try_clone().unwrap());
    }
    all
}

/// Pixels that are clearly red (the label's colour) in the caption's band at the top left.
fn red_pixels(frame: &core::Mat) -> usize {
    let band = core::Mat::roi(frame, core::Rect::new(0, 5, 300, 35)).unwrap();
    let mut count = 0;
    for y in 0..band.rows() {
        for x in 0..band.cols() {
            let p = band.at_2d::<core::Vec3b>(y, x).unwrap();
            if p[2] > 150 && p[1] < 90 && p[0] < 90 {
                count += 1;
            }
        }
    }
    count
}

fn annotate(args: &[&str]) -> (String, String) {
    let out = Command::cargo_bin("classify-image").unwrap().args(args).env_remove("DISPLAY").output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

#[test]
fn a_generated_video_is_annotated_headless_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.avi"), dir.path().join("out.avi"));
    make_video(&input);
    let originals = frames(&input);
    assert_eq!(originals.len(), FRAMES as usize);

    let (stdout, stderr) = annotate(&[
        "--video",
        input.to_str().unwrap(),
        "-m",
        "efficientnet_lite0",
        "-o",
        output.to_str().unwrap(),
        "--format",
        "jsonl",
        "-k",
        "1",
    ]);
    assert!(stderr.contains(&format!("{FRAMES} frame(s), {FRAMES} classified")), "{stderr}");
    let records: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), FRAMES as usize, "one record per classified frame");
    let top = records[0]["predictions"][0]["label"].as_str().unwrap().to_string();
    assert!(top == "espresso" || top == "cup", "{top}");

    let annotated = frames(&output);
    assert_eq!(annotated.len(), originals.len(), "the frame count matches");
    for (i, (a, o)) in annotated.iter().zip(&originals).enumerate() {
        assert_eq!(a.size().unwrap(), o.size().unwrap());
        let (with, without) = (red_pixels(a), red_pixels(o));
        assert!(with > without + 200, "frame {i} carries the label: {with} red pixels vs {without}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left");
}

#[test]
fn every_nth_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.avi"), dir.path().join("out.mp4"));
    make_video(&input);
    let (stdout, stderr) = annotate(&[
        "--video",
        input.to_str().unwrap(),
        "-m",
        "efficientnet_lite0",
        "--every",
        "10",
        "-o",
        output.to_str().unwrap(),
        "--format",
        "csv",
        "-k",
        "1",
    ]);
    assert!(stderr.contains("30 frame(s), 3 classified"), "{stderr}");
    assert_eq!(stdout.lines().count(), 1 + 3, "header and three rows: {stdout}");
    assert_eq!(frames(&output).len(), FRAMES as usize);
}

/// With --explain every frame carries the Grad-CAM overlay of the last classified frame: below the caption its
/// colours are far from the original's.
#[test]
fn explained_frames_carry_the_heatmap() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.avi"), dir.path().join("out.avi"));
    make_video(&input);
    let (_, stderr) = annotate(&[
        "--video",
        input.to_str().unwrap(),
        "-m",
        "efficientnet_lite0",
        "--explain",
        "--every",
        "10",
        "-o",
        output.to_str().unwrap(),
        "-q",
    ]);
    assert!(stderr.is_empty(), "{stderr}");
    let (annotated, originals) = (frames(&output), frames(&input));
    assert_eq!(annotated.len(), originals.len());
    let below = core::Rect::new(0, 70, 320, 170);
    for (i, (a, o)) in annotated.iter().zip(&originals).enumerate() {
        let (a, o) = (core::Mat::roi(a, below).unwrap(), core::Mat::roi(o, below).unwrap());
        let mean = core::mean(&absdiff(&a, &o), &core::no_array()).unwrap();
        let mean = (mean[0] + mean[1] + mean[2]) / 3.0;
        assert!(mean > 20.0, "frame {i}: mean difference {mean:.1} from the original below the caption");
    }
}

fn absdiff(a: &impl core::ToInputArray, b: &impl core::ToInputArray) -> core::Mat {
    let mut out = core::Mat::default();
    core::absdiff(a, b, &mut out).unwrap();
    out
}

#[test]
fn a_missing_video_or_a_bad_output_extension_is_a_clear_error() {
    let out = Command::cargo_bin("classify-image")
        .unwrap()
        .args(["--video", "/nonexistent.avi", "-m", "efficientnet_lite0", "-o", "/tmp/x.avi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such video file"));
    let out = Command::cargo_bin("classify-image")
        .unwrap()
        .args(["--video", "/nonexistent.avi", "-m", "efficientnet_lite0", "-o", "/tmp/x.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".mp4 or .avi"));
}

#[test]
fn ctrl_c_mid_write_leaves_no_partial_video() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.avi"), dir.path().join("out.avi"));
    // A longer video: ten times the 3-second one.
    let long = dir.path().join("long.avi");
    make_video(&input);
    {
        let frames = frames(&input);
        let fourcc = videoio::VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
        let size = frames[0].size().unwrap();
        let mut w = videoio::VideoWriter::new(long.to_str().unwrap(), fourcc, FPS, size, true).unwrap();
        for _ in 0..10 {
            for f in &frames {
                w.write(f).unwrap();
            }
        }
        w.release().unwrap();
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("classify-image"))
        .args(["--video", long.to_str().unwrap(), "-m", "efficientnet_lite0", "-o", output.to_str().unwrap(), "-q"])
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the annotated video is being written (to a temporary file), then interrupt.
    let started = (0..1200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".classify-image-"))
    });
    assert!(started, "the annotated video is being written to a temporary file");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["in.avi", "long.avi"], "no output and no temporary file left");
}
