//! Classifying a video file or a camera: every frame (or every Nth) is classified, and every frame gets the
//! label of the last classified one and the classification rate drawn on it, shown live and/or written.
use crate::app::{load, Outcome};
use crate::cli::{Request, Sink, Source};
use crate::report::Reporter;
use classify_image::error::{Error, Result};
use classify_image::{annotate, sink};
use opencv::{core, prelude::*, videoio};
use std::time::Instant;

pub fn run(req: &Request) -> Result<Outcome> {
    let (mut capture, name) = match &req.source {
        Source::Video(path) => {
            let fail = |reason: String| Error::Image { path: path.clone(), reason };
            if !path.is_file() {
                return Err(fail("no such video file; check the path".into()));
            }
            let p = path.to_str().ok_or_else(|| fail("the path is not UTF-8".into()))?;
            (videoio::VideoCapture::from_file(p, videoio::CAP_ANY)?, path.display().to_string())
        }
        Source::Camera(index) => (videoio::VideoCapture::new(*index, videoio::CAP_ANY)?, format!("camera {index}")),
        Source::Images(_) => unreachable!("images go through app::images"),
    };
    if !capture.is_opened()? {
        return Err(Error::Image { path: name.clone().into(), reason: "OpenCV cannot open it as a video".into() });
    }
    let mut report = Reporter::new(req.format, &req.model_name, false);
    let (classifier, labels) = load(req, &mut report)?;
    let fps = Some(capture.get(videoio::CAP_PROP_FPS)?).filter(|f| f.is_finite() && *f > 0.0).unwrap_or(25.0);

    let mut writer = None;
    let (mut frames, mut classified) = (0u64, 0u64);
    let mut caption = String::new();
    let started = Instant::now();
    let mut frame = core::Mat::default();
    while capture.read(&mut frame)? && !frame.empty() {
        if frames % req.every as u64 == 0 {
            let scores = classifier.classify(&frame)?;
            report.predictions(&format!("{name}#{frames}"), &scores.top(req.top_k), &labels);
            let best = scores.best();
            caption = annotate::caption(labels.get(best.index), best.probability);
            classified += 1;
        }
        let mut annotated = annotate::annotated(&frame, &caption)?;
        let rate = classified as f64 / started.elapsed().as_secs_f64().max(1e-9);
        annotate::red_text(&mut annotated, &format!("{rate:.1} classifications/s"), core::Point::new(10, 60), 0.6, 1)?;
        if let Sink::File(path) = &req.sink {
            let file = match &mut writer {
                Some(file) => file,
                None => writer.insert(sink::VideoFile::create(path, fps, annotated.size()?)?),
            };
            file.write(&annotated)?;
        }
        frames += 1;
        if req.window && sink::show(&annotated, 1)? == sink::Key::Quit {
            break;
        }
    }
    if let Some(file) = writer {
        file.finish()?;
    }
    if req.window {
        sink::close_windows()?;
    }
    report.finish();
    eprintln!("{name}: {frames} frame(s), {classified} classified with {}", req.model_name);
    Ok(Outcome { failed: 0 })
}
