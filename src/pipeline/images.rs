//! Classifying images: the model and labels load once, images go through in batches, each gets a report
//! record and, if asked, an annotated copy or a window. With one image and text output this is the seed's
//! flow, with its exact stdout.
use crate::cli::{Model, Request, Sink, Source};
use crate::report::Reporter;
use crate::video;
use classify_image::error::{Error, Result};
use classify_image::{annotate, inputs, preprocess, sink, weights, Classifier, Labels};
use opencv::core::Mat;
use std::path::Path;

/// How a run ended, when it ran at all.
pub struct Outcome {
    pub failed: usize,
}

pub fn run(req: Request) -> anyhow::Result<Outcome> {
    match &req.source {
        Source::Images(paths) => Ok(images(&req, paths)?),
        Source::Video(_) | Source::Camera(_) => Ok(video::run(&req)?),
    }
}

/// Loads the network and checks the labels against it: what every source needs.
pub fn load(req: &Request, report: &mut Reporter) -> Result<(Classifier, Labels)> {
    // The file to load: found (or downloaded) before anything is printed, so that a missing one fails first.
    let file = match &req.model {
        Model::Zoo { id, weights } => weights::hub::resolve(id.spec(), weights.as_deref(), req.fetch)?,
        Model::TorchScript(path) => path.clone(),
    };
    report.info(&format!("loading {}...", req.model_name));
    let classifier = match &req.model {
        Model::Zoo { id, .. } => Classifier::with_precision(*id, &file, req.device, req.kind)?.with_preset(req.preset),
        Model::TorchScript(_) => Classifier::torchscript(&file, req.preset, req.device, req.kind)?,
    };
    let labels = req.labels.load()?;
    labels.check_count(classifier.classes(), &req.labels.path())?;
    if req.top_k > labels.len() {
        return Err(Error::Usage(format!("--top-k {}: the model has only {} classes", req.top_k, labels.len())));
    }
    Ok((classifier, labels))
}

fn images(req: &Request, paths: &[std::path::PathBuf]) -> Result<Outcome> {
    let seed = req.seed_mode();
    // Before the model loads: a folder without images is a usage error, not an empty run.
    let inputs = inputs::expand(paths)?;
    // In the seed's case a bad image fails before the model loads, as everything else that can be checked.
    let mut first = if seed { Some(preprocess::read_image(&inputs[0].path)?) } else { None };
    let mut report = Reporter::new(req.format, &req.model_name, seed);
    let (classifier, labels) = load(req, &mut report)?;
    report.info("loading image...");
    report.info("loading ImageNet labels...");
    report.info(&format!("classifying image with '{}'...", req.model_name));

    let progress = progress_bar(req, inputs.len());
    let (mut failed, mut done) = (0, 0);
    // Only draw the label where the image goes somewhere.
    let draw = req.window || req.sink != Sink::None;
    'batches: for batch in inputs.chunks(req.batch_size) {
        let read: Vec<Result<_>> =
            batch.iter().map(|input| first.take().map_or_else(|| preprocess::read_image(&input.path), Ok)).collect();
        let readable: Vec<&Mat> = read.iter().filter_map(|r| r.as_ref().ok()).collect();
        let mut scores = classifier.classify_batch(&readable)?.into_iter();
        // Reported in input order: each image's result, or why it could not be classified.
        for (input, image) in batch.iter().zip(read) {
            let outcome = image.and_then(|image| {
                let scores = scores.next().expect("one result per readable image");
                report.predictions(&input.path.display().to_string(), &scores.top(req.top_k), &labels);
                if !draw {
                    return Ok(None);
                }
                let best = scores.best();
                let annotated =
                    annotate::annotated(&image, &annotate::caption(labels.get(best.index), best.probability))?;
                match &req.sink {
                    Sink::None => Ok(()),
                    Sink::File(path) => sink::write_image(path, &annotated),
                    Sink::Dir(dir) => write_into(dir, &input.relative, &input.path, &annotated),
                }?;
                Ok(Some(annotated))
            });
            progress.inc(1);
            match outcome {
                Ok(annotated) => {
                    done += 1;
                    if let Some(annotated) = annotated.filter(|_| req.window) {
                        if progress.suspend(|| sink::show(&annotated, 0))? == sink::Key::Quit {
                            break 'batches;
                        }
                    }
                }
                Err(e) if seed => return Err(e),
                Err(e) => {
                    failed += 1;
                    progress.suspend(|| eprintln!("error: {e}"));
                    report.failure(&input.path.display().to_string(), &e.to_string());
                }
            }
        }
    }
    progress.finish_and_clear();
    report.finish();
    if req.window {
        sink::close_windows()?;
    }
    if !seed {
        eprintln!("classified {done} of {} image(s) with {}; {failed} failed", inputs.len(), req.model_name);
    }
    Ok(Outcome { failed })
}

/// The annotated copy goes to `dir/relative`; never over an input.
fn write_into(dir: &Path, relative: &Path, input: &Path, image: &Mat) -> Result<()> {
    let dest = dir.join(relative);
    if sink::same_file(input, &dest) {
        return Err(Error::Output { path: dest, reason: "it is the input image, which is never overwritten".into() });
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Output { path: dest.clone(), reason: e.to_string() })?;
    }
    sink::write_image(&dest, image)
}

fn progress_bar(req: &Request, len: usize) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if req.seed_mode() || req.fetch.quiet {
        return ProgressBar::hidden();
    }
    // Drawn only when stderr is a terminal.
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{pos}/{len} images {wide_bar} {per_sec}, ETA {eta}").expect("template"),
    );
    bar
}
