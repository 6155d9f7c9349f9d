//! MNASNet (Tan et al., 2018, "MnasNet: Platform-Aware Neural Architecture Search for Mobile"), the B1
//! variant, as torchvision builds it (version 2, whose stem scales with the width multiplier too): a stem
//! convolution, a depthwise separable convolution, then stacks of inverted residual blocks without
//! squeeze-and-excitation, and a 1×1 convolution to 1280 channels.
use super::layers::{make_divisible, Act, ConvBn, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Kind, Tensor};

/// BatchNorm's epsilon: PyTorch's default (torchvision sets only the momentum, which inference does not use).
const EPS: f64 = 1e-5;

/// Grad-CAM's target layer: the last layer of `layers`, the ReLU after the final 1×1 convolution.
pub const CAM_LAYER: &str = "layers[-1]";

/// What the family's entries share.
/// Its layers all have int8 forms: ReLU fused into the convolutions, residual sums.
const FAMILY: ModelSpec = ModelSpec { family: "MNASNet", cam_layer: CAM_LAYER, int8: true, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "mnasnet0_5",
        arch: "MNASNet ×0.5",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/mnasnet0.5_top1_67.823-3ffadce67e.pth"),
            accuracy: Accuracy { top1: 67.734, top5: Some(87.49) },
            eval: Eval::bilinear(256, 224),
            file_mb: 8.591,
            gmacs: Some(0.104),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), 0.5),
        ..FAMILY
    },
    ModelSpec {
        name: "mnasnet0_75",
        arch: "MNASNet ×0.75",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/mnasnet0_75-7090bc5f.pth"),
            accuracy: Accuracy { top1: 71.18, top5: Some(90.496) },
            eval: Eval::bilinear(232, 224),
            file_mb: 12.303,
            gmacs: Some(0.215),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), 0.75),
        ..FAMILY
    },
    ModelSpec {
        name: "mnasnet1_0",
        arch: "MNASNet ×1.0",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/mnasnet1.0_top1_73.512-f206786ef8.pth"),
            accuracy: Accuracy { top1: 73.456, top5: Some(91.51) },
            eval: Eval::bilinear(256, 224),
            file_mb: 16.915,
            gmacs: Some(0.314),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), 1.0),
        ..FAMILY
    },
    ModelSpec {
        name: "mnasnet1_3",
        arch: "MNASNet ×1.3",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/mnasnet1_3-a4c69d6f.pth"),
            accuracy: Accuracy { top1: 76.506, top5: Some(93.522) },
            eval: Eval::bilinear(232, 224),
            file_mb: 24.246,
            gmacs: Some(0.526),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), 1.3),
        ..FAMILY
    },
];

/// torchvision's `_get_depths`: the channels at width 1.0, scaled by `alpha` and rounded as
/// `_round_to_multiple_of(d * alpha, 8)` does (to the nearest multiple of 8, but never more than 10% below),
/// which is [`make_divisible`].
fn depths(alpha: f64) -> [i64; 8] {
    [32, 16, 24, 40, 80, 96, 192, 320].map(|d| make_divisible(d as f64 * alpha, 8))
}

/// One `_stack`: (kernel, stride of its first block, expansion factor, blocks), its input and output channels
/// being consecutive depths.
const STACKS: [(i64, i64, i64, usize); 6] =
    [(3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1)];

/// The convolution at `p.{conv}` with the BatchNorm at `p.{conv + 1}` folded in.
fn conv_bn(p: &P, conv: usize, cin: i64, cout: i64, k: i64, cfg: ConvCfg) -> Result<ConvBn, BuildError> {
    ConvBn::load(p, (&conv.to_string(), &(conv + 1).to_string()), cin, cout, [k, k], cfg, EPS)
}

/// torchvision's `_InvertedResidual`: 1×1 expansion + ReLU, depthwise k×k + ReLU, 1×1 projection, the input
/// added when the shape allows (fused into the projection).
#[derive(Debug)]
struct InvertedResidual {
    expand: ConvBn,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl InvertedResidual {
    fn load(p: &P, cin: i64, cout: i64, k: i64, stride: i64, expansion: i64) -> Result<Self, BuildError> {
        let (p, mid) = (p.sub("layers"), cin * expansion);
        let plain = ConvCfg::default();
        Ok(InvertedResidual {
            expand: conv_bn(&p, 0, cin, mid, 1, plain)?.with_act(Act::Relu),
            depthwise: conv_bn(&p, 3, mid, mid, k, plain.stride(stride).pad(k / 2).groups(mid))?.with_act(Act::Relu),
            project: conv_bn(&p, 6, mid, cout, 1, plain)?,
            residual: cin == cout && stride == 1,
        })
    }
}

impl Module for InvertedResidual {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let y = self.depthwise.forward(&self.expand.forward(xs));
        if self.residual {
            self.project.forward_add(&y, xs, false)
        } else {
            self.project.forward(&y)
        }
    }
}

#[derive(Debug)]
pub struct MnasNet {
    /// layers.0-2: 3×3 convolution with stride 2, ReLU; layers.3-5: depthwise 3×3, ReLU; layers.6-7: 1×1.
    stem: [ConvBn; 3],
    /// layers.8-13, one stack after the other.
    blocks: Vec<InvertedResidual>,
    /// layers.14-16: 1×1 to 1280 channels, ReLU.
    last: ConvBn,
    classifier: Linear,
}

pub fn build(p: &P, alpha: f64) -> Result<Box<dyn Network>, BuildError> {
    let d = depths(alpha);
    let l = p.sub("layers");
    let plain = ConvCfg::default();
    let stem = [
        conv_bn(&l, 0, 3, d[0], 3, plain.stride(2).pad(1))?.with_act(Act::Relu),
        conv_bn(&l, 3, d[0], d[0], 3, plain.pad(1).groups(d[0]))?.with_act(Act::Relu),
        conv_bn(&l, 6, d[0], d[1], 1, plain)?,
    ];
    let mut blocks = Vec::new();
    for (s, &(k, stride, expansion, repeats)) in STACKS.iter().enumerate() {
        let (cin, cout, stack) = (d[s + 1], d[s + 2], l.sub(8 + s));
        for i in 0..repeats {
            let (cin, stride) = if i == 0 { (cin, stride) } else { (cout, 1) };
            blocks.push(InvertedResidual::load(&stack.sub(i), cin, cout, k, stride, expansion)?);
        }
    }
    let last = conv_bn(&l, 14, d[7], 1280, 1, plain)?.with_act(Act::Relu);
    // classifier.0 is dropout.
    let classifier = Linear::load(&p.sub("classifier").sub(1), 1280, None)?;
    Ok(Box::new(MnasNet { stem, blocks, last, classifier }))
}

impl Split for MnasNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = self.stem.iter().fold(xs.shallow_clone(), |x, c| c.forward(&x));
        self.last.forward(&self.blocks.iter().fold(x, |x, b| b.forward(&x)))
    }

    fn head(&self, features: &Tensor) -> Tensor {
        // torchvision's global pool: x.mean([2, 3]), in float in int8. Dropout is the identity at inference.
        let features = super::quant::dequantized(features);
        self.classifier.forward(&features.mean_dim([2i64, 3].as_slice(), false, None::<Kind>))
    }
}

impl Module for MnasNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for MnasNet {
    fn classes(&self) -> i64 {
        self.classifier.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::depths;

    /// torchvision's `_get_depths` for each width it publishes weights for.
    #[test]
    fn depths_are_torchvisions() {
        assert_eq!(depths(0.5), [16, 8, 16, 24, 40, 48, 96, 160]);
        assert_eq!(depths(0.75), [24, 16, 24, 32, 64, 72, 144, 240]);
        assert_eq!(depths(1.0), [32, 16, 24, 40, 80, 96, 192, 320]);
        assert_eq!(depths(1.3), [40, 24, 32, 56, 104, 128, 248, 416]);
    }
}
