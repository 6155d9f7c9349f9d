//! MaxViT (Tu et al., 2022, "Multi-Axis Vision Transformer"), as torchvision builds it: a convolutional stem,
//! then four blocks of MaxViT layers, each an MBConv (pre-normalised inverted bottleneck with
//! squeeze-and-excitation) followed by two attention layers over 7×7 token groups: "window" attention within
//! each 7×7 patch of the map (local), then "grid" attention among the 7×7 positions spread evenly over the
//! map, one per (H/7)×(W/7) cell (global, dilated); a pooled, normalised, tanh-hidden classifier.
//!
//! Both partitions must tile every block's map: the input's side a multiple of 224 (7 × the stride of 32).
//! torchvision builds the model for one input size (224 for its weights); built for another multiple of 224 it
//! computes what this network does at that size.
use super::attention::{relative_position_bias, LayerNorm, Mlp, SelfAttention};
use super::layers::{Act, BatchNorm2d, Conv2d, ConvBn, ConvCfg, Gate, Linear, SqueezeExcite, P};
use super::{Accuracy, BuildError, Eval, InputSizes, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// BatchNorm's epsilon (torchvision's `norm_layer` default, momentum 0.01); LayerNorm's is 1e-5.
const BN_EPS: f64 = 1e-3;
const LN_EPS: f64 = 1e-5;

/// The side of a window, and of the grid.
const PARTITION: i64 = 7;

/// Grad-CAM's target layer: the last block, whose output is [N, 512, 7, 7] at 224×224.
pub const CAM_LAYER: &str = "blocks[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "MaxViT", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[ModelSpec {
    name: "maxvit_t",
    arch: "MaxViT-T",
    weights: &[Weights {
        tag: "IMAGENET1K_V1",
        file: WeightsFile::published("https://download.pytorch.org/models/maxvit_t-bc5ab103.pth"),
        accuracy: Accuracy { top1: 83.7, top5: Some(96.722) },
        eval: Eval::bicubic(224, 224),
        file_mb: 118.769,
        gmacs: Some(5.558),
        ..Weights::TORCHVISION
    }],
    build: |p, _| build(&p.root(), &MAXVIT_T),
    ..FAMILY
}];

/// torchvision's `stem_channels`, `block_channels`, `block_layers` and `head_dim`.
pub struct Config {
    stem: i64,
    channels: [i64; 4],
    layers: [i64; 4],
    head_dim: i64,
}

pub const MAXVIT_T: Config = Config { stem: 64, channels: [64, 128, 256, 512], layers: [2, 2, 5, 2], head_dim: 32 };

/// torchvision's `MBConv`: BatchNorm, 1×1 expansion (×4), 3×3 depthwise convolution (with the layer's stride),
/// squeeze-and-excitation, 1×1 projection, added to the input, or to its 3×3 average pool and 1×1 projection
/// where the layer downsamples.
#[derive(Debug)]
struct MbConv {
    /// The shortcut's projection, after a 3×3 average pool of stride 2 if `pool`.
    proj: Option<(bool, Conv2d)>,
    pre_norm: BatchNorm2d,
    conv_a: ConvBn,
    conv_b: ConvBn,
    se: SqueezeExcite,
    conv_c: Conv2d,
}

impl MbConv {
    fn load(p: &P, cin: i64, cout: i64, stride: i64) -> Result<Self, BuildError> {
        let proj = if stride != 1 || cin != cout {
            let pool = stride == 2;
            let conv =
                Conv2d::load(&p.sub("proj").sub(if pool { 1 } else { 0 }), cin, cout, [1, 1], ConvCfg::default())?;
            Some((pool, conv))
        } else {
            None
        };
        let (mid, squeeze) = (4 * cout, cout / 4);
        let l = p.sub("layers");
        let pre_norm = l.sub("pre_norm");
        let pre_norm = BatchNorm2d::load(&pre_norm, cin, BN_EPS)?.standalone(&pre_norm);
        let conv_a = ConvBn::load(&l.sub("conv_a"), ("0", "1"), cin, mid, [1, 1], ConvCfg::default(), BN_EPS)?
            .with_act(Act::Gelu);
        let depthwise = ConvCfg::default().stride(stride).pad(1).groups(mid);
        let conv_b =
            ConvBn::load(&l.sub("conv_b"), ("0", "1"), mid, mid, [3, 3], depthwise, BN_EPS)?.with_act(Act::Gelu);
        let se = SqueezeExcite::load(&l.sub("squeeze_excitation"), mid, squeeze, Act::Silu, Gate::Sigmoid)?;
        let conv_c = Conv2d::load(&l.sub("conv_c"), mid, cout, [1, 1], ConvCfg::default())?;
        Ok(MbConv { proj, pre_norm, conv_a, conv_b, se, conv_c })
    }
}

impl Module for MbConv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let shortcut = match &self.proj {
            None => xs.shallow_clone(),
            Some((pool, conv)) => {
                let x =
                    if *pool { xs.avg_pool2d([3, 3], [2, 2], [1, 1], false, true, None) } else { xs.shallow_clone() };
                conv.forward(&x)
            }
        };
        let y = self.conv_b.forward(&self.conv_a.forward(&self.pre_norm.forward(xs)));
        // Stochastic depth is the identity at inference.
        self.conv_c.forward_add(&self.se.forward(&y), &shortcut, false)
    }
}

/// torchvision's `PartitionAttentionLayer`: the map cut into groups of 7×7 tokens (a window's, or the grid's),
/// then within each group `x + attn(norm(x))` and `x + mlp(norm(x))`, and the map put back together.
#[derive(Debug)]
struct PartitionAttention {
    grid: bool,
    norm: LayerNorm,
    /// `to_qkv` and `merge`; the scores are scaled by 1/√C (C the layer's channels, not a head's).
    attn: SelfAttention,
    scale: f64,
    /// The relative position bias, [heads, 49, 49].
    bias: Tensor,
    mlp_norm: LayerNorm,
    mlp: Mlp,
}

impl PartitionAttention {
    fn load(p: &P, dim: i64, head_dim: i64, grid: bool) -> Result<Self, BuildError> {
        let heads = dim / head_dim;
        let a = p.sub("attn_layer");
        let norm = LayerNorm::load(&a.sub(0), dim, LN_EPS)?;
        let attention = a.sub(1);
        let n = PARTITION * PARTITION;
        let bias = relative_position_bias(&attention, PARTITION, heads, &[n, n])?;
        let qkv = Linear::load(&attention.sub("to_qkv"), dim, Some(3 * dim))?;
        let merge = Linear::load(&attention.sub("merge"), dim, Some(dim))?;
        let m = p.sub("mlp_layer");
        let mlp_norm = LayerNorm::load(&m.sub(0), dim, LN_EPS)?;
        let mlp = Mlp::load(&m.sub(1), &m.sub(3), dim, 4 * dim)?;
        let attn = SelfAttention::new(qkv, merge, heads);
        Ok(PartitionAttention { grid, norm, attn, scale: (dim as f64).powf(-0.5), bias, mlp_norm, mlp })
    }

    /// torchvision's `RelativePositionalMultiHeadAttention` on [groups, 49, C] tokens.
    fn attention(&self, xs: &Tensor) -> Tensor {
        let (q, k, v) = self.attn.qkv(xs);
        let scores = q.matmul(&(k * self.scale).transpose(-2, -1)) + &self.bias;
        self.attn.merge(&scores.softmax(-1, scores.kind()).matmul(&v))
    }
}

impl Module for PartitionAttention {
    /// [B, C, H, W] in and out.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, c, h, w) = xs.size4().expect("MaxViT's feature maps are [N, C, H, W]");
        // Cells of p×p positions: a window each, or for the grid (H/7)×(W/7) cells whose positions of the same
        // offset make a group. torchvision takes the cell size from the height alone.
        let p = if self.grid { h / PARTITION } else { PARTITION };
        let (gh, gw) = (h / p, w / p);
        let cells = xs.permute([0, 2, 3, 1]).reshape([b, gh, p, gw, p, c]).permute([0, 1, 3, 2, 4, 5]);
        let cells = cells.reshape([b, gh * gw, p * p, c]);
        let groups = if self.grid { cells.swapaxes(-2, -3) } else { cells };
        let (g, t) = (groups.size()[1], groups.size()[2]);
        let x = groups.reshape([b * g, t, c]);
        let x = &x + self.attention(&self.norm.forward(&x));
        let x = &x + self.mlp.forward(&self.mlp_norm.forward(&x));
        let x = x.view([b, g, t, c]);
        let cells = if self.grid { x.swapaxes(-2, -3) } else { x };
        // Back to [B, H, W, C] in memory, seen as [B, C, H, W]: channels-last, as the convolutions take it.
        let x = cells.reshape([b, gh, gw, p, p, c]).permute([0, 1, 3, 2, 4, 5]).reshape([b, h, w, c]);
        x.permute([0, 3, 1, 2])
    }
}

/// torchvision's `MaxVitLayer`.
#[derive(Debug)]
struct MaxVitLayer {
    mbconv: MbConv,
    window: PartitionAttention,
    grid: PartitionAttention,
}

impl Module for MaxVitLayer {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.grid.forward(&self.window.forward(&self.mbconv.forward(xs)))
    }
}

#[derive(Debug)]
pub struct MaxVit {
    stem: ConvBn,
    stem_conv: Conv2d,
    blocks: Vec<Vec<MaxVitLayer>>,
    norm: LayerNorm,
    hidden: Linear,
    classifier: Linear,
}

impl Split for MaxVit {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = self.stem_conv.forward(&self.stem.forward(xs));
        self.blocks.iter().flatten().fold(x, |x, l| l.forward(&x))
    }

    fn head(&self, features: &Tensor) -> Tensor {
        let x = self.norm.forward(&features.adaptive_avg_pool2d([1, 1]).flatten(1, -1));
        self.classifier.forward(&self.hidden.forward(&x).tanh())
    }
}

impl Module for MaxVit {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for MaxVit {
    fn classes(&self) -> i64 {
        self.classifier.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }

    /// Every block's map, the input's side over 4, 8, 16 and 32, must be a multiple of 7.
    fn input_sizes(&self) -> InputSizes {
        InputSizes::MultipleOf(32 * PARTITION)
    }
}

pub fn build(p: &P, cfg: &Config) -> Result<Box<dyn Network>, BuildError> {
    let stem = p.sub("stem");
    let conv = ConvCfg::default().pad(1);
    let stem_bn =
        ConvBn::load(&stem.sub(0), ("0", "1"), 3, cfg.stem, [3, 3], conv.stride(2), BN_EPS)?.with_act(Act::Gelu);
    let stem_conv = Conv2d::load(&stem.sub(1).sub(0), cfg.stem, cfg.stem, [3, 3], conv)?;
    let mut blocks = Vec::new();
    let mut cin = cfg.stem;
    for (i, (&cout, &n)) in cfg.channels.iter().zip(&cfg.layers).enumerate() {
        let b = p.sub("blocks").sub(i).sub("layers");
        let mut layers = Vec::new();
        for j in 0..n {
            let l = b.sub(j).sub("layers");
            let mbconv =
                MbConv::load(&l.sub("MBconv"), if j == 0 { cin } else { cout }, cout, if j == 0 { 2 } else { 1 })?;
            let window = PartitionAttention::load(&l.sub("window_attention"), cout, cfg.head_dim, false)?;
            let grid = PartitionAttention::load(&l.sub("grid_attention"), cout, cfg.head_dim, true)?;
            layers.push(MaxVitLayer { mbconv, window, grid });
        }
        blocks.push(layers);
        cin = cout;
    }
    let c = p.sub("classifier");
    let norm = LayerNorm::load(&c.sub(2), cin, LN_EPS)?;
    let hidden = Linear::load(&c.sub(3), cin, Some(cin))?;
    let classifier = Linear::load_no_bias(&c.sub(5), cin, None)?;
    Ok(Box::new(MaxVit { stem: stem_bn, stem_conv, blocks, norm, hidden, classifier }))
}
