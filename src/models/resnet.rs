//! ResNet (He et al., 2015), as torchvision builds it: basic blocks for ResNet-18/34, bottlenecks for
//! ResNet-50/101/152, with the stride on the 3×3 convolution ("v1.5").
use super::layers::{Act, ConvBn, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

const EPS: f64 = 1e-5;

/// Grad-CAM's target layer: the last residual block.
pub const CAM_LAYER: &str = "layer4[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "ResNet", cam_layer: CAM_LAYER, int8: true, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "resnet18",
        arch: "ResNet-18",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/resnet18-f37072fd.pth"),
            accuracy: Accuracy { top1: 69.758, top5: Some(89.078) },
            eval: Eval::bilinear(256, 224),
            file_mb: 44.661,
            gmacs: Some(1.814),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &RESNET18),
        ..FAMILY
    },
    ModelSpec {
        name: "resnet34",
        arch: "ResNet-34",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/resnet34-b627a593.pth"),
            accuracy: Accuracy { top1: 73.314, top5: Some(91.42) },
            eval: Eval::bilinear(256, 224),
            file_mb: 83.275,
            gmacs: Some(3.664),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &RESNET34),
        ..FAMILY
    },
    ModelSpec {
        name: "resnet50",
        arch: "ResNet-50",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                aliases: &["resnet50_v2"],
                file: WeightsFile::published("https://download.pytorch.org/models/resnet50-11ad3fa6.pth"),
                accuracy: Accuracy { top1: 80.858, top5: Some(95.434) },
                eval: Eval::bilinear(232, 224),
                file_mb: 97.79,
                gmacs: Some(4.089),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                aliases: &["resnet"],
                file: WeightsFile::published("https://download.pytorch.org/models/resnet50-0676ba61.pth"),
                accuracy: Accuracy { top1: 76.13, top5: Some(92.862) },
                eval: Eval::bilinear(256, 224),
                file_mb: 97.781,
                gmacs: Some(4.089),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &RESNET50),
        ..FAMILY
    },
    ModelSpec {
        name: "resnet101",
        arch: "ResNet-101",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/resnet101-cd907fc2.pth"),
                accuracy: Accuracy { top1: 81.886, top5: Some(95.78) },
                eval: Eval::bilinear(232, 224),
                file_mb: 170.53,
                gmacs: Some(7.801),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/resnet101-63fe2227.pth"),
                accuracy: Accuracy { top1: 77.374, top5: Some(93.546) },
                eval: Eval::bilinear(256, 224),
                file_mb: 170.511,
                gmacs: Some(7.801),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &RESNET101),
        ..FAMILY
    },
    ModelSpec {
        name: "resnet152",
        arch: "ResNet-152",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/resnet152-f82ba261.pth"),
                accuracy: Accuracy { top1: 82.284, top5: Some(96.002) },
                eval: Eval::bilinear(232, 224),
                file_mb: 230.474,
                gmacs: Some(11.514),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/resnet152-394f9c45.pth"),
                accuracy: Accuracy { top1: 78.312, top5: Some(94.046) },
                eval: Eval::bilinear(256, 224),
                file_mb: 230.434,
                gmacs: Some(11.514),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &RESNET152),
        ..FAMILY
    },
];

/// The two kinds of residual block.
#[derive(Debug, Clone, Copy)]
pub enum Block {
    /// Two 3×3 convolutions (ResNet-18/34).
    Basic,
    /// 1×1 reduce, 3×3, 1×1 expand ×4 (ResNet-50 and deeper).
    Bottleneck,
}

impl Block {
    fn expansion(self) -> i64 {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

/// A block and the number of blocks per stage.
pub struct Config(pub Block, pub [usize; 4]);

pub const RESNET18: Config = Config(Block::Basic, [2, 2, 2, 2]);
pub const RESNET34: Config = Config(Block::Basic, [3, 4, 6, 3]);
pub const RESNET50: Config = Config(Block::Bottleneck, [3, 4, 6, 3]);
pub const RESNET101: Config = Config(Block::Bottleneck, [3, 4, 23, 3]);
pub const RESNET152: Config = Config(Block::Bottleneck, [3, 8, 36, 3]);

/// A residual block: its convolutions in order (ReLU after each but the last), then the shortcut.
#[derive(Debug)]
struct Residual {
    convs: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Residual {
    fn load(p: &P, block: Block, cin: i64, width: i64, stride: i64) -> Result<Self, BuildError> {
        let cout = width * block.expansion();
        let plain = ConvCfg::default();
        let downsample = if stride != 1 || cin != cout {
            Some(ConvBn::load(&p.sub("downsample"), ("0", "1"), cin, cout, [1, 1], plain.stride(stride), EPS)?)
        } else {
            None
        };
        let convs = match block {
            Block::Basic => vec![
                ConvBn::load(p, ("conv1", "bn1"), cin, width, [3, 3], plain.stride(stride).pad(1), EPS)?
                    .with_act(Act::Relu),
                ConvBn::load(p, ("conv2", "bn2"), width, width, [3, 3], plain.pad(1), EPS)?,
            ],
            Block::Bottleneck => vec![
                ConvBn::load(p, ("conv1", "bn1"), cin, width, [1, 1], plain, EPS)?.with_act(Act::Relu),
                ConvBn::load(p, ("conv2", "bn2"), width, width, [3, 3], plain.stride(stride).pad(1), EPS)?
                    .with_act(Act::Relu),
                ConvBn::load(p, ("conv3", "bn3"), width, cout, [1, 1], plain, EPS)?,
            ],
        };
        Ok(Residual { convs, downsample })
    }
}

impl Module for Residual {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (last, first) = self.convs.split_last().expect("a block has convolutions");
        let y = first.iter().fold(xs.shallow_clone(), |y, c| c.forward(&y));
        let identity = self.downsample.as_ref().map_or_else(|| xs.shallow_clone(), |d| d.forward(xs));
        last.forward_add(&y, &identity, true)
    }
}

#[derive(Debug)]
pub struct ResNet {
    stem: ConvBn,
    blocks: Vec<Residual>,
    fc: Linear,
}

pub fn build(p: &P, Config(block, layers): &Config) -> Result<Box<dyn Network>, BuildError> {
    let stem =
        ConvBn::load(p, ("conv1", "bn1"), 3, 64, [7, 7], ConvCfg::default().stride(2).pad(3), EPS)?.with_act(Act::Relu);
    let (mut blocks, mut cin) = (Vec::new(), 64);
    for (stage, &count) in layers.iter().enumerate() {
        let width = 64 << stage;
        for i in 0..count {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            blocks.push(Residual::load(&p.sub(format!("layer{}", stage + 1)).sub(i), *block, cin, width, stride)?);
            cin = width * block.expansion();
        }
    }
    let fc = Linear::load(&p.sub("fc"), cin, None)?;
    Ok(Box::new(ResNet { stem, blocks, fc }))
}

impl Split for ResNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = self.stem.forward(xs).max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        self.blocks.iter().fold(x, |x, block| block.forward(&x))
    }

    fn head(&self, features: &Tensor) -> Tensor {
        self.fc.forward(&super::quant::dequantized(features).adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

impl Module for ResNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for ResNet {
    fn classes(&self) -> i64 {
        self.fc.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}
