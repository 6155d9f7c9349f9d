//! In-process timings for `scripts/bench.py` (BENCHMARKS.md): loading a model (file → ready network) and
//! forward passes at batch 1 and 8 on the CPU, each repeated, printed as one JSON object of milliseconds.
//!
//! `cargo bench --bench inprocess -- MODEL WEIGHTS [LOADS] [FORWARDS] [PRECISION]`
//!
//! PRECISION is fp32 (the default), bf16 or int8; int8 uses the built-in calibration, measured before the
//! first load (and cached beside the weights), so that loads time what a later run does.
use classify_image::models::Precision;
use classify_image::{calibration, Classifier, ModelId};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn main() {
    // As classify-image's binary does: freed tensors keep their pages.
    classify_image::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [model, weights, rest @ ..] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench inprocess -- MODEL WEIGHTS [LOADS] [FORWARDS] [PRECISION]");
        std::process::exit(2);
    };
    let count = |i: usize, default: usize| rest.get(i).map_or(default, |s| s.parse().expect("a count"));
    let (loads, forwards) = (count(0, 5), count(1, 10));
    let id = ModelId::from_name(model).unwrap_or_else(|| panic!("unknown model {model}"));
    let precision = match rest.get(2).map(String::as_str) {
        None | Some("fp32") => Precision::Fp32,
        Some("bf16") => Precision::Bf16,
        Some("int8") => Precision::Int8,
        Some(other) => panic!("unknown precision {other}: fp32, bf16 or int8"),
    };
    if precision == Precision::Int8 {
        calibration::builtin(id, weights.as_ref(), true).expect("the built-in calibration runs");
    }

    let mut load_ms = Vec::new();
    let mut classifier = None;
    for _ in 0..loads {
        drop(classifier.take());
        let start = Instant::now();
        classifier =
            Some(Classifier::with_precision(id, weights.as_ref(), Device::Cpu, precision).expect("the weights load"));
        load_ms.push(millis(start));
    }
    let classifier = classifier.expect("at least one load");

    tch::manual_seed(0);
    let size = classifier.preset().size;
    let forward_ms = |batch: i64| {
        let input = Tensor::randn([batch, 3, size, size], (Kind::Float, Device::Cpu));
        for _ in 0..2 {
            let _ = classifier.forward(&input).expect("a forward pass");
        }
        (0..forwards)
            .map(|_| {
                let start = Instant::now();
                let _ = classifier.forward(&input).expect("a forward pass");
                millis(start)
            })
            .collect::<Vec<f64>>()
    };
    let (b1, b8) = (forward_ms(1), forward_ms(8));
    let json = serde_json::json!({
        "model": model, "precision": precision.name(), "threads": tch::get_num_threads(), "size": size,
        "load_ms": load_ms, "forward_b1_ms": b1, "forward_b8_ms": b8,
    });
    println!("{json}");
}
