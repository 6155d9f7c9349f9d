//! gpu-check: does this build see CUDA, and do the models give the same logits there as on the CPU?
//!
//! `gpu-check` reports whether libtorch's CUDA hooks are registered and how many GPUs it sees.
//! `gpu-check MODEL WEIGHTS...` also runs each model on a fixed random input on the CPU and on cuda:0 (in
//! float32, then float16) and prints the largest logit difference. It uses no OpenCV, so it runs on a GPU
//! machine that has libtorch but not Debian's OpenCV libraries.
use classify_image::models::Precision;
use classify_image::{Classifier, ModelId};
use tch::{Device, Kind, Tensor};

fn main() {
    let hooks = tch::utils::has_cudart();
    let devices = tch::Cuda::device_count();
    println!("cuda hooks registered: {}", if hooks { "yes" } else { "no" });
    println!("cuda devices: {devices}");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut failed = false;
    for pair in args.chunks(2) {
        let [model, weights] = pair else {
            eprintln!("usage: gpu-check [MODEL WEIGHTS]...");
            std::process::exit(2);
        };
        if let Err(e) = compare(model, weights.as_ref(), devices) {
            println!("{model}: error: {e}");
            failed = true;
        }
    }
    std::process::exit(i32::from(failed));
}

fn compare(model: &str, weights: &std::path::Path, devices: i64) -> Result<(), Box<dyn std::error::Error>> {
    let id = ModelId::from_name(model).ok_or("unknown model")?;
    let size = id.preset(classify_image::models::PresetKind::Seed).size;
    tch::manual_seed(0);
    let input = Tensor::randn([2, 3, size, size], (Kind::Float, Device::Cpu));
    let cpu = Classifier::new(id, weights, Device::Cpu)?.forward(&input)?;
    if devices == 0 {
        println!("{model}: cpu only, logits[0][0..3] = {:?}", Vec::<f32>::try_from(cpu.get(0).narrow(0, 0, 3))?);
        return Ok(());
    }
    for precision in [Precision::Fp32, Precision::Fp16, Precision::Bf16] {
        let gpu = Classifier::with_precision(id, weights, Device::Cuda(0), precision)?.forward(&input)?;
        let diff = (&gpu - &cpu).abs().max().double_value(&[]);
        let same_top1 = gpu.argmax(-1, false).equal(&cpu.argmax(-1, false));
        println!("{model}: cuda:0 {precision} vs cpu: max |Δlogit| {diff:.3e}, same top-1: {same_top1}");
    }
    Ok(())
}
