//! EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", 2019) and
//! EfficientNetV2 (Tan & Le, "EfficientNetV2: Smaller Models and Faster Training", 2021), as torchvision builds
//! them: a stem convolution, stages of MBConv blocks (1×1 expansion, depthwise convolution,
//! squeeze-and-excitation, 1×1 projection; SiLU throughout) and, in V2, FusedMBConv blocks (the expansion and
//! depthwise convolution as one k×k convolution, no squeeze-and-excitation), a 1×1 head convolution, average
//! pooling and a linear classifier. B0–B7 scale one stage table in width and depth; V2 has a table per size.
//! Unlike EfficientNet-Lite ([`super::efficientnet_lite`]), the convolutions pad symmetrically, by (k - 1) / 2.
use super::layers::{make_divisible, Act, ConvBn, ConvCfg, Gate, Linear, SqueezeExcite, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// Grad-CAM's target layer: the last layer of `features`, the 1×1 head convolution with its SiLU.
pub const CAM_LAYER: &str = "features[-1]";

/// What the family's entries share. No int8 form: squeeze-and-excitation and SiLU have none here.
const FAMILY: ModelSpec = ModelSpec { family: "EfficientNet", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "efficientnet_b0",
        arch: "EfficientNet-B0",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth"),
            accuracy: Accuracy { top1: 77.692, top5: Some(93.532) },
            eval: Eval::bicubic(256, 224),
            file_mb: 20.451,
            gmacs: Some(0.386),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &B0),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_b1",
        arch: "EfficientNet-B1",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_b1-c27df63c.pth"),
                accuracy: Accuracy { top1: 79.838, top5: Some(94.934) },
                eval: Eval::bilinear(255, 240),
                file_mb: 30.136,
                gmacs: Some(0.687),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published(
                    "https://download.pytorch.org/models/efficientnet_b1_rwightman-bac287d4.pth",
                ),
                accuracy: Accuracy { top1: 78.642, top5: Some(94.186) },
                eval: Eval::bicubic(256, 240),
                file_mb: 30.134,
                gmacs: Some(0.687),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &B1),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_b2",
        arch: "EfficientNet-B2",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_b2_rwightman-c35c1473.pth"),
            accuracy: Accuracy { top1: 80.608, top5: Some(95.31) },
            eval: Eval::bicubic(288, 288),
            file_mb: 35.174,
            gmacs: Some(1.088),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &B2),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_b3",
        arch: "EfficientNet-B3",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_b3_rwightman-b3899882.pth"),
            accuracy: Accuracy { top1: 82.008, top5: Some(96.054) },
            eval: Eval::bicubic(320, 300),
            file_mb: 47.184,
            gmacs: Some(1.827),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &B3),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_b4",
        arch: "EfficientNet-B4",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_b4_rwightman-23ab8bcd.pth"),
            accuracy: Accuracy { top1: 83.384, top5: Some(96.594) },
            eval: Eval::bicubic(384, 380),
            file_mb: 74.489,
            gmacs: Some(4.394),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &B4),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_b5",
        arch: "EfficientNet-B5",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_b5_lukemelas-1a07897c.pth"),
            accuracy: Accuracy { top1: 83.444, top5: Some(96.628) },
            eval: Eval::bicubic(456, 456),
            file_mb: 116.864,
            gmacs: Some(10.266),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &B5),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_b6",
        arch: "EfficientNet-B6",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_b6_lukemelas-24a108a5.pth"),
            accuracy: Accuracy { top1: 84.008, top5: Some(96.916) },
            eval: Eval::bicubic(528, 528),
            file_mb: 165.362,
            gmacs: Some(19.068),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &B6),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_b7",
        arch: "EfficientNet-B7",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_b7_lukemelas-c5b4e57e.pth"),
            accuracy: Accuracy { top1: 84.122, top5: Some(96.908) },
            eval: Eval::bicubic(600, 600),
            file_mb: 254.675,
            gmacs: Some(37.746),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &B7),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_v2_s",
        arch: "EfficientNetV2-S",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_v2_s-dd5fe13b.pth"),
            accuracy: Accuracy { top1: 84.228, top5: Some(96.878) },
            eval: Eval::bilinear(384, 384),
            file_mb: 82.704,
            gmacs: Some(8.366),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &V2_S),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_v2_m",
        arch: "EfficientNetV2-M",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_v2_m-dc08266a.pth"),
            accuracy: Accuracy { top1: 85.112, top5: Some(97.156) },
            eval: Eval::bilinear(480, 480),
            file_mb: 208.01,
            gmacs: Some(24.582),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &V2_M),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_v2_l",
        arch: "EfficientNetV2-L",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/efficientnet_v2_l-59c71312.pth"),
            accuracy: Accuracy { top1: 85.808, top5: Some(97.788) },
            eval: Eval::bicubic(480, 480),
            mean: [0.5, 0.5, 0.5],
            std: [0.5, 0.5, 0.5],
            file_mb: 454.573,
            gmacs: Some(56.08),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &V2_L),
        ..FAMILY
    },
];

/// The kind of block a stage is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    /// torchvision's `MBConv` (`MBConvConfig`): its channels and depth scale with the width and depth
    /// multipliers.
    MbConv,
    /// torchvision's `FusedMBConv` (`FusedMBConvConfig`, V2 only): not scaled.
    Fused,
}

/// One stage, torchvision's `_MBConvConfig` before scaling: `layers` blocks from `input` to `out` channels, the
/// first with `stride`, each expanding its input `expand_ratio` times with a `kernel`×`kernel` convolution.
#[derive(Debug, Clone, Copy)]
struct Stage {
    kind: BlockKind,
    expand_ratio: f64,
    kernel: i64,
    stride: i64,
    input: i64,
    out: i64,
    layers: i64,
}

impl Stage {
    /// The stage as the network has it, scaled by `width` and `depth` if it is made of MBConv blocks.
    fn scaled(self, width: f64, depth: f64) -> Stage {
        match self.kind {
            BlockKind::Fused => self,
            BlockKind::MbConv => Stage {
                input: adjust_channels(self.input, width),
                out: adjust_channels(self.out, width),
                layers: adjust_depth(self.layers, depth),
                ..self
            },
        }
    }
}

/// torchvision's `_MBConvConfig.adjust_channels`: `channels` times `width`, rounded to a multiple of 8.
fn adjust_channels(channels: i64, width: f64) -> i64 {
    make_divisible(channels as f64 * width, 8)
}

/// torchvision's `MBConvConfig.adjust_depth`: `layers` times `depth`, rounded up.
fn adjust_depth(layers: i64, depth: f64) -> i64 {
    (layers as f64 * depth).ceil() as i64
}

/// One member of the family, torchvision's `_efficientnet_conf` and builder arguments.
pub struct Config {
    stages: &'static [Stage],
    /// The width multiplier (1 for V2).
    width: f64,
    /// The depth multiplier (1 for V2).
    depth: f64,
    /// The head convolution's output channels: V2's 1280, or `None` for four times the last stage's (V1).
    last_channel: Option<i64>,
    /// BatchNorm's epsilon: PyTorch's default 1e-5 for B0–B4, 1e-3 for B5–B7 (ported from TensorFlow) and V2.
    eps: f64,
}

const fn mb(expand_ratio: f64, kernel: i64, stride: i64, input: i64, out: i64, layers: i64) -> Stage {
    Stage { kind: BlockKind::MbConv, expand_ratio, kernel, stride, input, out, layers }
}

const fn fused(expand_ratio: f64, kernel: i64, stride: i64, input: i64, out: i64, layers: i64) -> Stage {
    Stage { kind: BlockKind::Fused, expand_ratio, kernel, stride, input, out, layers }
}

/// EfficientNet's stages (the paper's Table 1), which B0–B7 scale.
const V1_STAGES: &[Stage] = &[
    mb(1.0, 3, 1, 32, 16, 1),
    mb(6.0, 3, 2, 16, 24, 2),
    mb(6.0, 5, 2, 24, 40, 2),
    mb(6.0, 3, 2, 40, 80, 3),
    mb(6.0, 5, 1, 80, 112, 3),
    mb(6.0, 5, 2, 112, 192, 4),
    mb(6.0, 3, 1, 192, 320, 1),
];

const fn v1(width: f64, depth: f64, eps: f64) -> Config {
    Config { stages: V1_STAGES, width, depth, last_channel: None, eps }
}

pub const B0: Config = v1(1.0, 1.0, 1e-5);
pub const B1: Config = v1(1.0, 1.1, 1e-5);
pub const B2: Config = v1(1.1, 1.2, 1e-5);
pub const B3: Config = v1(1.2, 1.4, 1e-5);
pub const B4: Config = v1(1.4, 1.8, 1e-5);
pub const B5: Config = v1(1.6, 2.2, 1e-3);
pub const B6: Config = v1(1.8, 2.6, 1e-3);
pub const B7: Config = v1(2.0, 3.1, 1e-3);

const fn v2(stages: &'static [Stage]) -> Config {
    Config { stages, width: 1.0, depth: 1.0, last_channel: Some(1280), eps: 1e-3 }
}

/// EfficientNetV2's stages (the paper's Table 4, and torchvision's M and L).
pub const V2_S: Config = v2(&[
    fused(1.0, 3, 1, 24, 24, 2),
    fused(4.0, 3, 2, 24, 48, 4),
    fused(4.0, 3, 2, 48, 64, 4),
    mb(4.0, 3, 2, 64, 128, 6),
    mb(6.0, 3, 1, 128, 160, 9),
    mb(6.0, 3, 2, 160, 256, 15),
]);

pub const V2_M: Config = v2(&[
    fused(1.0, 3, 1, 24, 24, 3),
    fused(4.0, 3, 2, 24, 48, 5),
    fused(4.0, 3, 2, 48, 80, 5),
    mb(4.0, 3, 2, 80, 160, 7),
    mb(6.0, 3, 1, 160, 176, 14),
    mb(6.0, 3, 2, 176, 304, 18),
    mb(6.0, 3, 1, 304, 512, 5),
]);

pub const V2_L: Config = v2(&[
    fused(1.0, 3, 1, 32, 32, 4),
    fused(4.0, 3, 2, 32, 64, 7),
    fused(4.0, 3, 2, 64, 96, 7),
    mb(4.0, 3, 2, 96, 192, 10),
    mb(6.0, 3, 1, 192, 224, 19),
    mb(6.0, 3, 2, 224, 384, 25),
    mb(6.0, 3, 1, 384, 640, 7),
]);

/// A block; stochastic depth, which scales its residual branch in training, is the identity at inference.
#[derive(Debug)]
enum Block {
    /// An optional 1×1 expansion, a depthwise k×k convolution, squeeze-and-excitation, a 1×1 projection.
    MbConv { expand: Option<ConvBn>, depthwise: ConvBn, se: Box<SqueezeExcite>, project: ConvBn, residual: bool },
    /// A k×k expansion and a 1×1 projection.
    Fused { expand: ConvBn, project: ConvBn, residual: bool },
    /// An expansion ratio of 1: one k×k convolution with its activation, so a residual sum comes after it.
    Single { conv: ConvBn, residual: bool },
}

impl Block {
    fn load(b: &P, s: &Stage, cin: i64, stride: i64, eps: f64) -> Result<Block, BuildError> {
        let (k, out) = (s.kernel, s.out);
        let residual = stride == 1 && cin == out;
        let expanded = adjust_channels(cin, s.expand_ratio);
        let one = ConvCfg::default();
        let b = b.sub("block");
        Ok(match s.kind {
            BlockKind::MbConv => {
                let mut at = 0;
                let expand = if expanded != cin {
                    at += 1;
                    Some(ConvBn::norm_act(&b.sub(0), cin, expanded, 1, one, eps, Act::Silu)?)
                } else {
                    None
                };
                let dw = one.stride(stride).groups(expanded);
                let depthwise = ConvBn::norm_act(&b.sub(at), expanded, expanded, k, dw, eps, Act::Silu)?;
                let squeeze = (cin / 4).max(1);
                let se = Box::new(SqueezeExcite::load(&b.sub(at + 1), expanded, squeeze, Act::Silu, Gate::Sigmoid)?);
                let project = ConvBn::norm_act(&b.sub(at + 2), expanded, out, 1, one, eps, Act::None)?;
                Block::MbConv { expand, depthwise, se, project, residual }
            }
            BlockKind::Fused if expanded != cin => {
                let expand = ConvBn::norm_act(&b.sub(0), cin, expanded, k, one.stride(stride), eps, Act::Silu)?;
                let project = ConvBn::norm_act(&b.sub(1), expanded, out, 1, one, eps, Act::None)?;
                Block::Fused { expand, project, residual }
            }
            BlockKind::Fused => Block::Single {
                conv: ConvBn::norm_act(&b.sub(0), cin, out, k, one.stride(stride), eps, Act::Silu)?,
                residual,
            },
        })
    }
}

/// The projection of `x`, plus the block's input `xs` if `residual` (the sum fused into the projection).
fn project(conv: &ConvBn, x: &Tensor, xs: &Tensor, residual: bool) -> Tensor {
    if residual {
        conv.forward_add(x, xs, false)
    } else {
        conv.forward(x)
    }
}

impl Module for Block {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            Block::MbConv { expand, depthwise, se, project: p, residual } => {
                let x = match expand {
                    Some(e) => depthwise.forward(&e.forward(xs)),
                    None => depthwise.forward(xs),
                };
                project(p, &se.forward(&x), xs, *residual)
            }
            Block::Fused { expand, project: p, residual } => project(p, &expand.forward(xs), xs, *residual),
            Block::Single { conv, residual } => {
                let y = conv.forward(xs);
                if *residual {
                    y + xs
                } else {
                    y
                }
            }
        }
    }
}

#[derive(Debug)]
pub struct EfficientNet {
    stem: ConvBn,
    blocks: Vec<Block>,
    /// The 1×1 head convolution, `features[-1]`.
    last: ConvBn,
    classifier: Linear,
}

pub fn build(p: &P, cfg: &Config) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let stages: Vec<Stage> = cfg.stages.iter().map(|s| s.scaled(cfg.width, cfg.depth)).collect();
    let first = stages[0].input;
    let stem = ConvBn::norm_act(&f.sub(0), 3, first, 3, ConvCfg::default().stride(2), cfg.eps, Act::Silu)?;
    let (mut blocks, mut cin) = (Vec::new(), first);
    for (i, stage) in stages.iter().enumerate() {
        for j in 0..stage.layers {
            // The first block of a stage takes the previous stage's channels and strides.
            let stride = if j == 0 { stage.stride } else { 1 };
            blocks.push(Block::load(&f.sub(i + 1).sub(j), stage, cin, stride, cfg.eps)?);
            cin = stage.out;
        }
    }
    let last_channel = cfg.last_channel.unwrap_or(4 * cin);
    let last =
        ConvBn::norm_act(&f.sub(stages.len() + 1), cin, last_channel, 1, ConvCfg::default(), cfg.eps, Act::Silu)?;
    // `classifier.0` is dropout, the identity at inference.
    let classifier = Linear::load(&p.sub("classifier").sub(1), last_channel, None)?;
    Ok(Box::new(EfficientNet { stem, blocks, last, classifier }))
}

impl Split for EfficientNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = self.blocks.iter().fold(self.stem.forward(xs), |x, b| b.forward(&x));
        self.last.forward(&x)
    }

    fn head(&self, features: &Tensor) -> Tensor {
        self.classifier.forward(&features.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

impl Module for EfficientNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for EfficientNet {
    fn classes(&self) -> i64 {
        self.classifier.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scaled stages' channels and depths, as torchvision's `_efficientnet_conf` gives them.
    #[test]
    fn scaling_matches_torchvision() {
        let scaled = |cfg: &Config| -> Vec<(i64, i64, i64)> {
            cfg.stages.iter().map(|s| s.scaled(cfg.width, cfg.depth)).map(|s| (s.input, s.out, s.layers)).collect()
        };
        assert_eq!(
            scaled(&B0),
            [(32, 16, 1), (16, 24, 2), (24, 40, 2), (40, 80, 3), (80, 112, 3), (112, 192, 4), (192, 320, 1)]
        );
        assert_eq!(
            scaled(&B7),
            [(64, 32, 4), (32, 48, 7), (48, 80, 7), (80, 160, 10), (160, 224, 10), (224, 384, 13), (384, 640, 4)]
        );
        assert_eq!(scaled(&V2_S), V2_S.stages.iter().map(|s| (s.input, s.out, s.layers)).collect::<Vec<_>>());
    }
}
