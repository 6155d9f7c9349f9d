//! The building blocks of the transformer families (ViT, Swin, MaxViT) and ConvNeXt's normalisation, made
//! straight from loaded tensors like [`super::layers`]: LayerNorm (over the last dimension, or over the channels
//! of an image-shaped tensor), the two-layer GELU perceptron, multi-head self-attention with packed query, key
//! and value projections and an optional additive bias, and the relative position bias of windowed attention.
//!
//! Stochastic depth, which these families use in training, is the identity at inference and has no layer here.
use super::layers::{Linear, P};
use super::BuildError;
use tch::{nn::Module, Tensor};

/// LayerNorm over the last dimension, with its affine terms.
#[derive(Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn load(p: &P, dim: i64, eps: f64) -> Result<Self, BuildError> {
        Ok(LayerNorm { weight: p.compute(&p.take("weight", &[dim])?), bias: p.compute(&p.take("bias", &[dim])?), eps })
    }

    /// The normalisation over the channels of an [N, C, H, W] tensor, as ConvNeXt's `LayerNorm2d` does: over
    /// the last dimension of its [N, H, W, C] view, which on a channels-last tensor is a view of the same memory.
    pub fn forward_channels(&self, xs: &Tensor) -> Tensor {
        self.forward(&xs.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let dim = self.weight.size()[0];
        xs.layer_norm([dim], Some(&self.weight), Some(&self.bias), self.eps, false)
    }
}

/// Two fully connected layers with GELU between them (the transformers' feed-forward block; dropout is the
/// identity at inference).
#[derive(Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    /// `fc1` and `fc2` are the two layers' places (torchvision numbers them as the modules of a Sequential).
    pub fn load(fc1: &P, fc2: &P, dim: i64, hidden: i64) -> Result<Self, BuildError> {
        Ok(Mlp { fc1: Linear::load(fc1, dim, Some(hidden))?, fc2: Linear::load(fc2, hidden, Some(dim))? })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(xs).gelu("none"))
    }
}

/// Multi-head self-attention over [B, T, C] tokens: one projection to queries, keys and values ([3C, C], in
/// that order, head by head within each), softmax(q·kᵀ/√d + bias)·v per head, and an output projection.
#[derive(Debug)]
pub struct SelfAttention {
    qkv: Linear,
    proj: Linear,
    heads: i64,
}

impl SelfAttention {
    pub fn new(qkv: Linear, proj: Linear, heads: i64) -> Self {
        SelfAttention { qkv, proj, heads }
    }

    /// The queries, keys and values of `xs` ([B, T, C]), each [B, heads, T, C / heads].
    pub fn qkv(&self, xs: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (b, t, c) = xs.size3().expect("tokens are [batch, tokens, channels]");
        let qkv = self.qkv.forward(xs).view([b, t, 3, self.heads, c / self.heads]).permute([2, 0, 3, 1, 4]);
        (qkv.get(0), qkv.get(1), qkv.get(2))
    }

    /// The heads' outputs ([B, heads, T, d]) merged and projected back to [B, T, C].
    pub fn merge(&self, ys: &Tensor) -> Tensor {
        let (b, h, t, d) = ys.size4().expect("heads are [batch, heads, tokens, channels]");
        self.proj.forward(&ys.transpose(1, 2).reshape([b, t, h * d]))
    }

    /// Attention with `bias` ([heads, T, T] or broadcastable to [B, heads, T, T]) added to the scaled scores.
    pub fn forward_with(&self, xs: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let (q, k, v) = self.qkv(xs);
        let bias = bias.map(|b| b.to_kind(q.kind()));
        self.merge(&Tensor::scaled_dot_product_attention(&q, &k, &v, bias.as_ref(), 0.0, false, None, false))
    }
}

impl Module for SelfAttention {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.forward_with(xs, None)
    }
}

/// The relative position bias of attention within `window`×`window` windows (Swin, MaxViT): a learnt table of
/// one value per head for each of the (2·window − 1)² offsets between two positions, gathered into a
/// [heads, window², window²] bias by the checkpoint's own index of each pair's offset (`relative_position_index`,
/// of `index_shape`: the families store it flat or square).
pub fn relative_position_bias(p: &P, window: i64, heads: i64, index_shape: &[i64]) -> Result<Tensor, BuildError> {
    let offsets = (2 * window - 1) * (2 * window - 1);
    let table = p.take("relative_position_bias_table", &[offsets, heads])?;
    let n = window * window;
    let index = p.take_index("relative_position_index", index_shape, offsets)?;
    if index.numel() as i64 != n * n {
        return Err(BuildError(format!("`{}.relative_position_index` must have {} entries", p.name(), n * n)));
    }
    let bias = table.index_select(0, &index.view([-1])).view([n, n, heads]).permute([2, 0, 1]).contiguous();
    Ok(p.compute(&bias))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_data;
    use tch::{Device, Kind};

    #[test]
    fn attention_equals_its_definition() {
        let _no_grad = tch::no_grad_guard();
        let (b, t, c, heads) = (2, 7, 12, 3);
        let lin = |i, o| {
            let params = super::super::layers::Params::new(
                [("weight", test_data::randn(&[o, i], 201)), ("bias", test_data::randn(&[o], 202))]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                Device::Cpu,
                Kind::Float,
            );
            let l = Linear::load(&params.root(), i, Some(o)).unwrap();
            (l, params)
        };
        let ((qkv, _a), (proj, _b)) = (lin(c, 3 * c), lin(c, c));
        let attention = SelfAttention::new(qkv, proj, heads);
        let x = test_data::randn(&[b, t, c], 203);
        let bias = test_data::randn(&[heads, t, t], 204);
        let got = attention.forward_with(&x, Some(&bias));

        let (q, k, v) = attention.qkv(&x);
        let d = (c / heads) as f64;
        let scores = q.matmul(&k.transpose(-2, -1)) / d.sqrt() + &bias;
        let expected = attention.merge(&scores.softmax(-1, Kind::Float).matmul(&v));
        let diff = f64::try_from((got - &expected).abs().max()).unwrap();
        let scale = f64::try_from(expected.abs().max()).unwrap();
        assert!(
            diff < 1e-6 * scale.max(1.0),
            "attention differs from softmax(q·kᵀ/√d + bias)·v by {diff} (of {scale})"
        );
    }
}
