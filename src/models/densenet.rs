//! DenseNet (Huang et al., 2016), as torchvision builds it. Unlike `tch::vision::densenet`, the transitions and
//! the final pool take the mean, as torchvision's do: tch's sums put its logits off by up to 3.6e4.
use super::layers::{Act, BatchNorm2d, Conv2d, ConvCfg, Linear, Params, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

const EPS: f64 = 1e-5;
const BN_SIZE: i64 = 4;

/// Grad-CAM's target layer: the last layer of `features`, the final BatchNorm (`norm5`). torchvision applies
/// its ReLU in place on that layer's output, so a forward hook there ends up holding the activation after the
/// ReLU, while the gradient it records is the one before it: [`Split::observed`] gives the former.
pub const CAM_LAYER: &str = "features[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "DenseNet", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "densenet121",
        arch: "DenseNet-121",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            aliases: &["densenet"],
            file: WeightsFile::published("https://download.pytorch.org/models/densenet121-a639ec97.pth"),
            accuracy: Accuracy { top1: 74.434, top5: Some(91.972) },
            eval: Eval::bilinear(256, 224),
            file_mb: 30.845,
            gmacs: Some(2.834),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(p, &DENSENET121),
        ..FAMILY
    },
    ModelSpec {
        name: "densenet161",
        arch: "DenseNet-161",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/densenet161-8d451a50.pth"),
            accuracy: Accuracy { top1: 77.138, top5: Some(93.56) },
            eval: Eval::bilinear(256, 224),
            file_mb: 110.369,
            gmacs: Some(7.728),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(p, &DENSENET161),
        ..FAMILY
    },
    ModelSpec {
        name: "densenet169",
        arch: "DenseNet-169",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/densenet169-b2777c0a.pth"),
            accuracy: Accuracy { top1: 75.6, top5: Some(92.806) },
            eval: Eval::bilinear(256, 224),
            file_mb: 54.708,
            gmacs: Some(3.36),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(p, &DENSENET169),
        ..FAMILY
    },
    ModelSpec {
        name: "densenet201",
        arch: "DenseNet-201",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/densenet201-c1103571.pth"),
            accuracy: Accuracy { top1: 76.896, top5: Some(93.37) },
            eval: Eval::bilinear(256, 224),
            file_mb: 77.373,
            gmacs: Some(4.291),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(p, &DENSENET201),
        ..FAMILY
    },
];

pub struct Config {
    pub growth: i64,
    pub blocks: [i64; 4],
    pub init_features: i64,
}

pub const DENSENET121: Config = Config { growth: 32, blocks: [6, 12, 24, 16], init_features: 64 };
pub const DENSENET161: Config = Config { growth: 48, blocks: [6, 12, 36, 24], init_features: 96 };
pub const DENSENET169: Config = Config { growth: 32, blocks: [6, 12, 32, 32], init_features: 64 };
pub const DENSENET201: Config = Config { growth: 32, blocks: [6, 12, 48, 32], init_features: 64 };

/// BatchNorm, ReLU, then a convolution: DenseNet's pre-activation unit.
#[derive(Debug)]
struct BnReluConv {
    bn: BatchNorm2d,
    conv: Conv2d,
}

impl BnReluConv {
    fn load(p: &P, (bn, conv): (&str, &str), cin: i64, cout: i64, k: i64) -> Result<Self, BuildError> {
        Ok(BnReluConv {
            bn: BatchNorm2d::load(&p.sub(bn), cin, EPS)?.standalone(p),
            conv: Conv2d::load(&p.sub(conv), cin, cout, [k, k], ConvCfg::default().pad(k / 2).no_bias())?,
        })
    }
}

impl Module for BnReluConv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.conv.forward(&self.bn.forward(xs).relu_())
    }
}

#[derive(Debug)]
enum Stage {
    /// A dense layer: BatchNorm, ReLU, 1×1 convolution (with the second BatchNorm folded in), ReLU, 3×3
    /// convolution. Its output is concatenated to its input.
    Layer(BnReluConv, Conv2d),
    /// A transition: halves the channels, then a 2×2 mean pool.
    Transition(BnReluConv),
}

#[derive(Debug)]
pub struct DenseNet {
    /// The 7×7 convolution with its BatchNorm folded in.
    stem: Conv2d,
    stages: Vec<Stage>,
    final_bn: BatchNorm2d,
    classifier: Linear,
}

/// torchvision's 2017 checkpoints name `denselayerN.norm.1.weight` what the current model calls
/// `denselayerN.norm1.weight`; torchvision renames them on load, and so do we.
fn legacy_name(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let n = parts.len();
    let fits = n >= 4
        && parts[n - 4]
            .strip_prefix("denselayer")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        && matches!(parts[n - 3], "norm" | "relu" | "conv")
        && matches!(parts[n - 2], "1" | "2")
        && matches!(parts[n - 1], "weight" | "bias" | "running_mean" | "running_var");
    fits.then(|| format!("{}{}.{}", parts[..n - 2].join("."), parts[n - 2], parts[n - 1]))
}

pub fn build(params: &Params, cfg: &Config) -> Result<Box<dyn Network>, BuildError> {
    params.rename_keys(legacy_name);
    let f = params.root().sub("features");
    let stem_cfg = ConvCfg::default().stride(2).pad(3).no_bias();
    let stem = Conv2d::load_bn(&f.sub("conv0"), &f.sub("norm0"), 3, cfg.init_features, [7, 7], stem_cfg, EPS)?
        .with_act(Act::Relu);
    let (mut stages, mut c) = (Vec::new(), cfg.init_features);
    for (i, &layers) in cfg.blocks.iter().enumerate() {
        let block = f.sub(format!("denseblock{}", i + 1));
        for j in 0..layers {
            let l = block.sub(format!("denselayer{}", j + 1));
            let inner = BN_SIZE * cfg.growth;
            let bottleneck = BnReluConv {
                bn: BatchNorm2d::load(&l.sub("norm1"), c, EPS)?.standalone(&l),
                conv: Conv2d::load_bn(
                    &l.sub("conv1"),
                    &l.sub("norm2"),
                    c,
                    inner,
                    [1, 1],
                    ConvCfg::default().no_bias(),
                    EPS,
                )?
                .with_act(Act::Relu),
            };
            let conv2 = Conv2d::load(&l.sub("conv2"), inner, cfg.growth, [3, 3], ConvCfg::default().pad(1).no_bias())?;
            stages.push(Stage::Layer(bottleneck, conv2));
            c += cfg.growth;
        }
        if i + 1 < cfg.blocks.len() {
            let t = f.sub(format!("transition{}", i + 1));
            stages.push(Stage::Transition(BnReluConv::load(&t, ("norm", "conv"), c, c / 2, 1)?));
            c /= 2;
        }
    }
    let final_bn = BatchNorm2d::load(&f.sub("norm5"), c, EPS)?.standalone(&f);
    let classifier = Linear::load(&params.root().sub("classifier"), c, None)?;
    Ok(Box::new(DenseNet { stem, stages, final_bn, classifier }))
}

impl Split for DenseNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = super::layers::max_pool2d(&self.stem.forward(xs), 3, 2, 1, false);
        let x = self.stages.iter().fold(x, |x, stage| match stage {
            Stage::Layer(bottleneck, conv) => Tensor::cat(&[&x, &conv.forward(&bottleneck.forward(&x))], 1),
            Stage::Transition(t) => t.forward(&x).avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None),
        });
        self.final_bn.forward(&x)
    }

    fn head(&self, features: &Tensor) -> Tensor {
        self.classifier.forward(&features.relu().adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }

    fn observed(&self, features: &Tensor) -> Tensor {
        features.relu()
    }
}

impl Module for DenseNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for DenseNet {
    fn classes(&self) -> i64 {
        self.classifier.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::legacy_name;

    #[test]
    fn renames_like_torchvision() {
        assert_eq!(
            legacy_name("features.denseblock1.denselayer1.norm.1.weight").as_deref(),
            Some("features.denseblock1.denselayer1.norm1.weight")
        );
        assert_eq!(
            legacy_name("features.denseblock4.denselayer16.conv.2.weight").as_deref(),
            Some("features.denseblock4.denselayer16.conv2.weight")
        );
        assert_eq!(legacy_name("features.denseblock1.denselayer1.norm1.weight"), None);
        assert_eq!(legacy_name("features.transition1.norm.weight"), None);
        assert_eq!(legacy_name("features.denseblock1.denselayer1.norm.3.weight"), None);
        assert_eq!(legacy_name("features.denseblock1.denselayer.norm.1.weight"), None);
    }
}
