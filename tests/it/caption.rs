//! `--caption box|bars` through the binary: on a generated wide image and a tiny one, the output differs from
//! the input exactly in a band across the top, the one `caption::layout` computes for the printed prediction,
//! with white text on it; the rows below are untouched. In a video every frame gets the band.
use crate::common::real_lite0_weights;
use crate::video::{frames, make_video};

use assert_cmd::Command;
use classify_image::caption::{self, Entry};
use opencv::{core, imgcodecs, prelude::*};
use std::path::Path;

/// A smooth pattern with no black and no white pixel, so that any darkening or white text shows.
fn make_image(path: &Path, width: i32, height: i32) {
    let mut image =
        core::Mat::new_rows_cols_with_default(height, width, core::CV_8UC3, core::Scalar::all(0.0)).unwrap();
    for y in 0..height {
        for (x, pixel) in image.at_row_mut::<core::Vec3b>(y).unwrap().iter_mut().enumerate() {
            let (x, y) = (x as i32, y);
            *pixel =
                core::Vec3b::from([(x * 7 + y * 3) % 190, (x * 3 + y * 5) % 190, (x + y) % 190].map(|v| 60 + v as u8));
        }
    }
    assert!(imgcodecs::imwrite(path.to_str().unwrap(), &image, &core::Vector::new()).unwrap());
}

fn read(path: &Path) -> core::Mat {
    imgcodecs::imread(path.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap()
}

/// Runs the binary with `args` and the real Lite0 weights; returns the JSON records on stdout.
fn classify(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::cargo_bin("classify-image")
        .unwrap()
        .args(["-m", "efficientnet_lite0", "--weights"])
        .arg(real_lite0_weights())
        .args(["--format", "json", "-q"])
        .args(args)
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

/// The entries of the caption for a JSON record: the top-1 (box), or every prediction with a bar (bars).
fn entries(record: &serde_json::Value, bars: bool) -> Vec<Entry> {
    let predictions = record["predictions"].as_array().unwrap();
    let count = if bars { predictions.len() } else { 1 };
    predictions[..count]
        .iter()
        .map(|p| Entry::prediction(p["label"].as_str().unwrap(), p["probability"].as_f64().unwrap() as f32, bars))
        .collect()
}

/// `output` differs from `input` in every pixel of the rows of the band `entries` get, has white text there, and
/// is the same below.
fn assert_only_the_band_changed(input: &Path, output: &Path, entries: &[Entry]) {
    let (before, after) = (read(input), read(output));
    let size = before.size().unwrap();
    assert_eq!(after.size().unwrap(), size);
    let layout = caption::layout(size, entries).unwrap().expect("the caption fits");
    let band = layout.band.height;
    assert!(band > 0 && band < size.height, "{layout:?}");
    let mut white = 0;
    for y in 0..size.height {
        let (b, a) = (before.at_row::<core::Vec3b>(y).unwrap(), after.at_row::<core::Vec3b>(y).unwrap());
        if y < band {
            assert!(b.iter().zip(a).all(|(b, a)| b != a), "{}: row {y} of the band", output.display());
            white += a.iter().filter(|p| p.0.iter().all(|&c| c > 200)).count();
        } else {
            assert!(b == a, "{}: row {y}, under the band ({band} rows), changed", output.display());
        }
    }
    assert!(white > 30, "{}: {white} white pixels on the band", output.display());
}

#[test]
fn box_on_a_wide_and_a_tiny_image_darkens_a_band_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    for (name, width, height) in [("wide", 1600, 200), ("tiny", 64, 64)] {
        let (input, output) = (dir.path().join(format!("{name}.png")), dir.path().join(format!("{name}-box.png")));
        make_image(&input, width, height);
        let records = classify(&[input.to_str().unwrap(), "--caption", "box", "-o", output.to_str().unwrap()]);
        assert_only_the_band_changed(&input, &output, &entries(&records[0], false));
    }
}

#[test]
fn bars_into_a_folder_show_the_top_k() {
    let dir = tempfile::tempdir().unwrap();
    let (inputs, outputs) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir(&inputs).unwrap();
    make_image(&inputs.join("a.png"), 640, 480);
    make_image(&inputs.join("b.png"), 300, 900);
    let records = classify(&[
        inputs.to_str().unwrap(),
        "--caption",
        "bars",
        "-k",
        "3",
        "--output-dir",
        outputs.to_str().unwrap(),
    ]);
    for record in &records {
        let input = Path::new(record["image"].as_str().unwrap());
        let entries = entries(record, true);
        assert_eq!(entries.len(), 3);
        assert_only_the_band_changed(input, &outputs.join(input.file_name().unwrap()), &entries);
    }
}

/// The mean of a frame's rows `rows`, over all channels.
fn mean(frame: &core::Mat, rows: std::ops::Range<i32>) -> f64 {
    let part = frame.row_range(&core::Range::new(rows.start, rows.end).unwrap()).unwrap();
    let m = core::mean(&part, &core::no_array()).unwrap();
    (m[0] + m[1] + m[2]) / 3.0
}

#[test]
fn every_frame_of_a_video_gets_the_band() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.avi"), dir.path().join("out.avi"));
    make_video(&input);
    let out = Command::cargo_bin("classify-image")
        .unwrap()
        .args(["--video", input.to_str().unwrap(), "-m", "efficientnet_lite0", "--caption", "box", "-q", "-o"])
        .arg(&output)
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (originals, annotated) = (frames(&input), frames(&output));
    assert_eq!(annotated.len(), originals.len());
    for (i, (o, a)) in originals.iter().zip(&annotated).enumerate() {
        // The band is at least a row of 10-px text high; Motion JPEG blurs its edge a little.
        let (top_before, top_after) = (mean(o, 0..18), mean(a, 0..18));
        assert!(top_after < top_before * 0.5, "frame {i}: top rows {top_before:.0} -> {top_after:.0}");
        let (low_before, low_after) = (mean(o, 120..240), mean(a, 120..240));
        assert!((low_before - low_after).abs() < 3.0, "frame {i}: bottom half {low_before:.0} -> {low_after:.0}");
    }
}
