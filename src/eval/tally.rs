//! What `eval` counts and prints, as timm's validate.py sums up a run: top-1 and top-5 accuracy over every
//! labelled image (an image that could not be classified counts as a miss), the speed, and the most confused
//! (true → predicted) pairs; as text or one JSON object. And each image's result, as CSV, for --per-image.
use classify_image::models::{Preset, PresetKind};
use classify_image::{Labels, Prediction};
use serde::Serialize;
use std::collections::HashMap;

/// How many confused pairs the summary lists.
pub const CONFUSED: usize = 10;

/// The summary's format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A few lines, with timm's ` * Acc@1 … Acc@5 …` line
    Text,
    /// One JSON object
    Json,
}

/// One image's result: its most likely classes, most likely first, or why it could not be classified.
struct Record {
    image: String,
    truth: usize,
    result: Result<Vec<Prediction>, String>,
}

/// The results so far, in the data set's order.
#[derive(Default)]
pub struct Tally {
    records: Vec<Record>,
}

/// What the summary says about the run besides the counts.
pub struct Run<'a> {
    pub data: &'a str,
    pub model: &'a str,
    pub preset_kind: PresetKind,
    pub preset: Preset,
    /// From the first image read to the last one scored: reading, preparing and the forward passes; the model's
    /// loading is not counted.
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    data: String,
    model: String,
    preset: PresetSummary,
    /// Labelled images, classified or not.
    images: usize,
    /// Distinct true classes among them.
    classes: usize,
    classified: usize,
    failed: usize,
    /// Percentages of `images`.
    top1: f64,
    top5: f64,
    top1_correct: usize,
    top5_correct: usize,
    seconds: f64,
    images_per_second: f64,
    confused: Vec<Confusion>,
    failures: Vec<Failure>,
}

#[derive(Debug, Serialize)]
struct PresetSummary {
    name: &'static str,
    size: i64,
    resize: Option<i64>,
    mean: [f64; 3],
    std: [f64; 3],
}

#[derive(Debug, Serialize)]
struct Confusion {
    true_index: usize,
    true_label: String,
    predicted_index: usize,
    predicted_label: String,
    count: usize,
}

#[derive(Debug, Serialize)]
struct Failure {
    image: String,
    error: String,
}

impl Tally {
    /// One image's top predictions (at least the top 5, or every class if fewer), or its error.
    pub fn add(&mut self, image: String, truth: usize, result: Result<Vec<Prediction>, String>) {
        self.records.push(Record { image, truth, result });
    }

    pub fn failed(&self) -> usize {
        self.records.iter().filter(|r| r.result.is_err()).count()
    }

    pub fn summary(&self, labels: &Labels, run: &Run) -> Summary {
        let images = self.records.len();
        let hit = |k: usize| {
            let found = |r: &&Record| r.result.as_ref().is_ok_and(|top| top.iter().take(k).any(|p| p.index == r.truth));
            self.records.iter().filter(found).count()
        };
        let (top1_correct, top5_correct) = (hit(1), hit(5));
        let percent = |n: usize| if images == 0 { 0.0 } else { (100 * n) as f64 / images as f64 };
        let mut pairs: HashMap<(usize, usize), usize> = HashMap::new();
        for r in &self.records {
            if let Ok(top) = &r.result {
                if top[0].index != r.truth {
                    *pairs.entry((r.truth, top[0].index)).or_default() += 1;
                }
            }
        }
        let mut pairs: Vec<((usize, usize), usize)> = pairs.into_iter().collect();
        pairs.sort_by(|(a, n), (b, m)| m.cmp(n).then(a.cmp(b)));
        let mut classes: Vec<usize> = self.records.iter().map(|r| r.truth).collect();
        classes.sort_unstable();
        classes.dedup();
        let failed = self.failed();
        Summary {
            data: run.data.to_string(),
            model: run.model.to_string(),
            preset: PresetSummary {
                name: match run.preset_kind {
                    PresetKind::Seed => "seed",
                    PresetKind::Torchvision => "torchvision",
                },
                size: run.preset.size,
                resize: run.preset.resize,
                mean: run.preset.mean,
                std: run.preset.std,
            },
            images,
            classes: classes.len(),
            classified: images - failed,
            failed,
            top1: percent(top1_correct),
            top5: percent(top5_correct),
            top1_correct,
            top5_correct,
            seconds: run.seconds,
            images_per_second: if run.seconds > 0.0 { images as f64 / run.seconds } else { 0.0 },
            confused: pairs
                .into_iter()
                .take(CONFUSED)
                .map(|((truth, predicted), count)| Confusion {
                    true_index: truth,
                    true_label: labels.get(truth).to_string(),
                    predicted_index: predicted,
                    predicted_label: labels.get(predicted).to_string(),
                    count,
                })
                .collect(),
            failures: self
                .records
                .iter()
                .filter_map(|r| r.result.as_ref().err().map(|e| Failure { image: r.image.clone(), error: e.clone() }))
                .collect(),
        }
    }

    /// Each image's result: `image,true_index,true_label,top1_index,top1_label,top1_probability,top5,error`,
    /// `top5` being the indices of the five most likely classes, most likely first, separated by spaces.
    pub fn per_image_csv(&self, labels: &Labels) -> Vec<u8> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        let header =
            ["image", "true_index", "true_label", "top1_index", "top1_label", "top1_probability", "top5", "error"];
        csv.write_record(header).expect("writing to memory");
        for r in &self.records {
            let truth = r.truth.to_string();
            let row = match &r.result {
                Ok(top) => {
                    let top5: Vec<String> = top.iter().take(5).map(|p| p.index.to_string()).collect();
                    [
                        r.image.clone(),
                        truth,
                        labels.get(r.truth).to_string(),
                        top[0].index.to_string(),
                        labels.get(top[0].index).to_string(),
                        top[0].probability.to_string(),
                        top5.join(" "),
                        String::new(),
                    ]
                }
                Err(e) => [
                    r.image.clone(),
                    truth,
                    labels.get(r.truth).to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    e.clone(),
                ],
            };
            csv.write_record(&row).expect("writing to memory");
        }
        csv.into_inner().expect("flushing to memory")
    }
}

/// A label's first name: `cowboy_hat` for `cowboy_hat, ten-gallon_hat`.
fn short(label: &str) -> &str {
    label.split(',').next().unwrap_or(label).trim()
}

impl Summary {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(self).expect("the summary serialises") + "\n",
            Format::Text => self.text(),
        }
    }

    fn text(&self) -> String {
        let p = &self.preset;
        let geometry = match p.resize {
            None => format!("{0}×{0}", p.size),
            Some(resize) => format!("{resize} then centre {0}×{0}", p.size),
        };
        let triple = |v: [f64; 3]| v.map(|x| x.to_string()).join(",");
        let mut out = format!(
            "{} on {}: preset {} ({geometry}, mean {}, std {})\n",
            self.model,
            self.data,
            p.name,
            triple(p.mean),
            triple(p.std)
        );
        out += &format!(
            " * Acc@1 {:.3} ({:.3}) Acc@5 {:.3} ({:.3})\n",
            self.top1,
            100.0 - self.top1,
            self.top5,
            100.0 - self.top5
        );
        let failures = match self.failed {
            0 => String::new(),
            n => format!(", {n} failed (counted as misses)"),
        };
        out += &format!(
            "{} images in {} classes{failures}; {:.1} images/s ({:.1} s)\n",
            self.images, self.classes, self.images_per_second, self.seconds
        );
        if !self.confused.is_empty() {
            out += "most confused (true → predicted: images):\n";
            for c in &self.confused {
                out += &format!("  {} → {}: {}\n", short(&c.true_label), short(&c.predicted_label), c.count);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(indices: &[usize]) -> Vec<Prediction> {
        indices.iter().map(|&index| Prediction { index, probability: 0.5 }).collect()
    }

    fn run() -> Run<'static> {
        Run { data: "d", model: "m", preset_kind: PresetKind::Seed, preset: classify_image::models::SEED, seconds: 2.0 }
    }

    #[test]
    fn accuracies_count_failures_as_misses_and_pairs_are_ranked() {
        let mut tally = Tally::default();
        tally.add("a".into(), 1, Ok(top(&[1, 2, 3, 4, 5])));
        tally.add("b".into(), 1, Ok(top(&[2, 1, 3, 4, 5])));
        tally.add("c".into(), 1, Ok(top(&[2, 3, 4, 5, 6])));
        tally.add("d".into(), 7, Ok(top(&[8, 9, 10, 11, 7, 12])));
        tally.add("e".into(), 7, Err("cannot read image e".into()));
        let s = tally.summary(&Labels::imagenet(), &run());
        assert_eq!((s.images, s.classes, s.classified, s.failed), (5, 2, 4, 1));
        assert_eq!((s.top1_correct, s.top5_correct), (1, 3));
        assert_eq!((s.top1, s.top5), (20.0, 60.0));
        assert_eq!(s.images_per_second, 2.5);
        let pairs: Vec<(usize, usize, usize)> =
            s.confused.iter().map(|c| (c.true_index, c.predicted_index, c.count)).collect();
        assert_eq!(pairs, vec![(1, 2, 2), (7, 8, 1)]);
        assert_eq!(s.failures[0].image, "e");

        let json: serde_json::Value = serde_json::from_str(&s.render(Format::Json)).unwrap();
        assert_eq!(json["top1"], 20.0);
        assert_eq!(json["confused"][0]["true_label"], "goldfish, Carassius_auratus");
        assert_eq!(json["preset"]["name"], "seed");
        let text = s.render(Format::Text);
        assert!(text.contains(" * Acc@1 20.000 (80.000) Acc@5 60.000 (40.000)\n"), "{text}");
        assert!(text.contains("1 failed (counted as misses)") && text.contains("  goldfish → great_white_shark: 2\n"));
    }

    #[test]
    fn per_image_rows_follow_the_data_set() {
        let mut tally = Tally::default();
        tally.add("x,1.jpg".into(), 0, Ok(top(&[0, 1, 2, 3, 4])));
        tally.add("y.jpg".into(), 1, Err("broken".into()));
        let text = String::from_utf8(tally.per_image_csv(&Labels::imagenet())).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "image,true_index,true_label,top1_index,top1_label,top1_probability,top5,error");
        assert_eq!(lines[1], "\"x,1.jpg\",0,\"tench, Tinca_tinca\",0,\"tench, Tinca_tinca\",0.5,0 1 2 3 4,");
        assert_eq!(lines[2], "y.jpg,1,\"goldfish, Carassius_auratus\",,,,,broken");
    }
}
