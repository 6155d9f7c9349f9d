//! Classifying a video file or a camera: every frame (or every Nth) is classified, and every frame gets the
//! label of the last classified one and the classification rate drawn on it, shown live and/or written.
use super::{close_windows, load, show, summary, Outcome};
use crate::cli::{Request, Sink};
use crate::report::Reporter;
use classify_image::error::{Error, Result, VideoError};
use classify_image::{annotate, media, sink};
use opencv::{core, prelude::*};
use std::path::Path;
use std::time::Instant;

/// Where the frames come from.
pub enum Input<'a> {
    File(&'a Path),
    Camera(i32),
}

pub fn run(req: &Request, input: Input) -> Result<Outcome> {
    // `name` names the source in messages, `records` in the report (`FILE#FRAME`).
    let (mut capture, name, records) = match input {
        Input::File(path) => {
            let fail = |source: VideoError| Error::Video { name: format!("video {}", path.display()), source };
            if !path.is_file() {
                return Err(fail(VideoError::NotFound));
            }
            let p = path.to_str().ok_or_else(|| fail(VideoError::PathNotUtf8))?;
            let capture = media::VideoCapture::open_file(p)?;
            (capture, format!("video {}", path.display()), path.display().to_string())
        }
        Input::Camera(index) => {
            let capture = media::VideoCapture::open_camera(index)?;
            (capture, format!("camera {index}"), format!("camera {index}"))
        }
    };
    let no_video = |source: VideoError| Error::Video { name: name.clone(), source };
    if !capture.is_opened()? {
        return Err(no_video(VideoError::CannotOpen));
    }
    // The first frame is read before the model loads: a file that yields none is not a video.
    let mut frame = core::Mat::default();
    if !capture.read(&mut frame)? || frame.empty() {
        return Err(no_video(VideoError::NoFrame));
    }
    let mut report = Reporter::stdout(req.format, &req.model_name, false);
    let loaded = load(req, &mut report)?;
    let fps = Some(capture.fps()?).filter(|f| f.is_finite() && *f > 0.0).unwrap_or(25.0);

    let mut writer = None;
    let (mut frames, mut classified) = (0u64, 0u64);
    let mut shown = Vec::new();
    // With --explain, the Grad-CAM map of the last classified frame, laid over every frame until the next one.
    let mut map = None;
    let started = Instant::now();
    loop {
        if frames % req.every as u64 == 0 {
            let (scores, frame_map) = loaded.score(&frame)?;
            report.predictions(&format!("{records}#{frames}"), &scores.top(req.top_k), &loaded.labels, &[]);
            shown = req.caption.shown(&scores, req.top_k, &loaded.labels);
            map = frame_map;
            classified += 1;
        }
        let overlaid = map.as_ref().map(|map| loaded.overlay(&frame, map)).transpose()?;
        let rate = classified as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let annotated = annotate::annotated(
            overlaid.as_ref().unwrap_or(&frame),
            req.caption,
            &shown,
            Some(&format!("{rate:.1} classifications/s")),
        )?;
        if let Sink::File(path) = &req.sink {
            let file = match &mut writer {
                Some(file) => file,
                None => writer.insert(sink::VideoFile::create(path, fps, annotated.size()?)?),
            };
            file.write(&annotated)?;
        }
        frames += 1;
        if show(req, &annotated, 1)? == sink::Key::Quit {
            break;
        }
        if !capture.read(&mut frame)? || frame.empty() {
            break;
        }
    }
    if let Some(file) = writer {
        file.finish()?;
    }
    close_windows(req)?;
    let printed = report.finish();
    summary(req, &format!("{records}: {frames} frame(s), {classified} classified with {}", req.model_name));
    printed?;
    Ok(Outcome { failed: 0 })
}
