//! ShuffleNet V2 (Ma et al., 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
//! Design"), as torchvision builds it: units that split the channels in two, transform one half (1×1,
//! depthwise 3×3, 1×1) and concatenate it with the other (downsampling units transform both halves from the
//! whole input), then shuffle the channels of the two halves together.
use super::layers::{Act, ConvBn, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Kind, Tensor};

const EPS: f64 = 1e-5;

/// Grad-CAM's target layer: the last 1×1 convolution with its BatchNorm and ReLU.
pub const CAM_LAYER: &str = "conv5";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "ShuffleNet V2", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "shufflenet_v2_x0_5",
        arch: "ShuffleNet V2 ×0.5",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/shufflenetv2_x0.5-f707e7126e.pth"),
            accuracy: Accuracy { top1: 60.552, top5: Some(81.746) },
            eval: Eval::bilinear(256, 224),
            file_mb: 5.282,
            gmacs: Some(0.04),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), [24, 48, 96, 192, 1024]),
        ..FAMILY
    },
    ModelSpec {
        name: "shufflenet_v2_x1_0",
        arch: "ShuffleNet V2 ×1.0",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/shufflenetv2_x1-5666bf0f80.pth"),
            accuracy: Accuracy { top1: 69.362, top5: Some(88.316) },
            eval: Eval::bilinear(256, 224),
            file_mb: 8.791,
            gmacs: Some(0.145),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), [24, 116, 232, 464, 1024]),
        ..FAMILY
    },
    ModelSpec {
        name: "shufflenet_v2_x1_5",
        arch: "ShuffleNet V2 ×1.5",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/shufflenetv2_x1_5-3c479a10.pth"),
            accuracy: Accuracy { top1: 72.996, top5: Some(91.086) },
            eval: Eval::bilinear(232, 224),
            file_mb: 13.557,
            gmacs: Some(0.296),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), [24, 176, 352, 704, 1024]),
        ..FAMILY
    },
    ModelSpec {
        name: "shufflenet_v2_x2_0",
        arch: "ShuffleNet V2 ×2.0",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/shufflenetv2_x2_0-8be3c8ee.pth"),
            accuracy: Accuracy { top1: 76.23, top5: Some(93.006) },
            eval: Eval::bilinear(232, 224),
            file_mb: 28.433,
            gmacs: Some(0.583),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), [24, 244, 488, 976, 2048]),
        ..FAMILY
    },
];

/// Blocks per stage (stage2, stage3, stage4), the same for every width.
const REPEATS: [usize; 3] = [4, 8, 4];

/// The convolution at `p.{conv}` with the BatchNorm at `p.{conv + 1}` folded in.
fn conv_bn(p: &P, conv: usize, cin: i64, cout: i64, k: i64, cfg: ConvCfg) -> Result<ConvBn, BuildError> {
    ConvBn::load(p, (&conv.to_string(), &(conv + 1).to_string()), cin, cout, [k, k], cfg, EPS)
}

/// A depthwise 3×3 convolution + BatchNorm (no activation) at `p.{conv}`.
fn depthwise(p: &P, conv: usize, channels: i64, stride: i64) -> Result<ConvBn, BuildError> {
    conv_bn(p, conv, channels, channels, 3, ConvCfg::default().stride(stride).pad(1).groups(channels))
}

/// A 1×1 convolution + BatchNorm + ReLU at `p.{conv}`.
fn pointwise(p: &P, conv: usize, cin: i64, cout: i64) -> Result<ConvBn, BuildError> {
    Ok(conv_bn(p, conv, cin, cout, 1, ConvCfg::default())?.with_act(Act::Relu))
}

/// torchvision's `InvertedResidual`: with stride 1, the second half of the channels goes through `branch2`
/// and the first half is kept; with stride 2, the whole input goes through both branches.
#[derive(Debug)]
struct Unit {
    /// Depthwise 3×3 with stride 2, 1×1 + ReLU: downsampling units only.
    branch1: Option<[ConvBn; 2]>,
    /// 1×1 + ReLU, depthwise 3×3, 1×1 + ReLU.
    branch2: [ConvBn; 3],
}

impl Unit {
    fn load(p: &P, cin: i64, cout: i64, stride: i64) -> Result<Self, BuildError> {
        let half = cout / 2;
        let branch1 = if stride > 1 {
            let b = p.sub("branch1");
            Some([depthwise(&b, 0, cin, stride)?, pointwise(&b, 2, cin, half)?])
        } else {
            None
        };
        let b = p.sub("branch2");
        let branch2 = [
            pointwise(&b, 0, if stride > 1 { cin } else { half }, half)?,
            depthwise(&b, 3, half, stride)?,
            pointwise(&b, 5, half, half)?,
        ];
        Ok(Unit { branch1, branch2 })
    }
}

impl Module for Unit {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let chain = |convs: &[ConvBn], x: &Tensor| convs.iter().fold(x.shallow_clone(), |y, c| c.forward(&y));
        match &self.branch1 {
            Some(branch1) => shuffle(&chain(branch1, xs), &chain(&self.branch2, xs)),
            None => {
                let halves = xs.chunk(2, 1);
                shuffle(&halves[0], &chain(&self.branch2, &halves[1]))
            }
        }
    }
}

/// `channel_shuffle(torch.cat((a, b), 1), 2)`: the channels of `a` and `b` interleaved (a₀, b₀, a₁, b₁, …),
/// in one copy rather than torchvision's concatenation then transposed copy. Stacking along a new innermost
/// dimension of the channels-last layout keeps the result channels-last.
fn shuffle(a: &Tensor, b: &Tensor) -> Tensor {
    let size = a.size();
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    if a.permute([0, 2, 3, 1]).is_contiguous() || b.permute([0, 2, 3, 1]).is_contiguous() {
        let nhwc = |t: &Tensor| t.permute([0, 2, 3, 1]);
        Tensor::stack(&[nhwc(a), nhwc(b)], 4).view([n, h, w, 2 * c]).permute([0, 3, 1, 2])
    } else {
        Tensor::stack(&[a, b], 2).view([n, 2 * c, h, w])
    }
}

#[derive(Debug)]
pub struct ShuffleNetV2 {
    conv1: ConvBn,
    units: Vec<Unit>,
    conv5: ConvBn,
    fc: Linear,
}

/// The network with torchvision's `stages_out_channels`: the stem's, the three stages', conv5's.
pub fn build(p: &P, channels: [i64; 5]) -> Result<Box<dyn Network>, BuildError> {
    let conv1 = conv_bn(&p.sub("conv1"), 0, 3, channels[0], 3, ConvCfg::default().stride(2).pad(1))?;
    let conv1 = conv1.with_act(Act::Relu);
    let (mut units, mut cin) = (Vec::new(), channels[0]);
    for (stage, (&repeats, &cout)) in REPEATS.iter().zip(&channels[1..4]).enumerate() {
        let s = p.sub(format!("stage{}", stage + 2));
        for i in 0..repeats {
            units.push(Unit::load(&s.sub(i), cin, cout, if i == 0 { 2 } else { 1 })?);
            cin = cout;
        }
    }
    let conv5 = pointwise(&p.sub("conv5"), 0, cin, channels[4])?;
    let fc = Linear::load(&p.sub("fc"), channels[4], None)?;
    Ok(Box::new(ShuffleNetV2 { conv1, units, conv5, fc }))
}

impl Split for ShuffleNetV2 {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = super::layers::max_pool2d(&self.conv1.forward(xs), 3, 2, 1, false);
        self.conv5.forward(&self.units.iter().fold(x, |x, unit| unit.forward(&x)))
    }

    fn head(&self, features: &Tensor) -> Tensor {
        // torchvision's global pool: x.mean([2, 3]).
        self.fc.forward(&features.mean_dim([2i64, 3].as_slice(), false, None::<Kind>))
    }
}

impl Module for ShuffleNetV2 {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for ShuffleNetV2 {
    fn classes(&self) -> i64 {
        self.fc.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}
