//! SqueezeNet (Iandola et al., 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB
//! model size"), versions 1.0 and 1.1, as torchvision builds them: Fire modules (a 1×1 "squeeze" convolution,
//! then 1×1 and 3×3 "expand" convolutions side by side, their outputs concatenated), max pools with
//! `ceil_mode`, and a classifier that is a 1×1 convolution to the classes, ReLU and a global average pool.
use super::layers::{Act, Conv2d, ConvCfg, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// Grad-CAM's target layer: the last layer of `features`, a Fire module.
pub const CAM_LAYER: &str = "features[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "SqueezeNet", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "squeezenet1_0",
        arch: "SqueezeNet 1.0",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/squeezenet1_0-b66bff10.pth"),
            accuracy: Accuracy { top1: 58.092, top5: Some(80.42) },
            eval: Eval::bilinear(256, 224),
            file_mb: 4.778,
            gmacs: Some(0.819),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &V1_0),
        ..FAMILY
    },
    ModelSpec {
        name: "squeezenet1_1",
        arch: "SqueezeNet 1.1",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),
            accuracy: Accuracy { top1: 58.178, top5: Some(80.624) },
            eval: Eval::bilinear(256, 224),
            file_mb: 4.729,
            gmacs: Some(0.349),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build(&p.root(), &V1_1),
        ..FAMILY
    },
];

/// A layer of `features` after the stem: a Fire module with its (squeeze, expand1x1, expand3x3) channels, or
/// a 3×3 max pool with stride 2 and `ceil_mode`.
#[derive(Clone, Copy)]
enum Layer {
    Fire(i64, i64, i64),
    Pool,
}

/// A version: its stem convolution's (output channels, kernel), then the rest of `features`.
pub struct Version {
    stem: (i64, i64),
    layers: &'static [Layer],
}

/// A Fire module, shorter.
const fn f(squeeze: i64, e1: i64, e3: i64) -> Layer {
    Layer::Fire(squeeze, e1, e3)
}
const M: Layer = Layer::Pool;

/// torchvision's version "1_0".
pub const V1_0: Version = Version {
    stem: (96, 7),
    layers: &[
        M,
        f(16, 64, 64),
        f(16, 64, 64),
        f(32, 128, 128),
        M,
        f(32, 128, 128),
        f(48, 192, 192),
        f(48, 192, 192),
        f(64, 256, 256),
        M,
        f(64, 256, 256),
    ],
};

/// torchvision's version "1_1".
pub const V1_1: Version = Version {
    stem: (64, 3),
    layers: &[
        M,
        f(16, 64, 64),
        f(16, 64, 64),
        M,
        f(32, 128, 128),
        f(32, 128, 128),
        M,
        f(48, 192, 192),
        f(48, 192, 192),
        f(64, 256, 256),
        f(64, 256, 256),
    ],
};

/// A Fire module, each convolution with its ReLU fused.
#[derive(Debug)]
struct Fire {
    squeeze: Conv2d,
    expand1x1: Conv2d,
    expand3x3: Conv2d,
}

impl Fire {
    fn load(p: &P, cin: i64, squeeze: i64, e1: i64, e3: i64) -> Result<Self, BuildError> {
        let conv = |name: &str, cin: i64, cout: i64, k: i64| -> Result<Conv2d, BuildError> {
            Ok(Conv2d::load(&p.sub(name), cin, cout, [k, k], ConvCfg::default().pad(k / 2))?.with_act(Act::Relu))
        };
        Ok(Fire {
            squeeze: conv("squeeze", cin, squeeze, 1)?,
            expand1x1: conv("expand1x1", squeeze, e1, 1)?,
            expand3x3: conv("expand3x3", squeeze, e3, 3)?,
        })
    }
}

impl Module for Fire {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let x = self.squeeze.forward(xs);
        Tensor::cat(&[self.expand1x1.forward(&x), self.expand3x3.forward(&x)], 1)
    }
}

#[derive(Debug)]
enum Feature {
    Fire(Box<Fire>),
    Pool,
}

#[derive(Debug)]
pub struct SqueezeNet {
    /// The stride-2 stem convolution with its ReLU.
    stem: Conv2d,
    features: Vec<Feature>,
    /// `classifier.1`: the 1×1 convolution to the classes, with its ReLU.
    classifier: Conv2d,
}

pub fn build(p: &P, version: &Version) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let (stem_out, k) = version.stem;
    let stem = Conv2d::load(&f.sub(0), 3, stem_out, [k, k], ConvCfg::default().stride(2))?.with_act(Act::Relu);
    let (mut features, mut cin) = (Vec::new(), stem_out);
    // features.1 is the stem's ReLU.
    for (i, layer) in version.layers.iter().enumerate() {
        features.push(match *layer {
            Layer::Fire(s, e1, e3) => {
                let fire = Fire::load(&f.sub(i + 2), cin, s, e1, e3)?;
                cin = e1 + e3;
                Feature::Fire(Box::new(fire))
            }
            Layer::Pool => Feature::Pool,
        });
    }
    // classifier.0 is dropout. The number of classes is read from the weights.
    let c = p.sub("classifier").sub(1);
    let classifier = Conv2d::load(&c, cin, -1, [1, 1], ConvCfg::default())?.with_act(Act::Relu);
    let bias = classifier.bias.as_ref().map_or(0, |b| b.size()[0]);
    if bias != classifier.out_channels() {
        return Err(BuildError(format!(
            "has `{}.bias` of shape [{bias}] where the model needs [{}]",
            c.name(),
            classifier.out_channels()
        )));
    }
    Ok(Box::new(SqueezeNet { stem, features, classifier }))
}

impl Split for SqueezeNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        self.features.iter().fold(self.stem.forward(xs), |x, layer| match layer {
            Feature::Fire(fire) => fire.forward(&x),
            Feature::Pool => super::layers::max_pool2d(&x, 3, 2, 0, true),
        })
    }

    fn head(&self, features: &Tensor) -> Tensor {
        // Dropout is the identity at inference.
        self.classifier.forward(features).adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}

impl Module for SqueezeNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for SqueezeNet {
    fn classes(&self) -> i64 {
        self.classifier.out_channels()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}
