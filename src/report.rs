//! What goes to stdout: the seed's text for one image, or a record per image as text, JSON, JSON Lines or CSV.
//!
//! The JSON schema (one object per image; `json` prints an array of them, `jsonl` one per line):
//! `{"image": "<path>", "model": "<name>", "predictions": [{"rank": 0, "index": 285, "label": "Egyptian_cat",
//! "probability": 0.7879}, …]}`, or `{"image": …, "model": …, "error": "<message>"}` for an image that failed;
//! `"warnings": ["…"]` is added when the decoder found damage (a truncated JPEG) and classified what it read.
//! CSV has the header `image,model,rank,index,label,probability,error,warning` and a row per prediction (one
//! row with only `error` set for a failed image), quoted as RFC 4180 says.
//!
//! Every write is checked. A closed stdout (`| head`: EPIPE) ends the printing quietly while the run goes on,
//! so that every file it was asked to write is still written; any other write error (a full disk) also ends
//! the printing, and [`Reporter::finish`] then returns it, for an exit code that says the report is incomplete.
use classify_image::error::{Error, OutputError};
use classify_image::{Labels, Prediction};
use serde::Serialize;
use std::io::{ErrorKind, Write};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The seed's lines (for several images, each image's block under its path)
    Text,
    /// One JSON array of per-image objects
    Json,
    /// One JSON object per line
    Jsonl,
    /// A header, then a row per prediction
    Csv,
}

#[derive(Serialize)]
struct Ranked<'a> {
    rank: usize,
    index: usize,
    label: &'a str,
    probability: f32,
}

#[derive(Serialize)]
struct Record<'a> {
    image: &'a str,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    predictions: Option<Vec<Ranked<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

fn ranked<'a>(top: &[Prediction], labels: &'a Labels) -> Vec<Ranked<'a>> {
    top.iter()
        .enumerate()
        .map(|(rank, p)| Ranked { rank, index: p.index, label: labels.get(p.index), probability: p.probability })
        .collect()
}

/// One image's record as one line of JSON, without the newline: what `jsonl` prints for it, and what a resume
/// file holds.
pub fn predictions_json(image: &str, model: &str, top: &[Prediction], labels: &Labels, warnings: &[String]) -> String {
    let record = Record { image, model, predictions: Some(ranked(top, labels)), error: None, warnings };
    serde_json::to_string(&record).expect("records serialise")
}

/// The record of an image that could not be classified, as [`predictions_json`] writes one.
pub fn failure_json(image: &str, model: &str, message: &str) -> String {
    let record = Record { image, model, predictions: None, error: Some(message), warnings: &[] };
    serde_json::to_string(&record).expect("records serialise")
}

/// Whether stdout still takes our output.
#[derive(Debug)]
enum State {
    Open,
    /// Its reader went away (EPIPE): printing stops, quietly.
    Closed,
    /// Another write error: printing stops, and the run fails at the end.
    Failed(std::io::Error),
}

/// A JSON array that is open on stdout, for the interruption handler to close ([`close_interrupted_json`]).
/// The reporter holds this lock while it writes and flushes a record, so the handler sees whole records only.
static OPEN_JSON: Mutex<Option<usize>> = Mutex::new(None);

/// Writes records as they come, in one of the formats.
pub struct Reporter<W: Write = std::io::StdoutLock<'static>> {
    format: Format,
    model: String,
    /// The original's exact output: one block without a header, after `[INFO]` lines (unless `narrate` is off).
    seed: bool,
    narrate: bool,
    written: usize,
    out: W,
    state: State,
}

impl Reporter {
    /// A reporter on the process's stdout.
    pub fn stdout(format: Format, model: &str, seed: bool) -> Reporter {
        Reporter::new(std::io::stdout().lock(), format, model, seed)
    }
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W, format: Format, model: &str, seed: bool) -> Reporter<W> {
        let mut r =
            Reporter { format, model: model.to_string(), seed, narrate: seed, written: 0, out, state: State::Open };
        match format {
            Format::Json => {
                r.write(b"[");
                r.flush();
                if r.is_open() {
                    *OPEN_JSON.lock().unwrap_or_else(|e| e.into_inner()) = Some(0);
                }
            }
            Format::Csv => r.row(&["image", "model", "rank", "index", "label", "probability", "error", "warning"]),
            Format::Text | Format::Jsonl => {}
        }
        r
    }

    fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    fn check(&mut self, result: std::io::Result<()>) {
        if let (Err(e), State::Open) = (result, &self.state) {
            self.state = if e.kind() == ErrorKind::BrokenPipe { State::Closed } else { State::Failed(e) };
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.is_open() {
            let result = self.out.write_all(bytes);
            self.check(result);
        }
    }

    fn flush(&mut self) {
        if self.is_open() {
            let result = self.out.flush();
            self.check(result);
        }
    }

    fn line(&mut self, line: &str) {
        self.write(format!("{line}\n").as_bytes());
    }

    fn row(&mut self, fields: &[&str]) {
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(fields).expect("writing to memory");
        let bytes = csv.into_inner().expect("flushing to memory");
        self.write(&bytes);
    }

    /// Without the `[INFO]` narration (`-q`).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.narrate &= !quiet;
        self
    }

    /// A line of the original's `[INFO]` narration, in its case only.
    pub fn info(&mut self, line: &str) {
        if self.narrate {
            self.line(&format!("[INFO] {line}"));
            self.flush();
        }
    }

    /// One image's top predictions, with what the decoder warned about it.
    pub fn predictions(&mut self, image: &str, top: &[Prediction], labels: &Labels, warnings: &[String]) {
        let ranked = ranked(top, labels);
        match self.format {
            Format::Text => {
                if !self.seed {
                    self.line(&format!("== {image}"));
                }
                for r in &ranked {
                    // The seed prints `probabilities[0, idx] * 100`: a float32 product, shown as a Python float.
                    self.line(&format!("{}. {}: {:.2}%", r.rank, r.label, (r.probability * 100.0) as f64));
                }
            }
            Format::Csv => {
                let warning = warnings.join("; ");
                for r in &ranked {
                    let (rank, index, p) = (r.rank.to_string(), r.index.to_string(), r.probability.to_string());
                    let model = self.model.clone();
                    self.row(&[image, &model, &rank, &index, r.label, &p, "", &warning]);
                }
            }
            Format::Json | Format::Jsonl => {
                let text = predictions_json(image, &self.model, top, labels, warnings);
                self.json(&text);
            }
        }
        self.flush();
    }

    /// An image that could not be classified. Text goes to stderr only (the caller prints it).
    pub fn failure(&mut self, image: &str, message: &str) {
        match self.format {
            Format::Text => {}
            Format::Csv => {
                let model = self.model.clone();
                self.row(&[image, &model, "", "", "", "", message, ""]);
            }
            Format::Json | Format::Jsonl => {
                let text = failure_json(image, &self.model, message);
                self.json(&text);
            }
        }
        self.flush();
    }

    /// A record, `text` as [`predictions_json`] or [`failure_json`] made it.
    fn json(&mut self, text: &str) {
        match self.format {
            Format::Json => {
                let mut open = OPEN_JSON.lock().unwrap_or_else(|e| e.into_inner());
                let separator = if self.written == 0 { "\n  " } else { ",\n  " };
                self.write(format!("{separator}{text}").as_bytes());
                self.flush();
                self.written += 1;
                // A stdout that no longer takes output has nothing to close.
                *open = self.is_open().then_some(self.written);
            }
            _ => {
                self.line(text);
                self.written += 1;
            }
        }
    }

    /// Closes the JSON array and flushes. A write error other than a closed pipe is returned: the report on
    /// stdout is incomplete.
    pub fn finish(mut self) -> Result<(), Error> {
        if self.format == Format::Json {
            // Held while the array is closed, so that an interruption cannot close it a second time.
            let mut open = OPEN_JSON.lock().unwrap_or_else(|e| e.into_inner());
            *open = None;
            self.write(if self.written == 0 { b"]\n" } else { b"\n]\n" });
            self.flush();
        }
        self.flush();
        match self.state {
            State::Failed(e) => Err(stdout_error(e)),
            State::Open | State::Closed => Ok(()),
        }
    }
}

/// The error for a failed write to stdout.
pub fn stdout_error(e: std::io::Error) -> Error {
    Error::output("stdout", OutputError::Truncated(e))
}

/// Prints `text` to stdout: a closed stdout is quiet, any other write error is returned.
pub fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(stdout_error(e)),
        _ => Ok(()),
    }
}

/// On an interruption: closes a JSON array left open on stdout, so what was printed stays valid JSON. Waits
/// at most a second for a record being written; writes straight to the file descriptor, since the reporter
/// holds Rust's stdout lock.
pub fn close_interrupted_json() {
    for _ in 0..100 {
        if let Ok(mut open) = OPEN_JSON.try_lock() {
            if let Some(written) = open.take() {
                let close: &[u8] = if written == 0 { b"]\n" } else { b"\n]\n" };
                // SAFETY: writing a static buffer to fd 1.
                unsafe { libc::write(1, close.as_ptr().cast(), close.len()) };
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails like a full disk, or a closed pipe, after `room` bytes.
    struct Limited {
        room: usize,
        kind: ErrorKind,
        got: Vec<u8>,
    }

    impl Write for Limited {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.got.len() + buf.len() > self.room {
                return Err(std::io::Error::from(self.kind));
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn top() -> Vec<Prediction> {
        vec![Prediction { index: 967, probability: 0.9 }, Prediction { index: 968, probability: 0.05 }]
    }

    #[test]
    fn a_full_stdout_fails_at_the_end_and_a_closed_one_does_not() {
        let labels = Labels::imagenet();
        for (kind, fails) in [(ErrorKind::StorageFull, true), (ErrorKind::BrokenPipe, false)] {
            for format in [Format::Text, Format::Json, Format::Jsonl, Format::Csv] {
                let out = Limited { room: 40, kind, got: Vec::new() };
                let mut r = Reporter::new(out, format, "m", false);
                for i in 0..5 {
                    r.predictions(&format!("image{i}.png"), &top(), &labels, &[]);
                }
                assert_eq!(r.finish().is_err(), fails, "{kind:?} {format:?}");
            }
        }
    }

    #[test]
    fn csv_quotes_labels_and_carries_warnings() {
        let labels = Labels::imagenet();
        let mut buf = Vec::new();
        let mut r = Reporter::new(&mut buf, Format::Csv, "m", false);
        let warn = vec!["truncated JPEG".to_string()];
        r.predictions("a,b.jpg", &[Prediction { index: 335, probability: 0.5 }], &labels, &warn);
        r.failure("c.png", "cannot read image c.png: \"x\"");
        r.finish().unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "image,model,rank,index,label,probability,error,warning");
        assert_eq!(
            lines[1],
            "\"a,b.jpg\",m,0,335,\"fox_squirrel, eastern_fox_squirrel, Sciurus_niger\",0.5,,truncated JPEG"
        );
        assert_eq!(lines[2], "c.png,m,,,,,\"cannot read image c.png: \"\"x\"\"\",");
    }

    #[test]
    fn json_is_one_valid_array_with_warnings_only_where_there_are_some() {
        let labels = Labels::imagenet();
        let mut buf = Vec::new();
        let mut r = Reporter::new(&mut buf, Format::Json, "m", false);
        r.predictions("a.png", &top(), &labels, &[]);
        r.predictions("b.jpg", &top(), &labels, &["truncated JPEG".to_string()]);
        r.failure("c.png", "cannot read");
        r.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let records = v.as_array().unwrap();
        assert_eq!(records.len(), 3);
        assert!(records[0].get("warnings").is_none());
        assert_eq!(records[1]["warnings"][0], "truncated JPEG");
        assert_eq!(records[2]["error"], "cannot read");
    }
}
