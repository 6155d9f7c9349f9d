//! The run: the model loads once, then images (in batches) or a video's frames go through it, each gets a
//! report record and, if asked, an annotated copy or a window. This module owns the loading and the outcome;
//! `main` only dispatches here.
mod images;
mod video;

use crate::cli::{self, Model, Request, Source, Window};
use crate::report::Reporter;
use classify_image::error::Result;
use classify_image::{sink, weights, Classifier, Labels};

/// How a run ended, when it ran at all.
pub struct Outcome {
    /// Inputs that could not be classified (each was reported).
    pub failed: usize,
}

pub fn run(req: Request) -> Result<Outcome> {
    match &req.source {
        Source::Images(paths) => images::run(&req, paths),
        Source::Video(path) => video::run(&req, video::Input::File(path)),
        Source::Camera(index) => video::run(&req, video::Input::Camera(*index)),
    }
}

/// Loads the network and checks the labels against it: what every source needs.
fn load(req: &Request, report: &mut Reporter) -> Result<(Classifier, Labels)> {
    // The file to load: found (or downloaded) before anything is printed, so that a missing one fails first.
    let file = match &req.model {
        Model::Zoo { id, weights } => weights::hub::resolve(id.spec(), weights.as_deref(), &req.fetch)?,
        Model::TorchScript(path) => path.clone(),
    };
    report.info(&format!("loading {}...", req.model_name));
    let classifier = match &req.model {
        Model::Zoo { id, .. } => Classifier::with_precision(*id, &file, req.device, req.kind)?.with_preset(req.preset),
        Model::TorchScript(_) => Classifier::torchscript(&file, req.preset, req.device, req.kind)?,
    };
    let labels = req.labels.load()?;
    labels.check_count(classifier.classes(), &req.labels.path())?;
    cli::top_k_fits(req.top_k, labels.len())?;
    Ok((classifier, labels))
}

/// Shows an annotated image or frame if the run has a window. The original's default window checks the
/// display only now, after the predictions are printed.
fn show(req: &Request, image: &opencv::core::Mat, wait_ms: i32) -> Result<sink::Key> {
    match req.window {
        Window::No => Ok(sink::Key::Next),
        Window::Asked => sink::show(image, wait_ms),
        Window::Default => {
            sink::check_display()?;
            sink::show(image, wait_ms)
        }
    }
}

fn close_windows(req: &Request) -> Result<()> {
    match req.window {
        Window::No => Ok(()),
        Window::Asked | Window::Default => sink::close_windows(),
    }
}

/// A summary line on stderr, unless -q.
fn summary(req: &Request, line: &str) {
    if !req.quiet {
        eprintln!("{line}");
    }
}

impl From<Outcome> for i32 {
    fn from(outcome: Outcome) -> i32 {
        match outcome.failed {
            0 => classify_image::error::exit::OK,
            _ => classify_image::error::exit::FAILURE, // some inputs failed; each was reported
        }
    }
}
