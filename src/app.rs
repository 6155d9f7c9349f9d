//! The seed's flow, step by step, with its exact output: load the model, the image and the labels, classify,
//! print the top 5, draw the top-1 label, then show or write the image.
use crate::cli::{Model, Request, Sink};
use classify_image::{annotate, preprocess, sink, weights, Classifier};

/// How many predictions the seed prints.
const TOP: usize = 5;

pub fn run(req: Request) -> anyhow::Result<()> {
    let name = &req.model_name;
    // The image is read first so that a bad path fails before the model loads; the messages keep the seed's order.
    let image = preprocess::read_image(&req.image)?;
    // The file to load: found (or downloaded) before anything is printed, so that a missing one fails first.
    let file = match &req.model {
        Model::Zoo { id, weights } => weights::hub::resolve(id.spec(), weights.as_deref(), req.fetch)?,
        Model::TorchScript(path) => path.clone(),
    };

    println!("[INFO] loading {name}...");
    let classifier = match &req.model {
        Model::Zoo { id, .. } => Classifier::new(*id, &file, req.device)?.with_preset(req.preset),
        Model::TorchScript(_) => Classifier::torchscript(&file, req.preset, req.device)?,
    };
    println!("[INFO] loading image...");
    println!("[INFO] loading ImageNet labels...");
    let labels = req.labels.load()?;
    labels.check_count(classifier.classes(), &req.labels.path())?;

    println!("[INFO] classifying image with '{name}'...");
    let scores = classifier.classify(&image)?;
    for (rank, p) in scores.top(TOP).iter().enumerate() {
        // The seed prints `probabilities[0, idx] * 100`: a float32 product, shown as a Python float.
        println!("{rank}. {}: {:.2}%", labels.get(p.index), (p.probability * 100.0) as f64);
    }

    let best = scores.best();
    let annotated = annotate::annotated(&image, &annotate::caption(labels.get(best.index), best.probability))?;
    match &req.sink {
        Sink::File(path) => sink::write_image(path, &annotated)?,
        Sink::Window => sink::show_window(&annotated)?,
    }
    Ok(())
}
