//! Swin Transformer (Liu et al., 2021, "Hierarchical Vision Transformer using Shifted Windows") and Swin
//! Transformer V2 (Liu et al., 2022, "Scaling Up Capacity and Resolution"), as torchvision builds them: a 4×4
//! patch embedding, then four stages of transformer blocks that attend within `window`×`window` windows of the
//! [N, H, W, C] feature map, every other block with the windows shifted by half a window (a cyclic roll, and a
//! mask that keeps the pieces the roll brought together apart), with patch merging (2×2 neighbours
//! concatenated and projected to twice the channels) between stages.
//!
//! V1 normalises before attention and the MLP and adds a learnt relative position bias; V2 normalises their
//! outputs instead (`x + norm(attn(x))`), attends by cosine similarity scaled by a learnt, clamped temperature,
//! and computes the position bias with a small MLP over log-spaced relative coordinates.
//!
//! Feature maps that are not window multiples are padded with zeros (after the normalisation, as torchvision
//! does, so the padding takes part in attention), and odd ones before merging, so any side ≥ 32 runs; a window
//! that covers the whole (padded) map is not shifted.
use super::attention::{relative_position_bias, LayerNorm, Mlp, SelfAttention};
use super::layers::{Conv2d, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, CamReshape, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// LayerNorm's epsilon throughout.
const EPS: f64 = 1e-5;

/// Grad-CAM's target layer: the first LayerNorm of the last block, whose output is [N, H, W, C], as
/// pytorch-grad-cam's README takes it for Swin: in V1 it normalises the block's input for the attention.
pub const CAM_LAYER: &str = "features[-1][-1].norm1";

/// V2's: its blocks normalise after the attention, so that their `norm1` sees the attention's output alone, not
/// the features (on random weights its map can be 0 everywhere); the last block's input, the previous block's
/// output, is what V1's `norm1` normalises.
pub const CAM_LAYER_V2: &str = "features[-1][-2]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec {
    family: "Swin Transformer",
    cam_layer: CAM_LAYER,
    cam_reshape: CamReshape::ChannelsLast,
    ..ModelSpec::BLANK
};

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "swin_t",
        arch: "Swin-T",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/swin_t-704ceda3.pth"),
            accuracy: Accuracy { top1: 81.474, top5: Some(95.776) },
            eval: Eval::bicubic(232, 224),
            file_mb: 108.19,
            gmacs: Some(4.491),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &SWIN_T),
        ..FAMILY
    },
    ModelSpec {
        name: "swin_s",
        arch: "Swin-S",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/swin_s-5e29d889.pth"),
            accuracy: Accuracy { top1: 83.196, top5: Some(96.36) },
            eval: Eval::bicubic(246, 224),
            file_mb: 189.786,
            gmacs: Some(8.741),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &SWIN_S),
        ..FAMILY
    },
    ModelSpec {
        name: "swin_b",
        arch: "Swin-B",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/swin_b-68c6b09e.pth"),
            accuracy: Accuracy { top1: 83.582, top5: Some(96.64) },
            eval: Eval::bicubic(238, 224),
            file_mb: 335.364,
            gmacs: Some(15.431),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &SWIN_B),
        ..FAMILY
    },
    ModelSpec {
        name: "swin_v2_t",
        arch: "Swin V2-T",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/swin_v2_t-b137f0e2.pth"),
            accuracy: Accuracy { top1: 82.072, top5: Some(96.132) },
            eval: Eval::bicubic(260, 256),
            file_mb: 108.626,
            gmacs: Some(5.94),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &SWIN_V2_T),
        cam_layer: CAM_LAYER_V2,
        ..FAMILY
    },
    ModelSpec {
        name: "swin_v2_s",
        arch: "Swin V2-S",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/swin_v2_s-637d8ceb.pth"),
            accuracy: Accuracy { top1: 83.712, top5: Some(96.816) },
            eval: Eval::bicubic(260, 256),
            file_mb: 190.675,
            gmacs: Some(11.546),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &SWIN_V2_S),
        cam_layer: CAM_LAYER_V2,
        ..FAMILY
    },
    ModelSpec {
        name: "swin_v2_b",
        arch: "Swin V2-B",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/swin_v2_b-781e5279.pth"),
            accuracy: Accuracy { top1: 84.112, top5: Some(96.864) },
            eval: Eval::bicubic(272, 256),
            file_mb: 336.372,
            gmacs: Some(20.325),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &SWIN_V2_B),
        cam_layer: CAM_LAYER_V2,
        ..FAMILY
    },
];

/// One architecture: torchvision's `embed_dim`, `depths`, `num_heads` and `window_size`, and the version.
pub struct Config {
    embed: i64,
    depths: [i64; 4],
    heads: [i64; 4],
    window: i64,
    v2: bool,
}

pub const SWIN_T: Config = Config { embed: 96, depths: [2, 2, 6, 2], heads: [3, 6, 12, 24], window: 7, v2: false };
pub const SWIN_S: Config = Config { embed: 96, depths: [2, 2, 18, 2], heads: [3, 6, 12, 24], window: 7, v2: false };
pub const SWIN_B: Config = Config { embed: 128, depths: [2, 2, 18, 2], heads: [4, 8, 16, 32], window: 7, v2: false };
pub const SWIN_V2_T: Config = Config { window: 8, v2: true, ..SWIN_T };
pub const SWIN_V2_S: Config = Config { window: 8, v2: true, ..SWIN_S };
pub const SWIN_V2_B: Config = Config { window: 8, v2: true, ..SWIN_B };

/// How a window's attention scores are made.
#[derive(Debug)]
enum Scores {
    /// V1: softmax(q·kᵀ/√d + relative position bias), the bias [heads, N, N].
    Dot { attn: SelfAttention, bias: Tensor },
    /// V2: softmax(cos(q, k)·τ + 16·sigmoid(cpb_mlp(coordinates))), τ the head's temperature (its
    /// `logit_scale`, clamped at log 100, exponentiated; [heads, 1, 1]). The key bias is zeroed, as torchvision
    /// does on every forward pass.
    Cosine { qkv_weight: Tensor, qkv_bias: Tensor, proj: Linear, heads: i64, temperature: Tensor, bias: Tensor },
}

impl Scores {
    /// Attention within each window: `windows` [B·nW, N, C], windows of the same image consecutive; `mask`
    /// [nW, N, N] (0 or −100) where the windows are shifted.
    fn forward(&self, windows: &Tensor, mask: Option<&Tensor>) -> Tensor {
        match self {
            Scores::Dot { attn, bias } => {
                let bias = match mask {
                    None => bias.shallow_clone(),
                    Some(mask) => {
                        let (nw, n) = (mask.size()[0], mask.size()[1]);
                        let images = windows.size()[0] / nw;
                        let heads = bias.size()[0];
                        (bias.unsqueeze(0) + mask.unsqueeze(1))
                            .unsqueeze(0)
                            .expand([images, nw, heads, n, n], false)
                            .reshape([images * nw, heads, n, n])
                    }
                };
                attn.forward_with(windows, Some(&bias))
            }
            Scores::Cosine { qkv_weight, qkv_bias, proj, heads, temperature, bias } => {
                let (bw, n, c) = windows.size3().expect("windows are [windows, tokens, channels]");
                let qkv = windows
                    .linear(qkv_weight, Some(qkv_bias))
                    .reshape([bw, n, 3, *heads, c / heads])
                    .permute([2, 0, 3, 1, 4]);
                let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
                // F.normalize: x / max(‖x‖, 1e-12).
                let normalize = |t: &Tensor| t / t.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12);
                let scores = normalize(&q).matmul(&normalize(&k).transpose(-2, -1)) * temperature + bias;
                let scores = match mask {
                    None => scores,
                    Some(mask) => {
                        let nw = mask.size()[0];
                        (scores.view([bw / nw, nw, *heads, n, n]) + mask.unsqueeze(1).unsqueeze(0))
                            .view([bw, *heads, n, n])
                    }
                };
                let ys = scores.softmax(-1, scores.kind()).matmul(&v);
                proj.forward(&ys.transpose(1, 2).reshape([bw, n, c]))
            }
        }
    }
}

/// torchvision's `shifted_window_attention`: pad to window multiples, roll by the shift, attend within each
/// window, and undo all three.
#[derive(Debug)]
struct WindowAttention {
    scores: Scores,
    window: i64,
    shift: i64,
}

impl WindowAttention {
    fn load(p: &P, dim: i64, heads: i64, window: i64, shift: i64, v2: bool) -> Result<Self, BuildError> {
        let n = window * window;
        let scores = if v2 {
            let temperature = p.take("logit_scale", &[heads, 1, 1])?.clamp_max(100f64.ln()).exp();
            let bias = continuous_position_bias(p, window, heads)?;
            let qkv = p.sub("qkv");
            let qkv_weight = qkv.take("weight", &[3 * dim, dim])?;
            let b = qkv.take("bias", &[3 * dim])?;
            let qkv_bias =
                Tensor::cat(&[b.narrow(0, 0, dim), b.narrow(0, dim, dim).zeros_like(), b.narrow(0, 2 * dim, dim)], 0);
            let proj = Linear::load(&p.sub("proj"), dim, Some(dim))?;
            Scores::Cosine {
                qkv_weight: p.compute(&qkv_weight),
                qkv_bias: p.compute(&qkv_bias),
                proj,
                heads,
                temperature: p.compute(&temperature),
                bias,
            }
        } else {
            let bias = relative_position_bias(p, window, heads, &[n * n])?;
            let qkv = Linear::load(&p.sub("qkv"), dim, Some(3 * dim))?;
            let proj = Linear::load(&p.sub("proj"), dim, Some(dim))?;
            Scores::Dot { attn: SelfAttention::new(qkv, proj, heads), bias }
        };
        Ok(WindowAttention { scores, window, shift })
    }
}

impl Module for WindowAttention {
    /// [B, H, W, C] in and out.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, h, w, c) = xs.size4().expect("Swin's feature maps are [N, H, W, C]");
        let ws = self.window;
        let (pad_b, pad_r) = ((ws - h % ws) % ws, (ws - w % ws) % ws);
        let padded = pad_b > 0 || pad_r > 0;
        let x = if padded { xs.constant_pad_nd([0, 0, 0, pad_r, 0, pad_b]) } else { xs.shallow_clone() };
        let (ph, pw) = (h + pad_b, w + pad_r);
        // A window as large as the map has nothing to shift.
        let shift = [if ws >= ph { 0 } else { self.shift }, if ws >= pw { 0 } else { self.shift }];
        let shifted = shift != [0, 0];
        let x = if shifted { x.roll([-shift[0], -shift[1]], [1, 2]) } else { x };
        let (nh, nw) = (ph / ws, pw / ws);
        let windows = x.reshape([b, nh, ws, nw, ws, c]).permute([0, 1, 3, 2, 4, 5]).reshape([b * nh * nw, ws * ws, c]);
        let mask = shifted.then(|| shift_mask(ph, pw, ws, shift).to_kind(xs.kind()).to_device(xs.device()));
        let y = self.scores.forward(&windows, mask.as_ref());
        let y = y.view([b, nh, nw, ws, ws, c]).permute([0, 1, 3, 2, 4, 5]).reshape([b, ph, pw, c]);
        let y = if shifted { y.roll([shift[0], shift[1]], [1, 2]) } else { y };
        if padded {
            y.slice(1, 0, h, 1).slice(2, 0, w, 1).contiguous()
        } else {
            y
        }
    }
}

/// The attention mask of shifted windows on a `ph`×`pw` (padded) map, [nW, N, N]: −100 between two positions
/// of a window that the roll brought from different regions, 0 elsewhere. The regions are torchvision's: along
/// each axis, [0, len − window), [len − window, len − shift) and [len − shift, len), labelled in that order;
/// an axis without a shift is one region (its Python slices `(-0, None)` cover it all).
fn shift_mask(ph: i64, pw: i64, ws: i64, shift: [i64; 2]) -> Tensor {
    let region = |i: i64, len: i64, s: i64| {
        if s == 0 {
            2
        } else if i < len - ws {
            0
        } else if i < len - s {
            1
        } else {
            2
        }
    };
    let (nh, nw, n) = (ph / ws, pw / ws, ws * ws);
    let mut mask = Vec::with_capacity((nh * nw * n * n) as usize);
    for wy in 0..nh {
        for wx in 0..nw {
            let labels: Vec<i64> = (0..n)
                .map(|t| 3 * region(wy * ws + t / ws, ph, shift[0]) + region(wx * ws + t % ws, pw, shift[1]))
                .collect();
            for &a in &labels {
                mask.extend(labels.iter().map(|&b| if a == b { 0f32 } else { -100.0 }));
            }
        }
    }
    Tensor::from_slice(&mask).view([nh * nw, n, n])
}

/// V2's continuous position bias, 16·sigmoid of `cpb_mlp` (Linear, ReLU, Linear without bias) over the
/// checkpoint's `relative_coords_table`, gathered by its `relative_position_index`: [heads, N, N]. It depends
/// on the weights alone, so it is computed once, here.
fn continuous_position_bias(p: &P, window: i64, heads: i64) -> Result<Tensor, BuildError> {
    let (side, n) = (2 * window - 1, window * window);
    let coords = p.take("relative_coords_table", &[1, side, side, 2])?;
    let index = p.take_index("relative_position_index", &[n * n], side * side)?;
    let mlp = p.sub("cpb_mlp");
    let (w1, b1) = (mlp.sub(0).take("weight", &[512, 2])?, mlp.sub(0).take("bias", &[512])?);
    let w2 = mlp.sub(2).take("weight", &[heads, 512])?;
    let table = coords.linear(&w1, Some(&b1)).relu().linear::<Tensor>(&w2, None).view([-1, heads]);
    let bias = table.index_select(0, &index).view([n, n, heads]).permute([2, 0, 1]).contiguous();
    Ok(p.compute(&(bias.sigmoid() * 16.0)))
}

/// torchvision's `SwinTransformerBlock` (V1) and `SwinTransformerBlockV2`.
#[derive(Debug)]
struct Block {
    norm1: LayerNorm,
    attn: WindowAttention,
    norm2: LayerNorm,
    mlp: Mlp,
    v2: bool,
}

impl Block {
    fn load(p: &P, dim: i64, heads: i64, window: i64, shift: i64, v2: bool) -> Result<Self, BuildError> {
        let norm1 = LayerNorm::load(&p.sub("norm1"), dim, EPS)?;
        let attn = WindowAttention::load(&p.sub("attn"), dim, heads, window, shift, v2)?;
        let norm2 = LayerNorm::load(&p.sub("norm2"), dim, EPS)?;
        let mlp = p.sub("mlp");
        let mlp = Mlp::load(&mlp.sub(0), &mlp.sub(3), dim, 4 * dim)?;
        Ok(Block { norm1, attn, norm2, mlp, v2 })
    }

    /// The output of `norm1` (Grad-CAM's target): of the input in V1, of the attention's output in V2.
    fn norm1_output(&self, xs: &Tensor) -> Tensor {
        if self.v2 {
            self.norm1.forward(&self.attn.forward(xs))
        } else {
            self.norm1.forward(xs)
        }
    }

    /// The rest of the block, from its input `xs` and `norm1`'s output (neither modified).
    fn after_norm1(&self, xs: &Tensor, normed: &Tensor) -> Tensor {
        if self.v2 {
            let x = xs + normed;
            &x + self.norm2.forward(&self.mlp.forward(&x))
        } else {
            let x = xs + self.attn.forward(normed);
            &x + self.mlp.forward(&self.norm2.forward(&x))
        }
    }
}

impl Module for Block {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.after_norm1(xs, &self.norm1_output(xs))
    }
}

/// torchvision's `PatchMerging` (V1: concatenate, normalise, reduce) and `PatchMergingV2` (reduce, then
/// normalise): [N, H, W, C] to [N, ⌈H/2⌉, ⌈W/2⌉, 2C].
#[derive(Debug)]
struct PatchMerging {
    norm: LayerNorm,
    reduction: Linear,
    v2: bool,
}

impl PatchMerging {
    fn load(p: &P, dim: i64, v2: bool) -> Result<Self, BuildError> {
        let reduction = Linear::load_no_bias(&p.sub("reduction"), 4 * dim, Some(2 * dim))?;
        let norm = LayerNorm::load(&p.sub("norm"), if v2 { 2 * dim } else { 4 * dim }, EPS)?;
        Ok(PatchMerging { norm, reduction, v2 })
    }
}

impl Module for PatchMerging {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (_, h, w, _) = xs.size4().expect("Swin's feature maps are [N, H, W, C]");
        let x =
            if h % 2 == 1 || w % 2 == 1 { xs.constant_pad_nd([0, 0, 0, w % 2, 0, h % 2]) } else { xs.shallow_clone() };
        let at = |dy: i64, dx: i64| x.slice(1, dy, None, 2).slice(2, dx, None, 2);
        // torchvision's order: (0, 0), (1, 0), (0, 1), (1, 1) as (row, column).
        let x = Tensor::cat(&[at(0, 0), at(1, 0), at(0, 1), at(1, 1)], -1);
        if self.v2 {
            self.norm.forward(&self.reduction.forward(&x))
        } else {
            self.reduction.forward(&self.norm.forward(&x))
        }
    }
}

#[derive(Debug)]
enum Layer {
    Block(Block),
    Merge(PatchMerging),
}

impl Module for Layer {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            Layer::Block(b) => b.forward(xs),
            Layer::Merge(m) => m.forward(xs),
        }
    }
}

#[derive(Debug)]
pub struct SwinTransformer {
    embed: Conv2d,
    embed_norm: LayerNorm,
    /// Every block and patch merging but the last block.
    layers: Vec<Layer>,
    /// The last block, which holds Grad-CAM's target layer.
    last: Block,
    norm: LayerNorm,
    head: Linear,
}

impl SwinTransformer {
    /// The target layer's part of what [`Split::features`] returns (or of its gradient).
    fn target(&self, features: &Tensor) -> Tensor {
        if self.last.v2 {
            features.shallow_clone()
        } else {
            features.get(1)
        }
    }

    /// From the input to the last block's input, [N, H, W, C].
    fn trunk(&self, xs: &Tensor) -> Tensor {
        // The patch embedding's output is channels-last: as [N, H, W, C] it is contiguous.
        let x = self.embed_norm.forward(&self.embed.forward(xs).permute([0, 2, 3, 1]));
        self.layers.iter().fold(x, |x, l| l.forward(&x))
    }

    /// From the last block's output to the logits.
    fn tail(&self, xs: &Tensor) -> Tensor {
        let x = self.norm.forward(xs).permute([0, 3, 1, 2]);
        self.head.forward(&x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

/// The target layer's output alone does not determine the logits (the block's residual connection needs its
/// input too): [`Split::features`] returns both, stacked, [2, N, H, W, C], the block input first.
/// V1's target is inside the last block, whose residual needs the block's input too: the features carry both,
/// stacked ([2, N, H, W, C]), the target second. V2's is the last block's input, [N, H, W, C].
impl Split for SwinTransformer {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = self.trunk(xs);
        if self.last.v2 {
            return x;
        }
        let normed = self.last.norm1_output(&x);
        Tensor::stack(&[x, normed], 0)
    }

    fn head(&self, features: &Tensor) -> Tensor {
        if self.last.v2 {
            return self.tail(&self.last.forward(features));
        }
        self.tail(&self.last.after_norm1(&features.get(0), &features.get(1)))
    }

    fn observed(&self, features: &Tensor) -> Tensor {
        self.target(features).permute([0, 3, 1, 2])
    }

    fn gradient(&self, grad: &Tensor) -> Tensor {
        self.target(grad).permute([0, 3, 1, 2])
    }
}

impl Module for SwinTransformer {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.tail(&self.last.forward(&self.trunk(xs)))
    }
}

impl Network for SwinTransformer {
    fn classes(&self) -> i64 {
        self.head.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}

pub fn build(p: &P, cfg: &Config) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let embed = Conv2d::load(&f.sub(0).sub(0), 3, cfg.embed, [4, 4], ConvCfg::default().stride(4))?;
    let embed_norm = LayerNorm::load(&f.sub(0).sub(2), cfg.embed, EPS)?;
    let mut layers = Vec::new();
    let mut dim = cfg.embed;
    for (stage, (&depth, &heads)) in cfg.depths.iter().zip(&cfg.heads).enumerate() {
        let s = f.sub(2 * stage + 1);
        for i in 0..depth {
            let shift = if i % 2 == 0 { 0 } else { cfg.window / 2 };
            layers.push(Layer::Block(Block::load(&s.sub(i), dim, heads, cfg.window, shift, cfg.v2)?));
        }
        if stage + 1 < cfg.depths.len() {
            layers.push(Layer::Merge(PatchMerging::load(&f.sub(2 * stage + 2), dim, cfg.v2)?));
            dim *= 2;
        }
    }
    let Some(Layer::Block(last)) = layers.pop() else { unreachable!("the last stage ends in a block") };
    let norm = LayerNorm::load(&p.sub("norm"), dim, EPS)?;
    let head = Linear::load(&p.sub("head"), dim, None)?;
    Ok(Box::new(SwinTransformer { embed, embed_norm, layers, last, norm, head }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::{channels_last, Params};
    use tch::{Device, Kind};

    /// Deterministic noise in (−1, 1) of `shape`: the tests run in parallel, and drawing from libtorch's one
    /// global generator here would change what the others draw after seeding it.
    fn noise(shape: &[i64], seed: f64) -> Tensor {
        let n = shape.iter().product::<i64>();
        let x = (Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.618_033_988_75 + seed).sin() * 43_758.545_3;
        x.frac().to_kind(Kind::Float).view(shape)
    }

    /// `cfg` with noise for weights (index buffers in range).
    fn noisy(cfg: &Config) -> Box<dyn Network> {
        let dry = Params::made_up(Device::Cpu);
        build(&dry.root(), cfg).unwrap();
        let tensors = dry
            .made_up_tensors()
            .into_iter()
            .enumerate()
            .map(|(i, (name, shape))| {
                let t = noise(&shape, i as f64);
                let t = if name.ends_with("relative_position_index") {
                    (t.abs() * 168.0).to_kind(Kind::Int64)
                } else {
                    t * 0.3
                };
                (name, t)
            })
            .collect();
        let params = Params::new(tensors, Device::Cpu, Kind::Float);
        let net = build(&params.root(), cfg).unwrap();
        params.finish(&[]).unwrap();
        net
    }

    /// Grad-CAM's split computes the same logits, on a side (72) that is no multiple of the window and leaves
    /// odd maps to merge and windows to shift, pad and not shift; `observed` is [N, C, H, W].
    #[test]
    fn head_of_features_is_forward() {
        let _no_grad = tch::no_grad_guard();
        for cfg in [&SWIN_T, &SWIN_V2_T] {
            let net = noisy(cfg);
            let x = channels_last(&noise(&[2, 3, 72, 72], 0.5));
            let split = net.split().unwrap();
            let features = split.features(&x);
            let carried = if cfg.v2 { vec![2, 3, 3, 8 * cfg.embed] } else { vec![2, 2, 3, 3, 8 * cfg.embed] };
            assert_eq!(features.size(), carried);
            assert_eq!(split.observed(&features).size(), [2, 8 * cfg.embed, 3, 3]);
            let expected = net.forward(&x);
            let diff = f64::try_from((split.head(&features) - &expected).abs().max()).unwrap();
            assert!(diff < 1e-4, "v2 {}: head(features(x)) differs from forward(x) by {diff}", cfg.v2);
            assert!(f64::try_from(expected.std(false)).unwrap() > 1e-3, "logits depend on the weights");
        }
    }

    /// The mask torchvision builds for a 14×14 map, 7×7 windows shifted by 3: the top-left window unmasked,
    /// the others split into 2 or 4 regions.
    #[test]
    fn shift_mask_separates_the_rolled_regions() {
        let mask = shift_mask(14, 14, 7, [3, 3]);
        assert_eq!(mask.size(), [4, 49, 49]);
        let zeros = |w: i64| i64::try_from(mask.get(w).eq(0.0).sum(Kind::Int64)).unwrap();
        // Regions of 4×4 and 3×3 positions (and 4×3), whose pairs are unmasked: 49², 28² + 21², 16² + 12²·2 + 9².
        assert_eq!([zeros(0), zeros(1), zeros(2), zeros(3)], [2401, 1225, 1225, 625]);
    }
}
