//! VGG (Simonyan & Zisserman, 2014), as torchvision builds it, with or without batch norm.
use super::layers::{Act, Conv2d, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// Grad-CAM's target layer: the last max pool of `features`.
pub const CAM_LAYER: &str = "features[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "VGG", cam_layer: CAM_LAYER, int8: true, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "vgg11",
        arch: "VGG-11",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vgg11-8a719046.pth"),
            accuracy: Accuracy { top1: 69.02, top5: Some(88.628) },
            eval: Eval::bilinear(256, 224),
            file_mb: 506.84,
            gmacs: Some(7.609),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), VGG11, false),
        ..FAMILY
    },
    ModelSpec {
        name: "vgg11_bn",
        arch: "VGG-11 with batch norm",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vgg11_bn-6002323d.pth"),
            accuracy: Accuracy { top1: 70.37, top5: Some(89.81) },
            eval: Eval::bilinear(256, 224),
            file_mb: 506.881,
            gmacs: Some(7.609),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), VGG11, true),
        ..FAMILY
    },
    ModelSpec {
        name: "vgg13",
        arch: "VGG-13",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vgg13-19584684.pth"),
            accuracy: Accuracy { top1: 69.928, top5: Some(89.246) },
            eval: Eval::bilinear(256, 224),
            file_mb: 507.545,
            gmacs: Some(11.308),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), VGG13, false),
        ..FAMILY
    },
    ModelSpec {
        name: "vgg13_bn",
        arch: "VGG-13 with batch norm",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vgg13_bn-abd245e5.pth"),
            accuracy: Accuracy { top1: 71.586, top5: Some(90.374) },
            eval: Eval::bilinear(256, 224),
            file_mb: 507.59,
            gmacs: Some(11.308),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), VGG13, true),
        ..FAMILY
    },
    ModelSpec {
        name: "vgg16",
        arch: "VGG-16",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vgg16-397923af.pth"),
            accuracy: Accuracy { top1: 71.592, top5: Some(90.382) },
            eval: Eval::bilinear(256, 224),
            file_mb: 527.796,
            gmacs: Some(15.47),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), VGG16, false),
        ..FAMILY
    },
    ModelSpec {
        name: "vgg16_bn",
        arch: "VGG-16 with batch norm",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vgg16_bn-6c64b313.pth"),
            accuracy: Accuracy { top1: 73.36, top5: Some(91.516) },
            eval: Eval::bilinear(256, 224),
            file_mb: 527.866,
            gmacs: Some(15.47),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), VGG16, true),
        ..FAMILY
    },
    ModelSpec {
        name: "vgg19",
        arch: "VGG-19",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
            accuracy: Accuracy { top1: 72.376, top5: Some(90.876) },
            eval: Eval::bilinear(256, 224),
            file_mb: 548.051,
            gmacs: Some(19.632),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), VGG19, false),
        ..FAMILY
    },
    ModelSpec {
        name: "vgg19_bn",
        arch: "VGG-19 with batch norm",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vgg19_bn-c79401a0.pth"),
            accuracy: Accuracy { top1: 74.218, top5: Some(91.842) },
            eval: Eval::bilinear(256, 224),
            file_mb: 548.143,
            gmacs: Some(19.632),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), VGG19, true),
        ..FAMILY
    },
];

/// A 3×3 convolution with this many output channels, or a 2×2 max pool (`M`).
const M: i64 = 0;
/// torchvision's configuration "A".
pub const VGG11: &[i64] = &[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's configuration "B".
pub const VGG13: &[i64] = &[64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's configuration "D".
pub const VGG16: &[i64] = &[64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M];
/// torchvision's configuration "E".
pub const VGG19: &[i64] =
    &[64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M];

#[derive(Debug)]
pub struct Vgg {
    /// A 3×3 convolution (with its BatchNorm folded in, in the `_bn` variants) and ReLU, or (`None`) a max pool.
    features: Vec<Option<Conv2d>>,
    classifier: [Linear; 3],
}

pub fn build(p: &P, cfg: &[i64], batch_norm: bool) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let (mut features, mut index, mut cin) = (Vec::new(), 0, 3);
    for &c in cfg {
        if c == M {
            features.push(None);
            index += 1; // MaxPool2d
        } else {
            let cfg = ConvCfg::default().pad(1);
            let conv = if batch_norm {
                Conv2d::load_bn(&f.sub(index), &f.sub(index + 1), cin, c, [3, 3], cfg, 1e-5)?
            } else {
                Conv2d::load(&f.sub(index), cin, c, [3, 3], cfg)?
            };
            features.push(Some(conv.with_act(Act::Relu)));
            index += if batch_norm { 3 } else { 2 }; // Conv2d, [BatchNorm2d,] ReLU
            cin = c;
        }
    }
    let c = p.sub("classifier");
    let classifier = [
        Linear::load(&c.sub(0), cin * 7 * 7, Some(4096))?,
        Linear::load(&c.sub(3), 4096, Some(4096))?,
        Linear::load(&c.sub(6), 4096, None)?,
    ];
    Ok(Box::new(Vgg { features, classifier }))
}

impl Split for Vgg {
    fn features(&self, xs: &Tensor) -> Tensor {
        self.features.iter().fold(xs.shallow_clone(), |x, layer| match layer {
            Some(conv) => conv.forward(&x),
            None => super::layers::max_pool2d(&x, 2, 2, 0, false),
        })
    }

    fn head(&self, features: &Tensor) -> Tensor {
        // Dropout is the identity at inference.
        let x = super::quant::dequantized(features).adaptive_avg_pool2d([7, 7]).flatten(1, -1);
        let x = self.classifier[0].forward(&x).relu_();
        let x = self.classifier[1].forward(&x).relu_();
        self.classifier[2].forward(&x)
    }
}

impl Module for Vgg {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for Vgg {
    fn classes(&self) -> i64 {
        self.classifier[2].outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}
