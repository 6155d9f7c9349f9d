//! Images: read, classified in batches, reported in input order, annotated copies written. In the original's
//! case (one image, text) a bad image fails the run before the model loads; otherwise each failure is reported
//! in its place and the rest go on.
use super::{close_windows, load, progress_bar, show, summary, Outcome};
use crate::cli::{is_stdin, Request, Sink, Window};
use crate::report::Reporter;
use classify_image::error::{Error, ImageError, OutputError, Result};
use classify_image::{annotate, inputs, preprocess, sink};
use opencv::core::Mat;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn run(req: &Request, paths: &[PathBuf]) -> Result<Outcome> {
    // Before the model loads: a folder without images is a usage error, not an empty run.
    let inputs = inputs::expand(paths)?;
    if let Sink::Dir(dir) = &req.sink {
        check_distinct_outputs(dir, &inputs)?;
    }
    // In the original's case a bad image fails before the model loads, as everything else that can be checked.
    let mut first = if req.seed { Some(read(&inputs[0])?) } else { None };
    let mut report = Reporter::stdout(req.format, &req.model_name, req.seed).quiet(req.quiet);
    let loaded = load(req, &mut report)?;
    let labels = &loaded.labels;
    report.info("loading image...");
    report.info("loading ImageNet labels...");
    report.info(&format!("classifying image with '{}'...", req.model_name));

    let progress = progress_bar(req.seed || req.quiet, inputs.len());
    let (mut failed, mut done) = (0, 0);
    // Only draw the label where the image goes somewhere.
    let draw = req.window != Window::No || req.sink != Sink::None;
    'batches: for batch in inputs.chunks(req.batch_size) {
        let read: Vec<Result<_>> = batch.iter().map(|input| first.take().map_or_else(|| read(input), Ok)).collect();
        let readable: Vec<&Mat> = read.iter().filter_map(|r| r.as_ref().ok().map(|(image, _)| image)).collect();
        // With --explain each image gets its own forward pass (and a backward one) in `Loaded::score`.
        let batch_scores = match loaded.explain {
            None => loaded.classifier.classify_batch(&readable)?,
            Some(_) => Vec::new(),
        };
        let mut scores = batch_scores.into_iter();
        // Reported in input order: each image's result, or why it could not be classified.
        for (input, image) in batch.iter().zip(read) {
            let name = input.path.display().to_string();
            let outcome = image.and_then(|(image, warnings)| {
                let (scores, map) = match scores.next() {
                    Some(scores) => (scores, None),
                    None => loaded.score(&image)?,
                };
                for warning in &warnings {
                    progress.suspend(|| eprintln!("warning: {name}: {warning}"));
                }
                report.predictions(&name, &scores.top(req.top_k), labels, &warnings);
                if !draw {
                    return Ok(None);
                }
                let best = scores.best();
                let image = match &map {
                    Some(map) => loaded.overlay(&image, map)?,
                    None => image,
                };
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
                    if let Some(annotated) = annotated {
                        if progress.suspend(|| show(req, &annotated, 0))? == sink::Key::Quit {
                            break 'batches;
                        }
                    }
                }
                Err(e) if req.seed => return Err(e),
                Err(e) => {
                    failed += 1;
                    progress.suspend(|| eprintln!("error: {e}"));
                    report.failure(&name, &e.to_string());
                }
            }
        }
    }
    progress.finish_and_clear();
    let printed = report.finish();
    close_windows(req)?;
    if !req.seed {
        summary(
            req,
            &format!("classified {done} of {} image(s) with {}; {failed} failed", inputs.len(), req.model_name),
        );
    }
    printed?;
    Ok(Outcome { failed })
}

/// An image (from a file, or `-` for stdin) and what its decoder warned about.
fn read(input: &inputs::Input) -> Result<(Mat, Vec<String>)> {
    let path = input.path.as_path();
    if !is_stdin(path) {
        return input.read_image_with_warnings();
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
        .map_err(|e| Error::Image { path: path.to_path_buf(), source: ImageError::Stdin(e) })?;
    preprocess::decode_with_warnings(&bytes).map_err(|source| Error::Image { path: "stdin".into(), source })
}

/// Two inputs from different folders can have the same relative name (`a/x.png`, `b/x.png`); their copies
/// would overwrite each other in the output folder, so such a run is refused before anything is done. One file
/// given twice is no clash.
fn check_distinct_outputs(dir: &Path, inputs: &[inputs::Input]) -> Result<()> {
    let mut seen: HashMap<&Path, &Path> = HashMap::new();
    for input in inputs {
        match seen.get(input.relative.as_path()) {
            Some(other) if *other != input.path && !sink::same_file(other, &input.path) => {
                return Err(Error::Usage(format!(
                    "--output-dir {}: {} and {} would both be written to {}; classify them in separate runs or \
                     into separate folders",
                    dir.display(),
                    other.display(),
                    input.path.display(),
                    dir.join(&input.relative).display()
                )));
            }
            _ => {
                seen.insert(&input.relative, &input.path);
            }
        }
    }
    Ok(())
}

/// The annotated copy goes to `dir/relative`; never over an input.
fn write_into(dir: &Path, relative: &Path, input: &Path, image: &Mat) -> Result<()> {
    let dest = dir.join(relative);
    if sink::same_file(input, &dest) {
        return Err(Error::output(dest, OutputError::IsInput));
    }
    sink::write_image(&dest, image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &str, relative: &str) -> inputs::Input {
        inputs::Input { path: path.into(), relative: relative.into(), unreadable: None }
    }

    #[test]
    fn outputs_from_two_roots_with_one_name_clash() {
        let clash = [input("a/x.png", "x.png"), input("b/x.png", "x.png")];
        let err = check_distinct_outputs(Path::new("d"), &clash).unwrap_err().to_string();
        assert!(err.contains("a/x.png") && err.contains("b/x.png") && err.contains("d/x.png"), "{err}");
        let fine = [input("a/x.png", "x.png"), input("a/x.png", "x.png"), input("b/y.png", "y.png")];
        assert!(check_distinct_outputs(Path::new("d"), &fine).is_ok());
    }
}
