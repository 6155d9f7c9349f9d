//! ConvNeXt (Liu et al., 2022, "A ConvNet for the 2020s"), as torchvision builds it: a ResNet modernised
//! towards the vision transformers. A 4×4 stride-4 "patchify" stem, then four stages of blocks, each a 7×7
//! depthwise convolution, LayerNorm over the channels, an inverted bottleneck of two fully connected layers
//! (4× wider, GELU between) applied to every position, a learnt per-channel scale and the residual; between
//! stages, LayerNorm and a 2×2 stride-2 convolution. The classifier pools, normalises and projects.
//!
//! The blocks' LayerNorm and fully connected layers run on the [N, H, W, C] view of the convolution's output,
//! which on the CPU's channels-last tensors is a view of the same memory: no copy goes either way. Stochastic
//! depth is the identity at inference.
use super::attention::{LayerNorm, Mlp};
use super::layers::{Conv2d, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// torchvision's `partial(LayerNorm2d, eps=1e-6)` and `partial(nn.LayerNorm, eps=1e-6)`.
const EPS: f64 = 1e-6;

/// Grad-CAM's target layer: the last stage of `features`, its blocks' output.
pub const CAM_LAYER: &str = "features[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "ConvNeXt", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "convnext_tiny",
        arch: "ConvNeXt Tiny",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/convnext_tiny-983f1562.pth"),
            accuracy: Accuracy { top1: 82.52, top5: Some(96.146) },
            eval: Eval::bilinear(236, 224),
            file_mb: 109.119,
            gmacs: Some(4.456),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &TINY),
        ..FAMILY
    },
    ModelSpec {
        name: "convnext_small",
        arch: "ConvNeXt Small",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/convnext_small-0c510722.pth"),
            accuracy: Accuracy { top1: 83.616, top5: Some(96.65) },
            eval: Eval::bilinear(230, 224),
            file_mb: 191.703,
            gmacs: Some(8.684),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &SMALL),
        ..FAMILY
    },
    ModelSpec {
        name: "convnext_base",
        arch: "ConvNeXt Base",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/convnext_base-6075fbad.pth"),
            accuracy: Accuracy { top1: 84.062, top5: Some(96.87) },
            eval: Eval::bilinear(232, 224),
            file_mb: 338.064,
            gmacs: Some(15.355),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &BASE),
        ..FAMILY
    },
    ModelSpec {
        name: "convnext_large",
        arch: "ConvNeXt Large",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/convnext_large-ea097f82.pth"),
            accuracy: Accuracy { top1: 84.414, top5: Some(96.976) },
            eval: Eval::bilinear(232, 224),
            file_mb: 754.537,
            gmacs: Some(34.361),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &LARGE),
        ..FAMILY
    },
];

/// The four stages as (channels, blocks): torchvision's `CNBlockConfig`s, each stage's output channels being
/// the next one's input.
pub type Config = [(i64, i64); 4];

pub const TINY: Config = [(96, 3), (192, 3), (384, 9), (768, 3)];
pub const SMALL: Config = [(96, 3), (192, 3), (384, 27), (768, 3)];
pub const BASE: Config = [(128, 3), (256, 3), (512, 27), (1024, 3)];
pub const LARGE: Config = [(192, 3), (384, 3), (768, 27), (1536, 3)];

/// torchvision's `CNBlock`: `x + layer_scale · mlp(norm(dwconv(x)))`.
#[derive(Debug)]
struct CnBlock {
    dwconv: Conv2d,
    norm: LayerNorm,
    mlp: Mlp,
    /// [C]: torchvision's [C, 1, 1] on the [N, H, W, C] view.
    layer_scale: Tensor,
}

impl CnBlock {
    fn load(p: &P, dim: i64) -> Result<Self, BuildError> {
        let layer_scale = p.compute(&p.take("layer_scale", &[dim, 1, 1])?.view([dim]));
        let b = p.sub("block");
        Ok(CnBlock {
            dwconv: Conv2d::load(&b.sub(0), dim, dim, [7, 7], ConvCfg::default().pad(3).groups(dim))?,
            norm: LayerNorm::load(&b.sub(2), dim, EPS)?,
            mlp: Mlp::load(&b.sub(3), &b.sub(5), dim, 4 * dim)?,
            layer_scale,
        })
    }
}

impl Module for CnBlock {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let y = self.dwconv.forward(xs).permute([0, 2, 3, 1]);
        let y = self.mlp.forward(&self.norm.forward(&y)) * &self.layer_scale;
        let mut y = y.permute([0, 3, 1, 2]);
        y += xs;
        y
    }
}

/// A stage's blocks, then the downsampling to the next stage (LayerNorm2d, 2×2 stride-2 convolution), which
/// the last stage has not.
#[derive(Debug)]
struct Stage {
    blocks: Vec<CnBlock>,
    downsample: Option<(LayerNorm, Conv2d)>,
}

impl Module for Stage {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let x = self.blocks.iter().fold(xs.shallow_clone(), |x, block| block.forward(&x));
        match &self.downsample {
            Some((norm, conv)) => conv.forward(&norm.forward_channels(&x)),
            None => x,
        }
    }
}

#[derive(Debug)]
pub struct ConvNeXt {
    /// The 4×4 stride-4 stem and its LayerNorm2d.
    stem: (Conv2d, LayerNorm),
    stages: Vec<Stage>,
    /// The classifier's LayerNorm2d, on the pooled features.
    norm: LayerNorm,
    classifier: Linear,
}

pub fn build(p: &P, cfg: &Config) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let c0 = cfg[0].0;
    let stem = (
        Conv2d::load(&f.sub(0).sub(0), 3, c0, [4, 4], ConvCfg::default().stride(4))?,
        LayerNorm::load(&f.sub(0).sub(1), c0, EPS)?,
    );
    // torchvision's `features`: the stem, then each stage's blocks and, but after the last, its downsampling.
    let mut at = 1;
    let mut stages = Vec::new();
    for (i, &(c, n)) in cfg.iter().enumerate() {
        let s = f.sub(at);
        let blocks = (0..n).map(|j| CnBlock::load(&s.sub(j), c)).collect::<Result<_, _>>()?;
        let downsample = match cfg.get(i + 1) {
            Some(&(next, _)) => {
                let d = f.sub(at + 1);
                at += 1;
                let conv = Conv2d::load(&d.sub(1), c, next, [2, 2], ConvCfg::default().stride(2))?;
                Some((LayerNorm::load(&d.sub(0), c, EPS)?, conv))
            }
            None => None,
        };
        at += 1;
        stages.push(Stage { blocks, downsample });
    }
    let (c, head) = (cfg[3].0, p.sub("classifier"));
    let norm = LayerNorm::load(&head.sub(0), c, EPS)?;
    let classifier = Linear::load(&head.sub(2), c, None)?;
    Ok(Box::new(ConvNeXt { stem, stages, norm, classifier }))
}

impl Split for ConvNeXt {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = self.stem.1.forward_channels(&self.stem.0.forward(xs));
        self.stages.iter().fold(x, |x, stage| stage.forward(&x))
    }

    fn head(&self, features: &Tensor) -> Tensor {
        let x = self.norm.forward_channels(&features.adaptive_avg_pool2d([1, 1]));
        self.classifier.forward(&x.flatten(1, -1))
    }
}

impl Module for ConvNeXt {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for ConvNeXt {
    fn classes(&self) -> i64 {
        self.classifier.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}
