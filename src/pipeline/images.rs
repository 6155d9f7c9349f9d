//! Images: read, classified in batches, reported in input order, annotated copies written. In the original's
//! case (one image, text) a bad image fails the run before the model loads; otherwise each failure is reported
//! in its place and the rest go on.
use super::{close_windows, load, progress_bar, show, summary, Outcome};
use crate::cli::{is_stdin, Request, Sink, Window};
use crate::report::{self, Reporter};
use crate::{resume, shard};
use classify_image::error::{Error, ImageError, OutputError, Result};
use classify_image::{annotate, inputs, preprocess, sink};
use opencv::core::Mat;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn run(req: &Request, paths: &[PathBuf]) -> Result<Outcome> {
    let (inputs, scope, ledger) = plan(req, paths)?;
    // In the original's case a bad image fails before the model loads, as everything else that can be checked.
    let mut first = if req.seed { Some(read(&inputs[0])?) } else { None };
    let mut report = Reporter::stdout(req.format, &req.model_name, req.seed).quiet(req.quiet);
    if inputs.is_empty() {
        report.finish()?;
        summary(req, &format!("nothing to do: {}", scope.describe(req)));
        return Ok(Outcome { failed: 0 });
    }
    let loaded = load(req, &mut report)?;
    let labels = &loaded.labels;
    // Opened only now that the model is loaded: a run that cannot start writes nothing.
    let mut journal = ledger.map(resume::Ledger::into_journal).transpose()?;
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
        // With --explain each image that is drawn gets its own forward pass (and a backward one) in
        // `Loaded::score`; the others are classified in one batch.
        let explain = draw && loaded.explain.is_some();
        let mut scores = if explain { Vec::new() } else { loaded.classifier.classify_batch(&readable)? }.into_iter();
        // Reported in input order: each image's result, or why it could not be classified.
        for (input, image) in batch.iter().zip(read) {
            let name = input.path.display().to_string();
            let outcome = image.and_then(|(image, warnings)| {
                let (scores, map) = match explain {
                    true => loaded.score(&image)?,
                    false => (scores.next().expect("one result per readable image"), None),
                };
                for warning in &warnings {
                    progress.suspend(|| eprintln!("warning: {name}: {warning}"));
                }
                let top = scores.top(req.top_k);
                report.predictions(&name, &top, labels, &warnings);
                let record = journal
                    .is_some()
                    .then(|| report::predictions_json(&name, &req.model_name, &top, labels, &warnings));
                if !draw {
                    return Ok((None, record));
                }
                let image = match &map {
                    Some(map) => loaded.overlay(&image, map)?,
                    None => image,
                };
                let shown = req.caption.shown(&scores, req.top_k, labels);
                let annotated = annotate::annotated(&image, req.caption, &shown, None)?;
                match &req.sink {
                    Sink::None => Ok(()),
                    Sink::File(path) => sink::write_image(path, &annotated),
                    Sink::Dir(dir) => write_into(dir, &input.relative, &input.path, &annotated),
                }?;
                Ok((Some(annotated), record))
            });
            progress.inc(1);
            match outcome {
                Ok((annotated, record)) => {
                    done += 1;
                    // Recorded once its annotated copy, if any, is written.
                    if let (Some(journal), Some(record)) = (&mut journal, record) {
                        journal.append(&record)?;
                    }
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
                    if let Some(journal) = &mut journal {
                        journal.append(&report::failure_json(&name, &req.model_name, &e.to_string()))?;
                    }
                }
            }
        }
    }
    progress.finish_and_clear();
    let printed = report.finish();
    close_windows(req)?;
    if !req.seed {
        let mut line =
            format!("classified {done} of {} image(s) with {}; {failed} failed", inputs.len(), req.model_name);
        if req.shard.is_some() || req.resume.is_some() {
            line += &format!(" ({})", scope.describe(req));
        }
        summary(req, &line);
    }
    printed?;
    Ok(Outcome { failed })
}

/// The images this run classifies, found before the model loads: the paths expanded (a folder without images is
/// a usage error, not an empty run), this shard's, and of those the ones the resume file does not record yet;
/// with their counts, and the resume file read.
fn plan(req: &Request, paths: &[PathBuf]) -> Result<(Vec<inputs::Input>, Scope, Option<resume::Ledger>)> {
    let (all, shard) = match req.shard {
        Some(shard) => shard::select(paths, shard).map(|(all, held)| (all, Some(held)))?,
        None => (inputs::expand(paths)?, None),
    };
    // Over all the inputs, so that shards writing into one folder cannot clash either.
    if let Sink::Dir(dir) = &req.sink {
        check_distinct_outputs(dir, &all)?;
    }
    let total = all.len();
    let held = shard.unwrap_or(all);
    let scope = Scope { total, held: held.len(), recorded: 0 };
    let Some(path) = &req.resume else { return Ok((held, scope, None)) };
    let ledger = resume::Ledger::read(path, &req.model_name)?;
    let pending = ledger.pending(held);
    if ledger.records() > 0 && scope.held > 0 && pending.len() == scope.held {
        eprintln!(
            "warning: --resume {}: none of its {} record(s) names an image of this run (paths are matched as \
             given: data/x.png and ./data/x.png differ)",
            path.display(),
            ledger.records()
        );
    }
    let recorded = scope.held - pending.len();
    Ok((pending, Scope { recorded, ..scope }, Some(ledger)))
}

/// How many images a split run sees: all of them, this shard's, and those of this shard already recorded.
#[derive(Debug, Clone, Copy)]
struct Scope {
    total: usize,
    held: usize,
    recorded: usize,
}

impl Scope {
    /// `shard 2/3 holds 8 of the 24 image(s); 5 already recorded in out.jsonl`
    fn describe(&self, req: &Request) -> String {
        let mut parts = Vec::new();
        if let Some(shard) = req.shard {
            parts.push(format!("shard {shard} holds {} of the {} image(s)", self.held, self.total));
        }
        if let Some(path) = &req.resume {
            parts.push(format!("{} of {} already recorded in {}", self.recorded, self.held, path.display()));
        }
        parts.join("; ")
    }
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
