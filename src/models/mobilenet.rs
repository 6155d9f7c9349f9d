//! MobileNet V2 (Sandler et al., 2018) and V3 (Howard et al., 2019), as torchvision builds them: inverted
//! residual blocks of convolution + BatchNorm + activation units, V3 with squeeze-and-excitation.
use super::layers::{make_divisible, Act, ConvBn, ConvCfg, Gate, Linear, SqueezeExcite, P, RELU6};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// Grad-CAM's target layer: the last layer of `features`, the final 1×1 convolution with its activation.
pub const CAM_LAYER: &str = "features[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "MobileNet", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "mobilenet_v2",
        arch: "MobileNet V2",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth"),
                accuracy: Accuracy { top1: 72.154, top5: Some(90.822) },
                eval: Eval::bilinear(232, 224),
                file_mb: 13.598,
                gmacs: Some(0.301),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"),
                accuracy: Accuracy { top1: 71.878, top5: Some(90.286) },
                eval: Eval::bilinear(256, 224),
                file_mb: 13.555,
                gmacs: Some(0.301),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build_v2(&p.root()),
        // V2's layers all have int8 forms (ReLU6 fused); V3's squeeze-and-excitation and hardswish do not.
        int8: true,
        ..FAMILY
    },
    ModelSpec {
        name: "mobilenet_v3_large",
        arch: "MobileNet V3 large",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/mobilenet_v3_large-5c1a4163.pth"),
                accuracy: Accuracy { top1: 75.274, top5: Some(92.566) },
                eval: Eval::bilinear(232, 224),
                file_mb: 21.107,
                gmacs: Some(0.217),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth"),
                accuracy: Accuracy { top1: 74.042, top5: Some(91.34) },
                eval: Eval::bilinear(256, 224),
                file_mb: 21.114,
                gmacs: Some(0.217),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build_v3(&p.root(), &V3_LARGE),
        ..FAMILY
    },
    ModelSpec {
        name: "mobilenet_v3_small",
        arch: "MobileNet V3 small",
        weights: &[Weights {
            tag: "IMAGENET1K_V1",
            file: WeightsFile::published("https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth"),
            accuracy: Accuracy { top1: 67.668, top5: Some(87.402) },
            eval: Eval::bilinear(256, 224),
            file_mb: 9.829,
            gmacs: Some(0.057),
            ..Weights::TORCHVISION
        }],
        build: |p, _| build_v3(&p.root(), &V3_SMALL),
        ..FAMILY
    },
];

/// torchvision's Conv2dNormActivation: a k×k convolution with "same" padding, BatchNorm, an activation.
#[derive(Debug)]
struct Unit(ConvBn);

/// A [`Unit`]'s settings besides its channels.
#[derive(Debug, Clone, Copy)]
struct UnitCfg {
    kernel: i64,
    stride: i64,
    /// One filter per channel (groups = channels), as in the blocks' middle convolution.
    depthwise: bool,
    /// BatchNorm's epsilon.
    eps: f64,
    act: Act,
}

impl Unit {
    fn load(p: &P, cin: i64, cout: i64, cfg: UnitCfg) -> Result<Self, BuildError> {
        let UnitCfg { kernel, stride, depthwise, eps, act } = cfg;
        let conv = ConvCfg::default().stride(stride).groups(if depthwise { cin } else { 1 });
        Ok(Unit(ConvBn::norm_act(p, cin, cout, kernel, conv, eps, act)?))
    }
}

impl Module for Unit {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.0.forward(xs)
    }
}

#[derive(Debug)]
enum Layer {
    Unit(Unit),
    /// A projection that torchvision keeps as separate convolution and BatchNorm modules (V2).
    Project(ConvBn),
    Se(SqueezeExcite),
}

impl Module for Layer {
    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Layer::Unit(u) => u.forward(x),
            Layer::Project(p) => p.forward(x),
            Layer::Se(se) => se.forward(x),
        }
    }
}

#[derive(Debug)]
struct InvertedResidual {
    layers: Vec<Layer>,
    residual: bool,
}

impl Module for InvertedResidual {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (last, first) = self.layers.split_last().expect("a block has layers");
        let y = first.iter().fold(xs.shallow_clone(), |y, l| l.forward(&y));
        // The shortcut is added by the projection, which has no activation.
        match (self.residual, last) {
            (true, Layer::Project(conv) | Layer::Unit(Unit(conv))) => conv.forward_add(&y, xs, false),
            (true, Layer::Se(_)) => unreachable!("a block ends in its projection"),
            (false, last) => last.forward(&y),
        }
    }
}

#[derive(Debug)]
pub struct MobileNet {
    features: Vec<InvertedResidual>,
    stem: Unit,
    last: Unit,
    /// V3 has a hidden layer (with hard swish) before the classifier.
    hidden: Option<Linear>,
    classifier: Linear,
}

impl Split for MobileNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = self.features.iter().fold(self.stem.forward(xs), |x, b| b.forward(&x));
        self.last.forward(&x)
    }

    fn head(&self, features: &Tensor) -> Tensor {
        let x = super::quant::dequantized(features).adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        // Dropout is the identity at inference.
        let x = match &self.hidden {
            Some(h) => h.forward(&x).hardswish(),
            None => x,
        };
        self.classifier.forward(&x)
    }
}

impl Module for MobileNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for MobileNet {
    fn classes(&self) -> i64 {
        self.classifier.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}

/// One stage of MobileNet V2: `repeats` inverted residual blocks with `channels` outputs, the first with
/// `stride`, each expanding its input `expansion` times (torchvision's `t, c, n, s`).
struct V2Stage {
    expansion: i64,
    channels: i64,
    repeats: i64,
    stride: i64,
}

const V2_STAGES: [V2Stage; 7] = [
    V2Stage { expansion: 1, channels: 16, repeats: 1, stride: 1 },
    V2Stage { expansion: 6, channels: 24, repeats: 2, stride: 2 },
    V2Stage { expansion: 6, channels: 32, repeats: 3, stride: 2 },
    V2Stage { expansion: 6, channels: 64, repeats: 4, stride: 2 },
    V2Stage { expansion: 6, channels: 96, repeats: 3, stride: 1 },
    V2Stage { expansion: 6, channels: 160, repeats: 3, stride: 2 },
    V2Stage { expansion: 6, channels: 320, repeats: 1, stride: 1 },
];

/// V2's units: 1×1, BatchNorm eps 1e-5, ReLU6, unless an entry says otherwise.
const V2_UNIT: UnitCfg = UnitCfg { kernel: 1, stride: 1, depthwise: false, eps: 1e-5, act: RELU6 };

pub fn build_v2(p: &P) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let stem = Unit::load(&f.sub(0), 3, 32, UnitCfg { kernel: 3, stride: 2, ..V2_UNIT })?;
    let (mut features, mut cin) = (Vec::new(), 32);
    for stage in &V2_STAGES {
        for i in 0..stage.repeats {
            let b = f.sub(features.len() + 1).sub("conv");
            let (stride, hidden, c) = (if i == 0 { stage.stride } else { 1 }, cin * stage.expansion, stage.channels);
            let mut layers = Vec::new();
            if stage.expansion != 1 {
                layers.push(Layer::Unit(Unit::load(&b.sub(0), cin, hidden, V2_UNIT)?));
            }
            let at = layers.len();
            let depthwise = UnitCfg { kernel: 3, stride, depthwise: true, ..V2_UNIT };
            layers.push(Layer::Unit(Unit::load(&b.sub(at), hidden, hidden, depthwise)?));
            let names = ((at + 1).to_string(), (at + 2).to_string());
            let project = ConvBn::load(&b, (&names.0, &names.1), hidden, c, [1, 1], ConvCfg::default(), V2_UNIT.eps)?;
            layers.push(Layer::Project(project));
            features.push(InvertedResidual { layers, residual: stride == 1 && cin == c });
            cin = c;
        }
    }
    let last = Unit::load(&f.sub(features.len() + 1), cin, 1280, V2_UNIT)?;
    let classifier = Linear::load(&p.sub("classifier").sub(1), 1280, None)?;
    Ok(Box::new(MobileNet { features, stem, last, hidden: None, classifier }))
}

/// One V3 block, torchvision's `InvertedResidualConfig`: a 1×1 expansion from `input` to `expanded` channels
/// (none if they are equal), a `kernel`×`kernel` depthwise convolution with `stride`, squeeze-and-excitation if
/// `se`, a 1×1 projection to `out` channels; `act` after the expansion and the depthwise convolution.
struct BlockConfig {
    input: i64,
    kernel: i64,
    expanded: i64,
    out: i64,
    se: bool,
    act: Act,
    stride: i64,
}

pub struct V3 {
    blocks: &'static [BlockConfig],
    last_channel: i64,
}

const RE: Act = Act::Relu;
const HS: Act = Act::Hardswish;

pub const V3_LARGE: V3 = V3 {
    blocks: &[
        BlockConfig { input: 16, kernel: 3, expanded: 16, out: 16, se: false, act: RE, stride: 1 },
        BlockConfig { input: 16, kernel: 3, expanded: 64, out: 24, se: false, act: RE, stride: 2 },
        BlockConfig { input: 24, kernel: 3, expanded: 72, out: 24, se: false, act: RE, stride: 1 },
        BlockConfig { input: 24, kernel: 5, expanded: 72, out: 40, se: true, act: RE, stride: 2 },
        BlockConfig { input: 40, kernel: 5, expanded: 120, out: 40, se: true, act: RE, stride: 1 },
        BlockConfig { input: 40, kernel: 5, expanded: 120, out: 40, se: true, act: RE, stride: 1 },
        BlockConfig { input: 40, kernel: 3, expanded: 240, out: 80, se: false, act: HS, stride: 2 },
        BlockConfig { input: 80, kernel: 3, expanded: 200, out: 80, se: false, act: HS, stride: 1 },
        BlockConfig { input: 80, kernel: 3, expanded: 184, out: 80, se: false, act: HS, stride: 1 },
        BlockConfig { input: 80, kernel: 3, expanded: 184, out: 80, se: false, act: HS, stride: 1 },
        BlockConfig { input: 80, kernel: 3, expanded: 480, out: 112, se: true, act: HS, stride: 1 },
        BlockConfig { input: 112, kernel: 3, expanded: 672, out: 112, se: true, act: HS, stride: 1 },
        BlockConfig { input: 112, kernel: 5, expanded: 672, out: 160, se: true, act: HS, stride: 2 },
        BlockConfig { input: 160, kernel: 5, expanded: 960, out: 160, se: true, act: HS, stride: 1 },
        BlockConfig { input: 160, kernel: 5, expanded: 960, out: 160, se: true, act: HS, stride: 1 },
    ],
    last_channel: 1280,
};

pub const V3_SMALL: V3 = V3 {
    blocks: &[
        BlockConfig { input: 16, kernel: 3, expanded: 16, out: 16, se: true, act: RE, stride: 2 },
        BlockConfig { input: 16, kernel: 3, expanded: 72, out: 24, se: false, act: RE, stride: 2 },
        BlockConfig { input: 24, kernel: 3, expanded: 88, out: 24, se: false, act: RE, stride: 1 },
        BlockConfig { input: 24, kernel: 5, expanded: 96, out: 40, se: true, act: HS, stride: 2 },
        BlockConfig { input: 40, kernel: 5, expanded: 240, out: 40, se: true, act: HS, stride: 1 },
        BlockConfig { input: 40, kernel: 5, expanded: 240, out: 40, se: true, act: HS, stride: 1 },
        BlockConfig { input: 40, kernel: 5, expanded: 120, out: 48, se: true, act: HS, stride: 1 },
        BlockConfig { input: 48, kernel: 5, expanded: 144, out: 48, se: true, act: HS, stride: 1 },
        BlockConfig { input: 48, kernel: 5, expanded: 288, out: 96, se: true, act: HS, stride: 2 },
        BlockConfig { input: 96, kernel: 5, expanded: 576, out: 96, se: true, act: HS, stride: 1 },
        BlockConfig { input: 96, kernel: 5, expanded: 576, out: 96, se: true, act: HS, stride: 1 },
    ],
    last_channel: 1024,
};

/// V3's units: 1×1, BatchNorm eps 1e-3, hard swish, unless an entry says otherwise.
const V3_UNIT: UnitCfg = UnitCfg { kernel: 1, stride: 1, depthwise: false, eps: 1e-3, act: Act::Hardswish };

pub fn build_v3(p: &P, cfg: &V3) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let stem = Unit::load(&f.sub(0), 3, 16, UnitCfg { kernel: 3, stride: 2, ..V3_UNIT })?;
    let mut features = Vec::new();
    for (i, blk) in cfg.blocks.iter().enumerate() {
        let b = f.sub(i + 1).sub("block");
        let (cin, exp) = (blk.input, blk.expanded);
        let mut layers = Vec::new();
        if exp != cin {
            layers.push(Layer::Unit(Unit::load(&b.sub(0), cin, exp, UnitCfg { act: blk.act, ..V3_UNIT })?));
        }
        let depthwise = UnitCfg { kernel: blk.kernel, stride: blk.stride, depthwise: true, act: blk.act, ..V3_UNIT };
        layers.push(Layer::Unit(Unit::load(&b.sub(layers.len()), exp, exp, depthwise)?));
        if blk.se {
            let squeeze = make_divisible((exp / 4) as f64, 8);
            let se = SqueezeExcite::load(&b.sub(layers.len()), exp, squeeze, Act::Relu, Gate::Hardsigmoid)?;
            layers.push(Layer::Se(se));
        }
        let project = UnitCfg { act: Act::None, ..V3_UNIT };
        layers.push(Layer::Unit(Unit::load(&b.sub(layers.len()), exp, blk.out, project)?));
        features.push(InvertedResidual { layers, residual: blk.stride == 1 && cin == blk.out });
    }
    let cin = cfg.blocks.last().expect("blocks").out;
    let last = Unit::load(&f.sub(cfg.blocks.len() + 1), cin, 6 * cin, V3_UNIT)?;
    let c = p.sub("classifier");
    let hidden = Linear::load(&c.sub(0), 6 * cin, Some(cfg.last_channel))?;
    let classifier = Linear::load(&c.sub(3), cfg.last_channel, None)?;
    Ok(Box::new(MobileNet { features, stem, last, hidden: Some(hidden), classifier }))
}
