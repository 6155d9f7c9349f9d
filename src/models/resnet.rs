//! ResNet (He et al., 2015), as torchvision builds it: basic blocks for ResNet-18/34, bottlenecks for
//! ResNet-50/101/152, with the stride on the 3×3 convolution ("v1.5"). With the same code, the bottleneck's
//! variants that torchvision builds in the same file: ResNeXt (Xie et al., 2017), whose 3×3 convolution is
//! grouped ("32×4d": 32 groups of 4 channels at the first stage), and Wide ResNet (Zagoruyko and Komodakis,
//! 2016), whose bottleneck is twice as wide.
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
    ModelSpec {
        name: "resnext50_32x4d",
        arch: "ResNeXt-50 32×4d",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/resnext50_32x4d-1a0047aa.pth"),
                accuracy: Accuracy { top1: 81.198, top5: Some(95.34) },
                eval: Eval::bilinear(232, 224),
                file_mb: 95.833,
                gmacs: Some(4.23),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth"),
                accuracy: Accuracy { top1: 77.618, top5: Some(93.698) },
                eval: Eval::bilinear(256, 224),
                file_mb: 95.789,
                gmacs: Some(4.23),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &RESNEXT50_32X4D),
        ..FAMILY
    },
    ModelSpec {
        name: "resnext101_32x8d",
        arch: "ResNeXt-101 32×8d",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/resnext101_32x8d-110c445d.pth"),
                accuracy: Accuracy { top1: 82.834, top5: Some(96.228) },
                eval: Eval::bilinear(232, 224),
                file_mb: 339.673,
                gmacs: Some(16.414),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/resnext101_32x8d-8ba56ff5.pth"),
                accuracy: Accuracy { top1: 79.312, top5: Some(94.526) },
                eval: Eval::bilinear(256, 224),
                file_mb: 339.586,
                gmacs: Some(16.414),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &RESNEXT101_32X8D),
        ..FAMILY
    },
    ModelSpec {
        name: "resnext101_64x4d",
        arch: "ResNeXt-101 64×4d",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/resnext101_64x4d-173b62eb.pth"),
            accuracy: Accuracy { top1: 83.246, top5: Some(96.454) },
            eval: Eval::bilinear(232, 224),
            file_mb: 319.318,
            gmacs: Some(15.46),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &RESNEXT101_64X4D),
        ..FAMILY
    },
    ModelSpec {
        name: "wide_resnet50_2",
        arch: "Wide ResNet-50-2",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/wide_resnet50_2-9ba9bcbe.pth"),
                accuracy: Accuracy { top1: 81.602, top5: Some(95.758) },
                eval: Eval::bilinear(232, 224),
                file_mb: 263.124,
                gmacs: Some(11.398),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth"),
                accuracy: Accuracy { top1: 78.468, top5: Some(94.086) },
                eval: Eval::bilinear(256, 224),
                file_mb: 131.82,
                gmacs: Some(11.398),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &WIDE_RESNET50_2),
        ..FAMILY
    },
    ModelSpec {
        name: "wide_resnet101_2",
        arch: "Wide ResNet-101-2",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/wide_resnet101_2-d733dc28.pth"),
                accuracy: Accuracy { top1: 82.51, top5: Some(96.02) },
                eval: Eval::bilinear(232, 224),
                file_mb: 484.747,
                gmacs: Some(22.753),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/wide_resnet101_2-32ee1156.pth"),
                accuracy: Accuracy { top1: 78.848, top5: Some(94.284) },
                eval: Eval::bilinear(256, 224),
                file_mb: 242.896,
                gmacs: Some(22.753),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &WIDE_RESNET101_2),
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

/// An architecture of the family: torchvision's `ResNet(block, layers, groups, width_per_group)`.
pub struct Config {
    pub block: Block,
    /// The number of blocks per stage.
    pub layers: [usize; 4],
    /// The groups of the bottleneck's 3×3 convolution (1 but in ResNeXt).
    pub groups: i64,
    /// The channels per group of that convolution at the first stage, where a ResNet's bottleneck has 64: its
    /// width is `planes · width_per_group / 64 · groups`. Basic blocks take only 1 group of 64.
    pub width_per_group: i64,
}

const fn resnet(block: Block, layers: [usize; 4]) -> Config {
    Config { block, layers, groups: 1, width_per_group: 64 }
}

pub const RESNET18: Config = resnet(Block::Basic, [2, 2, 2, 2]);
pub const RESNET34: Config = resnet(Block::Basic, [3, 4, 6, 3]);
pub const RESNET50: Config = resnet(Block::Bottleneck, [3, 4, 6, 3]);
pub const RESNET101: Config = resnet(Block::Bottleneck, [3, 4, 23, 3]);
pub const RESNET152: Config = resnet(Block::Bottleneck, [3, 8, 36, 3]);
pub const RESNEXT50_32X4D: Config = Config { groups: 32, width_per_group: 4, ..RESNET50 };
pub const RESNEXT101_32X8D: Config = Config { groups: 32, width_per_group: 8, ..RESNET101 };
pub const RESNEXT101_64X4D: Config = Config { groups: 64, width_per_group: 4, ..RESNET101 };
pub const WIDE_RESNET50_2: Config = Config { width_per_group: 128, ..RESNET50 };
pub const WIDE_RESNET101_2: Config = Config { width_per_group: 128, ..RESNET101 };

/// A residual block: its convolutions in order (ReLU after each but the last), then the shortcut.
#[derive(Debug)]
struct Residual {
    convs: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Residual {
    /// The block of a stage of `planes` channels (64, 128, 256, 512) whose first convolution takes `cin`.
    fn load(p: &P, cfg: &Config, cin: i64, planes: i64, stride: i64) -> Result<Self, BuildError> {
        let Config { block, groups, width_per_group, .. } = *cfg;
        let cout = planes * block.expansion();
        let plain = ConvCfg::default();
        let downsample = if stride != 1 || cin != cout {
            Some(ConvBn::load(&p.sub("downsample"), ("0", "1"), cin, cout, [1, 1], plain.stride(stride), EPS)?)
        } else {
            None
        };
        let convs = match block {
            Block::Basic if groups != 1 || width_per_group != 64 => {
                return Err(BuildError("basic blocks take only 1 group of 64 channels".into()));
            }
            Block::Basic => vec![
                ConvBn::load(p, ("conv1", "bn1"), cin, planes, [3, 3], plain.stride(stride).pad(1), EPS)?
                    .with_act(Act::Relu),
                ConvBn::load(p, ("conv2", "bn2"), planes, planes, [3, 3], plain.pad(1), EPS)?,
            ],
            Block::Bottleneck => {
                // torchvision's `int(planes * (base_width / 64.0)) * groups`, exact in integers.
                let width = planes * width_per_group / 64 * groups;
                let grouped = plain.stride(stride).pad(1).groups(groups);
                vec![
                    ConvBn::load(p, ("conv1", "bn1"), cin, width, [1, 1], plain, EPS)?.with_act(Act::Relu),
                    ConvBn::load(p, ("conv2", "bn2"), width, width, [3, 3], grouped, EPS)?.with_act(Act::Relu),
                    ConvBn::load(p, ("conv3", "bn3"), width, cout, [1, 1], plain, EPS)?,
                ]
            }
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

pub fn build(p: &P, cfg: &Config) -> Result<Box<dyn Network>, BuildError> {
    let stem =
        ConvBn::load(p, ("conv1", "bn1"), 3, 64, [7, 7], ConvCfg::default().stride(2).pad(3), EPS)?.with_act(Act::Relu);
    let (mut blocks, mut cin) = (Vec::new(), 64);
    for (stage, &count) in cfg.layers.iter().enumerate() {
        let planes = 64 << stage;
        for i in 0..count {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            blocks.push(Residual::load(&p.sub(format!("layer{}", stage + 1)).sub(i), cfg, cin, planes, stride)?);
            cin = planes * cfg.block.expansion();
        }
    }
    let fc = Linear::load(&p.sub("fc"), cin, None)?;
    Ok(Box::new(ResNet { stem, blocks, fc }))
}

impl Split for ResNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = super::layers::max_pool2d(&self.stem.forward(xs), 3, 2, 1, false);
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
