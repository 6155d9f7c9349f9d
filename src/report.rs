//! What goes to stdout: the seed's text for one image, or a record per image as text, JSON, JSON Lines or CSV.
//!
//! The JSON schema (one object per image; `json` prints an array of them, `jsonl` one per line):
//! `{"image": "<path>", "model": "<name>", "predictions": [{"rank": 0, "index": 285, "label": "Egyptian_cat",
//! "probability": 0.7879}, …]}`, or `{"image": …, "model": …, "error": "<message>"}` for an image that failed.
//! CSV has the header `image,model,rank,index,label,probability,error` and a row per prediction (one row with
//! only `error` set for a failed image), quoted as RFC 4180 says.
use classify_image::{Labels, Prediction};
use serde::Serialize;
use std::io::Write;

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
}

/// Writes records to stdout as they come, in one of the formats.
pub struct Reporter {
    format: Format,
    model: String,
    /// The seed's exact output: `[INFO]` lines and one block without a header.
    seed: bool,
    written: usize,
    out: std::io::StdoutLock<'static>,
}

impl Reporter {
    pub fn new(format: Format, model: &str, seed: bool) -> Reporter {
        let mut r = Reporter { format, model: model.to_string(), seed, written: 0, out: std::io::stdout().lock() };
        match format {
            Format::Json => r.emit("["),
            Format::Csv => r.emit("image,model,rank,index,label,probability,error"),
            Format::Text | Format::Jsonl => {}
        }
        r
    }

    fn emit(&mut self, line: &str) {
        // A closed stdout (`| head`) is not worth failing over; the exit code still tells.
        let _ = writeln!(self.out, "{line}");
    }

    /// A line of the seed's `[INFO]` narration, in seed mode only.
    pub fn info(&mut self, line: &str) {
        if self.seed {
            self.emit(&format!("[INFO] {line}"));
        }
    }

    pub fn predictions(&mut self, image: &str, top: &[Prediction], labels: &Labels) {
        let ranked: Vec<Ranked> = top
            .iter()
            .enumerate()
            .map(|(rank, p)| Ranked { rank, index: p.index, label: labels.get(p.index), probability: p.probability })
            .collect();
        match self.format {
            Format::Text => {
                if !self.seed {
                    self.emit(&format!("== {image}"));
                }
                for r in &ranked {
                    // The seed prints `probabilities[0, idx] * 100`: a float32 product, shown as a Python float.
                    self.emit(&format!("{}. {}: {:.2}%", r.rank, r.label, (r.probability * 100.0) as f64));
                }
            }
            Format::Csv => {
                for r in &ranked {
                    let (rank, index, p) = (r.rank.to_string(), r.index.to_string(), r.probability.to_string());
                    let row = csv_row(&[image, &self.model, &rank, &index, r.label, &p, ""]);
                    self.emit(&row);
                }
            }
            Format::Json | Format::Jsonl => {
                let model = self.model.clone();
                self.json(&Record { image, model: &model, predictions: Some(ranked), error: None });
            }
        }
    }

    /// An image that could not be classified. Text goes to stderr only (the caller prints it).
    pub fn failure(&mut self, image: &str, message: &str) {
        match self.format {
            Format::Text => {}
            Format::Csv => {
                let row = csv_row(&[image, &self.model, "", "", "", "", message]);
                self.emit(&row);
            }
            Format::Json | Format::Jsonl => {
                let model = self.model.clone();
                self.json(&Record { image, model: &model, predictions: None, error: Some(message) });
            }
        }
    }

    fn json(&mut self, record: &Record) {
        let text = serde_json::to_string(record).expect("records serialise");
        let line = match (self.format, self.written) {
            (Format::Json, 0) => format!("  {text}"),
            (Format::Json, _) => format!(",\n  {text}"),
            _ => text,
        };
        if self.format == Format::Json {
            let _ = write!(self.out, "{line}");
        } else {
            self.emit(&line);
        }
        self.written += 1;
    }

    pub fn finish(mut self) {
        if self.format == Format::Json {
            let close = if self.written == 0 { "]" } else { "\n]" };
            self.emit(close);
        }
        let _ = self.out.flush();
    }
}

fn csv_row(fields: &[&str]) -> String {
    fields
        .iter()
        .map(
            |f| {
                if f.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.to_string()
                }
            },
        )
        .collect::<Vec<_>>()
        .join(",")
}
