//! The library's main entry point: a model with its weights, ready to score images.
use crate::calibration::{self, Calibration};
use crate::error::{Error, Result, WeightsError};
use crate::models::layers::{Convs, Params};
use crate::models::quant::Recorder;
use crate::models::{ModelId, Network, Precision, Preset, PresetKind};
use crate::{cam, preprocess, weights};
use opencv::core::Mat;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A network with its weights, on a device.
///
/// ```
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
    net: Box<dyn Network>,
    /// The model's name, or the TorchScript file's, for messages.
    name: &'static str,
    preset: Preset,
    device: Device,
    /// The floating-point type inputs are given in: Float (for int8 too), BFloat16 or Half.
    kind: Kind,
    /// The weights file's memory map, which some of `net`'s parameters point into: declared after `net`, so
    /// dropped after it.
    _weights: Option<weights::Mapping>,
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
    /// Loads `model` with the weights in `weights` (`.pth`, `.pt` or `.safetensors`). The number of classes
    /// is the one in the file, so a fine-tuned classifier head loads as it is.
    pub fn new(model: ModelId, weights: &Path, device: Device) -> Result<Self> {
        Self::with_precision(model, weights, device, Precision::Fp32)
    }

    /// [`Classifier::new`] in another precision: bf16 (CPU or CUDA), fp16 (CUDA), int8 (CPU; the model's
    /// family must have an int8 form, [`crate::models::ModelSpec::int8`]). int8 calibrates on the built-in photos
    /// the first time and caches the ranges beside the weights ([`calibration::builtin`]).
    pub fn with_precision(model: ModelId, weights: &Path, device: Device, precision: Precision) -> Result<Self> {
        check_precision(device, precision)?;
        if precision == Precision::Int8 {
            check_int8(model)?;
            return Self::int8(model, weights, &calibration::builtin(model, weights, false)?);
        }
        Self::build(model, weights, device, precision.kind(), None)
    }

    /// `model` in int8 on the CPU, with the activation ranges of `calibration`, which must have been measured
    /// with these weights ([`calibration::check_fits`] checks that).
    pub fn int8(model: ModelId, weights: &Path, calibration: &Calibration) -> Result<Self> {
        check_int8(model)?;
        crate::models::kernels::use_x86_quantized_engine()?;
        Self::build(model, weights, Device::Cpu, Kind::Float, Some(Convs::Int8(calibration.ranges.clone())))
    }

    /// `model` in float32 on the CPU, recording its activations' ranges in the returned recorder as it runs.
    pub(crate) fn calibrating(model: ModelId, weights: &Path) -> Result<(Self, Recorder)> {
        let recorder = Recorder::default();
        let classifier =
            Self::build(model, weights, Device::Cpu, Kind::Float, Some(Convs::Calibrate(recorder.clone())))?;
        Ok((classifier, recorder))
    }

    /// Builds `model` from `weights`: convolutions as `convs` says, or as suits the device.
    fn build(model: ModelId, weights: &Path, device: Device, kind: Kind, convs: Option<Convs>) -> Result<Self> {
        let checkpoint = weights::read_mapped(weights)?;
        let params = Params::new(checkpoint.tensors, device, kind);
        let params = match convs {
            Some(convs) => params.with_convs(convs),
            None => params,
        };
        let net = model
            .build(params)
            .map_err(|e| Error::weights(weights, WeightsError::DoesNotFit { model: model.name(), source: e }))?;
        // On a GPU every parameter was copied to the device: the map is not needed any more.
        let map = (device == Device::Cpu).then_some(checkpoint.map);
        let preset = model.preset(PresetKind::Seed);
        Ok(Classifier { net, name: model.name(), preset, device, kind, _weights: map })
    }

    /// Loads a TorchScript module (`torch.jit.trace` or `torch.jit.script` output) that maps a batch of images
    /// prepared as `preset` says to a batch of logits. One forward pass on a blank image checks that.
    ///
    /// A TorchScript file is a program, not just weights: load only files you trust.
    pub fn torchscript(path: &Path, preset: Preset, device: Device, precision: Precision) -> Result<Self> {
        check_precision(device, precision)?;
        if precision == Precision::Int8 {
            return Err(Error::Usage("a TorchScript module runs in fp32, bf16 or fp16, not int8".into()));
        }
        let kind = precision.kind();
        let fail = |source: WeightsError| Error::weights(path, source);
        if !weights::is_torchscript(path) {
            return Err(fail(WeightsError::NotTorchScript));
        }
        let mut module = tch::CModule::load_on_device(path, device).map_err(|e| fail(WeightsError::TorchScript(e)))?;
        module.set_eval();
        module.to(device, kind, false);
        let blank = Tensor::zeros([1, 3, preset.size, preset.size], (kind, device));
        let probe = {
            let _no_grad = tch::no_grad_guard();
            module
                .forward_ts(&[blank])
                .map_err(|source| fail(WeightsError::TorchScriptInput { size: preset.size, source }))?
        };
        match probe.size().as_slice() {
            [1, classes] => {
                let net = Box::new(Scripted { module, classes: *classes });
                Ok(Classifier { net, name: "the TorchScript module", preset, device, kind, _weights: None })
            }
            other => Err(fail(WeightsError::TorchScriptOutput { shape: other.to_vec() })),
        }
    }

    /// The same network with another input preparation (size, mean, std), e.g. that of a fine-tuned model.
    pub fn with_preset(self, preset: Preset) -> Self {
        Classifier { preset, ..self }
    }

    /// Loads `model` with its official weights, found (or downloaded into torchvision's cache) as
    /// [`weights::hub::resolve`] says, with [`weights::hub::Fetch::default`]: a download is announced on
    /// stderr, and nothing is read from the environment but torchvision's cache location.
    pub fn official(model: ModelId, device: Device) -> Result<Self> {
        let path = weights::hub::resolve(model, None, &weights::hub::Fetch::default())?;
        Self::new(model, &path, device)
    }

    /// How images are prepared for the network.
    pub fn preset(&self) -> &Preset {
        &self.preset
    }

    /// How many classes the network scores.
    pub fn classes(&self) -> i64 {
        self.net.classes()
    }

    /// The raw network output for one BGR image, shape [1, classes], on the CPU.
    pub fn logits(&self, image: &Mat) -> Result<Tensor> {
        self.forward(&preprocess::to_tensor(image, &self.preset)?)
    }

    /// The network output for an input batch already prepared ([N, 3, H, W]), on the CPU.
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let _no_grad = tch::no_grad_guard();
        let input = self.on_device(input)?;
        Ok(self.net.forward(&input).f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?)
    }

    /// A prepared input on the network's device, in its precision and, on the CPU, in the layout the weights
    /// are in (models::layers::channels_last), which the network keeps. Its size is checked first: a network
    /// given a size it does not take would fail inside libtorch.
    fn on_device(&self, input: &Tensor) -> Result<Tensor> {
        let takes = self.net.input_sizes();
        if let [_, _, h, w] = input.size()[..] {
            if h != w || !takes.takes(h) {
                return Err(Error::InputSize { model: self.name, size: h.max(w), takes });
            }
        }
        let input = input.f_to_device(self.device)?.f_to_kind(self.kind)?;
        Ok(if self.device == Device::Cpu { crate::models::layers::channels_last(&input) } else { input })
    }

    /// Whether [`Classifier::explain`] works: every built-in model has a Grad-CAM target layer, a TorchScript
    /// module has none.
    pub fn explainable(&self) -> bool {
        self.net.split().is_some()
    }

    /// Grad-CAM for one BGR image: the map of `class` (the most likely one if `None`) at the network's input
    /// resolution, as pytorch-grad-cam's `GradCAM` gives it with the model's documented target layer
    /// ([`crate::models::ModelSpec::cam_layer`]), and the scores of the same forward pass.
    pub fn explain(&self, image: &Mat, class: Option<usize>) -> Result<cam::Explanation> {
        let split = self.net.split().ok_or(Error::NoCamLayer)?;
        let input = self.on_device(&preprocess::to_tensor(image, &self.preset)?)?;
        let features = {
            let _no_grad = tch::no_grad_guard();
            split.features(&input)
        };
        // Only the head runs with gradients: Grad-CAM needs them with respect to the target layer's output alone.
        let features = features.f_detach()?.f_set_requires_grad(true)?;
        let logits = split.head(&features);
        let scores = Scores::from_logits(&logits.f_detach()?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?)?;
        let class = class.unwrap_or(scores.best);
        if class as i64 >= self.classes() {
            return Err(Error::NoSuchClass { class, classes: self.classes() });
        }
        logits.f_select(1, class as i64)?.f_sum(Kind::Float)?.f_backward()?;
        let observed = split.observed(&features.f_detach()?);
        let map = cam::map(&observed, &split.gradient(&features.grad()), self.preset.size)?;
        Ok(cam::Explanation { class, map, scores })
    }

    /// Softmax probabilities of every class for one BGR image.
    pub fn classify(&self, image: &Mat) -> Result<Scores> {
        Scores::from_logits(&self.logits(image)?)
    }

    /// The same for several images in one forward pass: the results equal one-at-a-time classification up to
    /// the kernels' rounding (batched convolutions sum in another order).
    pub fn classify_batch(&self, images: &[&Mat]) -> Result<Vec<Scores>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let inputs = images.iter().map(|m| preprocess::to_tensor(m, &self.preset)).collect::<Result<Vec<_>>>()?;
        let logits = self.forward(&Tensor::f_cat(&inputs, 0)?)?;
        (0..images.len() as i64).map(|i| Scores::from_logits(&logits.f_narrow(0, i, 1)?)).collect()
    }
}

/// Whether a network can run in `precision` on `device`: the error says why not.
pub fn check_precision(device: Device, precision: Precision) -> Result<()> {
    match precision {
        Precision::Bf16 if device == Device::Cpu && !crate::models::onednn::bf16_convolutions() => {
            Err(Error::Precision { precision, device })
        }
        Precision::Fp32 | Precision::Bf16 => Ok(()),
        Precision::Fp16 if device.is_cuda() => Ok(()),
        Precision::Int8 if device == Device::Cpu => Ok(()),
        _ => Err(Error::Precision { precision, device }),
    }
}

fn check_int8(model: ModelId) -> Result<()> {
    if model.spec().int8 {
        return Ok(());
    }
    Err(Error::Usage(format!("{} has no int8 form; these models do: {}", model.name(), crate::models::int8_names())))
}

/// A TorchScript module as a [`Network`].
#[derive(Debug)]
struct Scripted {
    module: tch::CModule,
    classes: i64,
}

impl tch::nn::Module for Scripted {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.module.forward(xs)
    }
}

impl Network for Scripted {
    fn classes(&self) -> i64 {
        self.classes
    }

    /// Whatever the module takes: it fails inside libtorch otherwise, which is reported as an error.
    fn input_sizes(&self) -> crate::models::InputSizes {
        crate::models::InputSizes::AtLeast(1)
    }
}
