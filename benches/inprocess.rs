//! In-process timings for `scripts/bench.py` (BENCHMARKS.md): loading a model (file → ready network) and
//! forward passes at batch 1 and 8 on the CPU, each repeated, printed as one JSON object of milliseconds.
//!
//! `cargo bench --bench inprocess -- MODEL WEIGHTS [LOADS] [FORWARDS]`
use classify_image::{Classifier, ModelId};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [model, weights, rest @ ..] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench inprocess -- MODEL WEIGHTS [LOADS] [FORWARDS]");
        std::process::exit(2);
    };
    let count = |i: usize, default: usize| rest.get(i).map_or(default, |s| s.parse().expect("a count"));
    let (loads, forwards) = (count(0, 5), count(1, 10));
    let id = ModelId::from_name(model).unwrap_or_else(|| panic!("unknown model {model}"));

    let mut load_ms = Vec::new();
    let mut classifier = None;
    for _ in 0..loads {
        drop(classifier.take());
        let start = Instant::now();
        classifier = Some(Classifier::new(id, weights.as_ref(), Device::Cpu).expect("the weights load"));
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
        "model": model, "threads": tch::get_num_threads(), "size": size,
        "load_ms": load_ms, "forward_b1_ms": b1, "forward_b8_ms": b8,
    });
    println!("{json}");
}
