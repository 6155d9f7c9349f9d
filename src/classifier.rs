//! The library's main entry point: a model with its weights, ready to score images.
use crate::error::{Error, Result};
use crate::models::{layers::Params, ModelId, ModelSpec, Network};
use crate::{preprocess, weights};
use opencv::core::Mat;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A network with its weights, on a device.
///
/// ```no_run
/// use classify_image::{Classifier, Labels, ModelId};
/// let classifier = Classifier::official(ModelId::EfficientnetLite0, tch::Device::Cpu)?;
/// let image = classify_image::preprocess::read_image("images/coffee.png".as_ref())?;
/// let scores = classifier.classify(&image)?;
/// let labels = Labels::imagenet();
/// for p in scores.top(5) {
///     println!("{}: {:.2}%", labels.get(p.index), p.probability * 100.0);
/// }
/// # Ok::<(), classify_image::Error>(())
/// ```
pub struct Classifier {
    spec: &'static ModelSpec,
    net: Box<dyn Network>,
    device: Device,
}

/// One class and its softmax probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub index: usize,
    pub probability: f32,
}

/// The softmax over all classes, with its order.
#[derive(Debug)]
pub struct Scores {
    probabilities: Vec<f32>,
    /// Class indices by descending probability (`torch.argsort(descending=True)`).
    order: Vec<i64>,
    /// `probabilities.argmax()`, which the seed's annotation uses.
    best: usize,
}

impl Scores {
    fn from_logits(logits: &Tensor) -> Result<Self> {
        let probs = logits.f_softmax(-1, Kind::Float)?.f_squeeze_dim(0)?;
        let order = Vec::<i64>::try_from(probs.f_argsort(-1, true)?)?;
        let best = probs.f_argmax(None, false)?.int64_value(&[]) as usize;
        Ok(Scores { probabilities: Vec::<f32>::try_from(&probs)?, order, best })
    }

    /// The `k` most likely classes, most likely first.
    pub fn top(&self, k: usize) -> Vec<Prediction> {
        self.order.iter().take(k).map(|&i| self.get(i as usize)).collect()
    }

    /// The most likely class.
    pub fn best(&self) -> Prediction {
        self.get(self.best)
    }

    fn get(&self, index: usize) -> Prediction {
        Prediction { index, probability: self.probabilities[index] }
    }
}

impl Classifier {
    /// Loads `model` with the weights in `weights` (`.pth`, `.pt` or `.safetensors`).
    pub fn new(model: ModelId, weights: &Path, device: Device) -> Result<Self> {
        let spec = model.spec();
        let tensors = weights::read(weights)?;
        let net = spec
            .build(Params::new(tensors, device))
            .map_err(|e| Error::weights(weights, format!("does not fit {}: it {}", spec.name, e.0)))?;
        Ok(Classifier { spec, net, device })
    }

    /// Loads `model` with its official weights, found (or downloaded into torchvision's cache) as
    /// [`weights::hub::resolve`] says.
    pub fn official(model: ModelId, device: Device) -> Result<Self> {
        let path = weights::hub::resolve(model.spec(), None, weights::hub::Fetch::new(false, false))?;
        Self::new(model, &path, device)
    }

    pub fn spec(&self) -> &'static ModelSpec {
        self.spec
    }

    /// How many classes the network scores.
    pub fn classes(&self) -> i64 {
        self.net.classes()
    }

    /// The raw network output for one BGR image, shape [1, classes], on the CPU.
    pub fn logits(&self, image: &Mat) -> Result<Tensor> {
        let input = preprocess::to_tensor(image, &self.spec.preset)?.to_device(self.device);
        let _no_grad = tch::no_grad_guard();
        Ok(self.net.forward(&input).to_device(Device::Cpu))
    }

    /// Softmax probabilities of every class for one BGR image.
    pub fn classify(&self, image: &Mat) -> Result<Scores> {
        Scores::from_logits(&self.logits(image)?)
    }
}
