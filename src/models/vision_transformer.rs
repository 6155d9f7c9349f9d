//! The Vision Transformer (Dosovitskiy et al., 2020, "An Image is Worth 16x16 Words"), as torchvision builds
//! it: the image cut into patch×patch squares, each projected to a token (one strided convolution), a learnt
//! class token put first, learnt position embeddings added, then pre-norm encoder blocks (LayerNorm,
//! multi-head self-attention, residual; LayerNorm, GELU perceptron, residual), a final LayerNorm, and the
//! classifier on the class token. The position embedding is made for one grid of patches, so a network takes
//! one image size only: its weights' (224, or 384, 512 and 518 for the SWAG end-to-end weights).
use super::attention::{LayerNorm, Mlp, SelfAttention};
use super::layers::{Conv2d, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, CamReshape, Eval, InputSizes, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// torchvision's `partial(nn.LayerNorm, eps=1e-6)`.
const EPS: f64 = 1e-6;

/// Grad-CAM's target layer: the first LayerNorm of the last encoder block, as pytorch-grad-cam's README
/// suggests for ViT (the final LayerNorm's output feeds the classifier through the class token alone, so the
/// patch tokens' gradients there are 0).
pub const CAM_LAYER: &str = "encoder.layers[-1].ln_1";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec {
    family: "Vision Transformer",
    cam_layer: CAM_LAYER,
    cam_reshape: CamReshape::Tokens,
    ..ModelSpec::BLANK
};

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "vit_b_16",
        arch: "ViT-B/16",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/vit_b_16-c867db91.pth"),
                accuracy: Accuracy { top1: 81.072, top5: Some(95.318) },
                eval: Eval::bilinear(256, 224),
                file_mb: 330.285,
                gmacs: Some(17.564),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_E2E_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/vit_b_16_swag-9ac1b537.pth"),
                accuracy: Accuracy { top1: 85.304, top5: Some(97.65) },
                eval: Eval::bicubic(384, 384),
                file_mb: 331.398,
                gmacs: Some(55.484),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_LINEAR_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/vit_b_16_lc_swag-4e70ced5.pth"),
                accuracy: Accuracy { top1: 81.886, top5: Some(96.18) },
                eval: Eval::bicubic(224, 224),
                file_mb: 330.285,
                gmacs: Some(17.564),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, w| build(&p.root(), &B_16, w.eval.crop),
        ..FAMILY
    },
    ModelSpec {
        name: "vit_b_32",
        arch: "ViT-B/32",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vit_b_32-d86f8d99.pth"),
            accuracy: Accuracy { top1: 75.912, top5: Some(92.466) },
            eval: Eval::bilinear(256, 224),
            file_mb: 336.604,
            gmacs: Some(4.409),
            ..Weights::TORCHVISION
        }],
        build: |p, w| build(&p.root(), &B_32, w.eval.crop),
        ..FAMILY
    },
    ModelSpec {
        name: "vit_l_16",
        arch: "ViT-L/16",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/vit_l_16-852ce7e3.pth"),
                accuracy: Accuracy { top1: 79.662, top5: Some(94.638) },
                eval: Eval::bilinear(242, 224),
                file_mb: 1161.023,
                gmacs: Some(61.555),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_E2E_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/vit_l_16_swag-4f3808c9.pth"),
                accuracy: Accuracy { top1: 88.064, top5: Some(98.512) },
                eval: Eval::bicubic(512, 512),
                file_mb: 1164.258,
                gmacs: Some(361.986),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_LINEAR_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/vit_l_16_lc_swag-4d563306.pth"),
                accuracy: Accuracy { top1: 85.146, top5: Some(97.422) },
                eval: Eval::bicubic(224, 224),
                file_mb: 1161.023,
                gmacs: Some(61.555),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, w| build(&p.root(), &L_16, w.eval.crop),
        ..FAMILY
    },
    ModelSpec {
        name: "vit_l_32",
        arch: "ViT-L/32",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/vit_l_32-c7638314.pth"),
            accuracy: Accuracy { top1: 76.972, top5: Some(93.07) },
            eval: Eval::bilinear(256, 224),
            file_mb: 1169.449,
            gmacs: Some(15.378),
            ..Weights::TORCHVISION
        }],
        build: |p, w| build(&p.root(), &L_32, w.eval.crop),
        ..FAMILY
    },
    ModelSpec {
        name: "vit_h_14",
        arch: "ViT-H/14",
        weights: &[
            Weights {
                tag: "IMAGENET1K_SWAG_E2E_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/vit_h_14_swag-80465313.pth"),
                accuracy: Accuracy { top1: 88.552, top5: Some(98.694) },
                eval: Eval::bicubic(518, 518),
                file_mb: 2416.643,
                gmacs: Some(1016.717),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_LINEAR_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/vit_h_14_lc_swag-c1eb923e.pth"),
                accuracy: Accuracy { top1: 85.708, top5: Some(97.73) },
                eval: Eval::bicubic(224, 224),
                file_mb: 2411.209,
                gmacs: Some(167.295),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, w| build(&p.root(), &H_14, w.eval.crop),
        ..FAMILY
    },
];

/// One architecture: torchvision's `_vision_transformer` arguments.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Side of the square patches, and of the projection's kernel and stride.
    pub patch: i64,
    pub layers: i64,
    pub heads: i64,
    /// The tokens' width.
    pub hidden: i64,
    /// The perceptron's hidden width.
    pub mlp: i64,
}

pub const B_16: Config = Config { patch: 16, layers: 12, heads: 12, hidden: 768, mlp: 3072 };
pub const B_32: Config = Config { patch: 32, layers: 12, heads: 12, hidden: 768, mlp: 3072 };
pub const L_16: Config = Config { patch: 16, layers: 24, heads: 16, hidden: 1024, mlp: 4096 };
pub const L_32: Config = Config { patch: 32, layers: 24, heads: 16, hidden: 1024, mlp: 4096 };
pub const H_14: Config = Config { patch: 14, layers: 32, heads: 16, hidden: 1280, mlp: 5120 };

/// torchvision's `EncoderBlock`: `x + attention(ln_1(x))`, then `y + mlp(ln_2(y))` (dropout is the identity at
/// inference).
#[derive(Debug)]
struct EncoderBlock {
    ln_1: LayerNorm,
    self_attention: SelfAttention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl EncoderBlock {
    /// `nn.MultiheadAttention` packs the query, key and value projections as `in_proj_weight` [3C, C] (queries,
    /// keys, values, each head by head), which is [`SelfAttention`]'s layout.
    fn load(p: &P, cfg: &Config) -> Result<Self, BuildError> {
        let c = cfg.hidden;
        let a = p.sub("self_attention");
        let qkv = Linear::load_named(&a, ("in_proj_weight", Some("in_proj_bias")), c, Some(3 * c))?;
        let proj = Linear::load(&a.sub("out_proj"), c, Some(c))?;
        Ok(EncoderBlock {
            ln_1: LayerNorm::load(&p.sub("ln_1"), c, EPS)?,
            self_attention: SelfAttention::new(qkv, proj, cfg.heads),
            ln_2: LayerNorm::load(&p.sub("ln_2"), c, EPS)?,
            mlp: Mlp::load(&p.sub("mlp").sub(0), &p.sub("mlp").sub(3), c, cfg.mlp)?,
        })
    }

    /// The block's output from its input `xs` and `normed`, which is `ln_1(xs)`. Neither is modified.
    fn finish(&self, xs: &Tensor, normed: &Tensor) -> Tensor {
        let mut x = self.self_attention.forward(normed);
        x += xs;
        let mut y = self.mlp.forward(&self.ln_2.forward(&x));
        y += &x;
        y
    }
}

impl Module for EncoderBlock {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.finish(xs, &self.ln_1.forward(xs))
    }
}

#[derive(Debug)]
pub struct VisionTransformer {
    /// The patch embedding: a patch×patch convolution with stride patch.
    conv_proj: Conv2d,
    /// [1, 1, C].
    class_token: Tensor,
    /// [1, 1 + (image_size / patch)², C].
    pos_embedding: Tensor,
    layers: Vec<EncoderBlock>,
    /// The encoder's final LayerNorm.
    ln: LayerNorm,
    head: Linear,
    image_size: i64,
}

pub fn build(p: &P, cfg: &Config, image_size: i64) -> Result<Box<dyn Network>, BuildError> {
    if image_size % cfg.patch != 0 {
        return Err(BuildError(format!(
            "an image size of {image_size} is not a whole number of patches of {}",
            cfg.patch
        )));
    }
    let (c, grid) = (cfg.hidden, image_size / cfg.patch);
    let k = cfg.patch;
    let conv_proj = Conv2d::load(&p.sub("conv_proj"), 3, c, [k, k], ConvCfg::default().stride(k))?;
    let class_token = p.compute(&p.take("class_token", &[1, 1, c])?);
    let e = p.sub("encoder");
    let pos_embedding = e.compute(&e.take("pos_embedding", &[1, 1 + grid * grid, c])?);
    let l = e.sub("layers");
    let layers = (0..cfg.layers)
        .map(|i| EncoderBlock::load(&l.sub(format!("encoder_layer_{i}")), cfg))
        .collect::<Result<_, _>>()?;
    let ln = LayerNorm::load(&e.sub("ln"), c, EPS)?;
    let head = Linear::load(&p.sub("heads").sub("head"), c, None)?;
    Ok(Box::new(VisionTransformer { conv_proj, class_token, pos_embedding, layers, ln, head, image_size }))
}

impl VisionTransformer {
    /// The encoder's input: the patches' tokens after the class token, position embeddings added.
    fn embed(&self, xs: &Tensor) -> Tensor {
        let n = xs.size()[0];
        // [N, C, h, w] to [N, h·w, C]: on a channels-last tensor, a view of the same memory.
        let patches = self.conv_proj.forward(xs).flatten(2, 3).transpose(1, 2);
        let x = Tensor::cat(&[&self.class_token.expand([n, -1, -1], false), &patches], 1);
        x + &self.pos_embedding
    }

    /// The logits from the encoder blocks' output: the final LayerNorm, the class token, the classifier.
    fn classify(&self, xs: &Tensor) -> Tensor {
        self.head.forward(&self.ln.forward(xs).select(1, 0))
    }

    fn last(&self) -> &EncoderBlock {
        self.layers.last().expect("an encoder has layers")
    }
}

/// pytorch-grad-cam's README's `reshape_transform` for ViT: [N, 1 + h·w, C] tokens without the class token,
/// laid out on their square grid, channels first: [N, C, h, w].
fn tokens_to_grid(tokens: &Tensor) -> Tensor {
    let (n, t, c) = tokens.size3().expect("tokens are [batch, tokens, channels]");
    let side = ((t - 1) as f64).sqrt().round() as i64;
    debug_assert_eq!(side * side, t - 1, "the patch tokens make a square grid");
    tokens.narrow(1, 1, t - 1).reshape([n, side, side, c]).permute([0, 3, 1, 2])
}

/// The target layer, `ln_1` of the last block, is inside that block, whose residual needs the block's input
/// too: the features are both, stacked as [2, N, T, C], the input first.
impl Split for VisionTransformer {
    fn features(&self, xs: &Tensor) -> Tensor {
        let (_, first) = self.layers.split_last().expect("an encoder has layers");
        let x = first.iter().fold(self.embed(xs), |x, block| block.forward(&x));
        Tensor::stack(&[&x, &self.last().ln_1.forward(&x)], 0)
    }

    fn head(&self, features: &Tensor) -> Tensor {
        self.classify(&self.last().finish(&features.get(0), &features.get(1)))
    }

    fn observed(&self, features: &Tensor) -> Tensor {
        tokens_to_grid(&features.get(1))
    }

    fn gradient(&self, grad: &Tensor) -> Tensor {
        tokens_to_grid(&grad.get(1))
    }
}

impl Module for VisionTransformer {
    /// `head(features(xs))` without stacking the last block's input and its normalisation.
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.classify(&self.layers.iter().fold(self.embed(xs), |x, block| block.forward(&x)))
    }
}

impl Network for VisionTransformer {
    fn classes(&self) -> i64 {
        self.head.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }

    fn input_sizes(&self) -> InputSizes {
        InputSizes::Exactly(self.image_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::Params;
    use tch::{Device, Kind};

    /// A small ViT: 32×32 images in 4×4 patches of 8 channels, 2 blocks of 2 heads.
    const TINY: Config = Config { patch: 8, layers: 2, heads: 2, hidden: 8, mlp: 16 };

    /// Values in [-1, 1] that vary along every dimension, made without libtorch's random generator, which the
    /// tests running at the same time share.
    fn pseudo_random(shape: &[i64], phase: f64) -> Tensor {
        let n = shape.iter().product::<i64>();
        (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.754_877_7 + phase).sin().view(shape)
    }

    fn tiny() -> (Box<dyn Network>, Params) {
        let dry = Params::made_up(Device::Cpu);
        build(&dry.root(), &TINY, 32).unwrap();
        let tensors = dry
            .made_up_tensors()
            .into_iter()
            .enumerate()
            .map(|(i, (k, shape))| (k, pseudo_random(&shape, i as f64) * 0.5))
            .collect();
        let params = Params::new(tensors, Device::Cpu, Kind::Float);
        let net = build(&params.root(), &TINY, 32).unwrap();
        (net, params)
    }

    #[test]
    fn head_of_features_is_forward() {
        let _no_grad = tch::no_grad_guard();
        let (net, params) = tiny();
        params.finish(&[]).unwrap();
        assert_eq!(net.input_sizes(), InputSizes::Exactly(32));
        let x = pseudo_random(&[3, 3, 32, 32], 0.5);
        let split = net.split().unwrap();
        let features = split.features(&x);
        assert_eq!(features.size(), [2, 3, 17, 8], "the last block's input and its ln_1, 1 + 4·4 tokens");
        let expected = net.forward(&x);
        assert_eq!(expected.size(), [3, 1000]);
        let diff = f64::try_from((split.head(&features) - &expected).abs().max()).unwrap();
        assert!(diff < 1e-5, "head(features(x)) differs from forward(x) by {diff}");
        // Grad-CAM's view of the features: the ln_1 tokens on their 4×4 grid, the class token dropped.
        let observed = split.observed(&features);
        assert_eq!(observed.size(), [3, 8, 4, 4]);
        let token = features.get(1).get(0).get(1 + 4 + 2);
        let diff = f64::try_from((observed.get(0).select(1, 1).select(1, 2) - token).abs().max()).unwrap();
        assert_eq!(diff, 0.0, "the token of row 1, column 2");
    }

    #[test]
    fn the_features_have_a_gradient() {
        let (net, _params) = tiny();
        let split = net.split().unwrap();
        let x = pseudo_random(&[1, 3, 32, 32], 0.5);
        let features = tch::no_grad(|| split.features(&x)).detach().set_requires_grad(true);
        split.head(&features).select(1, 7).sum(Kind::Float).backward();
        let grad = split.gradient(&features.grad());
        assert_eq!(grad.size(), [1, 8, 4, 4]);
        assert!(f64::try_from(grad.abs().max()).unwrap() > 0.0);
    }
}
