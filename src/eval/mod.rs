//! `classify-image eval`: a labelled data set through a model, in batches; top-1 and top-5 accuracy, speed and
//! the most confused pairs on stdout, each image's result in a CSV file if asked. The data set is read (and its
//! classes checked) before the model loads; an image that cannot be read or prepared is reported on stderr and
//! counted as a failure, and the run goes on.
mod data;
mod tally;

pub use tally::Format;

use crate::cli::EvalRequest;
use crate::pipeline::{self, Outcome};
use classify_image::error::Result;
use classify_image::{sink, LabelSource, Scores};
use opencv::core::Mat;
use std::time::Instant;

pub fn run(req: EvalRequest) -> Result<Outcome> {
    let labels = req.labels.load()?;
    let classes = data::Classes { labels: &labels, wnids: matches!(req.labels, LabelSource::ImageNet) };
    let items = data::read(&req.data, &classes)?;
    let file = pipeline::weights_file(&req.model, &req.fetch)?;
    let classifier = pipeline::classifier(&req.model, &file, req.preset, req.device, &req.arithmetic, req.quiet)?;
    labels.check_count(classifier.classes(), &req.labels.path())?;

    let progress = pipeline::progress_bar(req.quiet, items.len());
    let mut tally = tally::Tally::default();
    let start = Instant::now();
    for batch in items.chunks(req.batch_size) {
        let read: Vec<Result<(Mat, Vec<String>)>> = batch.iter().map(|l| l.input.read_image_with_warnings()).collect();
        let readable: Vec<&Mat> = read.iter().filter_map(|r| r.as_ref().ok().map(|(image, _)| image)).collect();
        let mut scores = scores(&classifier, &readable).into_iter();
        for (item, image) in batch.iter().zip(read) {
            let name = item.input.path.display().to_string();
            let result = match image {
                Err(e) => Err(e.to_string()),
                Ok((_, warnings)) => {
                    for warning in &warnings {
                        progress.suspend(|| eprintln!("warning: {name}: {warning}"));
                    }
                    let scores = scores.next().expect("one result per readable image");
                    scores.map(|s| s.top(5)).map_err(|e| format!("cannot classify {name}: {e}"))
                }
            };
            if let Err(e) = &result {
                progress.suspend(|| eprintln!("error: {e}"));
            }
            tally.add(name, item.class, result);
            progress.inc(1);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    progress.finish_and_clear();

    let data = req.data.display().to_string();
    let run =
        tally::Run { data: &data, model: &req.model_name, preset_kind: req.preset_kind, preset: req.preset, seconds };
    crate::report::print(&tally.summary(&labels, &run).render(req.format))?;
    if let Some(path) = &req.per_image {
        sink::write_file(path, &tally.per_image_csv(&labels))?;
    }
    Ok(Outcome { failed: tally.failed() })
}

/// The scores of a batch, image by image: one forward pass, or where the batch fails (an image that the
/// preparation refuses), one pass per image, so that the failure is that image's alone.
fn scores(classifier: &classify_image::Classifier, images: &[&Mat]) -> Vec<Result<Scores>> {
    match classifier.classify_batch(images) {
        Ok(scores) => scores.into_iter().map(Ok).collect(),
        Err(_) => images.iter().map(|image| classifier.classify(image)).collect(),
    }
}
