//! The run: the model loads once, then images (in batches) or a video's frames go through it, each gets a
//! report record and, if asked, an annotated copy or a window. This module owns the loading and the outcome;
//! `main` only dispatches here.
mod images;
mod video;

use crate::cli::{self, Arithmetic, Explain, Model, Request, Source, Window};
use crate::report::Reporter;
use classify_image::error::{Error, Result};
use classify_image::models::{Precision, Preset};
use classify_image::weights::hub::Fetch;
use classify_image::{calibration, cam, sink, weights, Classifier, LabelSource, Labels, Scores};
use opencv::core::Mat;
use opencv::prelude::*;
use std::path::{Path, PathBuf};
use tch::Device;

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

/// The network with its labels, ready for a source.
struct Loaded {
    classifier: Classifier,
    labels: Labels,
    /// With --explain: Grad-CAM's class, `None` for each image's most likely one.
    explain: Option<Option<usize>>,
}

impl Loaded {
    /// The scores of one image and, with --explain, its Grad-CAM map from the same forward pass.
    fn score(&self, image: &Mat) -> Result<(Scores, Option<Mat>)> {
        match self.explain {
            None => Ok((self.classifier.classify(image)?, None)),
            Some(class) => {
                let explanation = self.classifier.explain(image, class)?;
                Ok((explanation.scores, Some(explanation.map)))
            }
        }
    }

    /// `image` with a Grad-CAM map laid over the part of it the network saw.
    fn overlay(&self, image: &Mat, map: &Mat) -> Result<Mat> {
        cam::overlay(image, map, cam::input_region(image.cols(), image.rows(), self.classifier.preset()))
    }
}

/// Loads the network and checks the labels (and the class to explain) against it: what every source needs.
fn load(req: &Request, report: &mut Reporter) -> Result<Loaded> {
    // The file to load: found (or downloaded) before anything is printed, so that a missing one fails first.
    let file = weights_file(&req.model, &req.fetch)?;
    report.info(&format!("loading {}...", req.model_name));
    let classifier = classifier(&req.model, &file, req.preset, req.device, &req.arithmetic, req.quiet)?;
    let labels = req.labels.load()?;
    labels.check_count(classifier.classes(), &req.labels.path())?;
    cli::top_k_fits(req.top_k, labels.len())?;
    let explain = match &req.explain {
        None => None,
        Some(_) if !classifier.explainable() => return Err(Error::NoCamLayer),
        Some(Explain::Top1) => Some(None),
        Some(Explain::Class(name)) => {
            let wnids = matches!(req.labels, LabelSource::ImageNet);
            Some(Some(cli::explained_class(name, &labels, wnids)?))
        }
    };
    Ok(Loaded { classifier, labels, explain })
}

/// The file that `model` loads from: a zoo model's weights, found (or downloaded) as the weights resolver says,
/// or the TorchScript file.
pub fn weights_file(model: &Model, fetch: &Fetch) -> Result<PathBuf> {
    match model {
        Model::Zoo { id, weights } => weights::hub::resolve(*id, weights.as_deref(), fetch),
        Model::TorchScript(path) => Ok(path.clone()),
    }
}

/// `model` loaded from `file` (see [`weights_file`]), preparing images as `preset` says.
/// In int8, the ranges come from the calibration file given, checked against the model and the weights, or
/// from the built-in calibration (measured the first time, announced unless `quiet`).
pub fn classifier(
    model: &Model,
    file: &Path,
    preset: Preset,
    device: Device,
    arithmetic: &Arithmetic,
    quiet: bool,
) -> Result<Classifier> {
    let precision = arithmetic.precision;
    match model {
        Model::Zoo { id, .. } if precision == Precision::Int8 => {
            let ranges = match &arithmetic.calibration {
                Some(path) => {
                    let given = calibration::read(path)?;
                    calibration::check_fits(&given, path, *id, &calibration::weights_sha256(file)?)?;
                    given
                }
                None => calibration::builtin(*id, file, quiet)?,
            };
            Ok(Classifier::int8(*id, file, &ranges)?.with_preset(preset))
        }
        Model::Zoo { id, .. } => Ok(Classifier::with_precision(*id, file, device, precision)?.with_preset(preset)),
        Model::TorchScript(_) => Classifier::torchscript(file, preset, device, precision),
    }
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

/// A progress bar on stderr for `len` images, drawn only when stderr is a terminal and `hidden` is false.
pub fn progress_bar(hidden: bool, len: usize) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{pos}/{len} images {wide_bar} {per_sec}, ETA {eta}").expect("template"),
    );
    bar
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
