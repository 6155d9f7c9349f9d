//! MobileNet V2 (Sandler et al., 2018) and V3 (Howard et al., 2019), as torchvision builds them: inverted
//! residual blocks of convolution + BatchNorm + activation units, V3 with squeeze-and-excitation.
use super::layers::{make_divisible, Conv2d, ConvBn, ConvCfg, Linear, P};
use super::{BuildError, Network};
use tch::{nn::Module, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    None,
    Relu,
    Relu6,
    Hardswish,
}

impl Act {
    fn apply(self, x: Tensor) -> Tensor {
        match self {
            Act::None => x,
            Act::Relu => x.relu(),
            Act::Relu6 => x.relu6(),
            Act::Hardswish => x.hardswish(),
        }
    }
}

/// torchvision's Conv2dNormActivation: a k×k convolution with "same" padding, BatchNorm, an activation.
#[derive(Debug)]
struct Unit {
    conv_bn: ConvBn,
    act: Act,
}

impl Unit {
    #[allow(clippy::too_many_arguments)]
    fn load(
        p: &P,
        cin: i64,
        cout: i64,
        k: i64,
        stride: i64,
        groups: i64,
        eps: f64,
        act: Act,
    ) -> Result<Self, BuildError> {
        let cfg = ConvCfg::default().stride(stride).pad((k - 1) / 2).groups(groups);
        Ok(Unit { conv_bn: ConvBn::load(p, ("0", "1"), cin, cout, [k, k], cfg, eps)?, act })
    }
}

impl Module for Unit {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.act.apply(self.conv_bn.forward(xs))
    }
}

/// Squeeze-and-excitation with a hard sigmoid, as in V3.
#[derive(Debug)]
struct SqueezeExcite {
    fc1: Conv2d,
    fc2: Conv2d,
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
            Layer::Se(se) => {
                let scale = se.fc1.forward(&x.adaptive_avg_pool2d([1, 1])).relu();
                x * se.fc2.forward(&scale).hardsigmoid()
            }
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
        let y = self.layers.iter().fold(xs.shallow_clone(), |y, l| l.forward(&y));
        if self.residual {
            y + xs
        } else {
            y
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

impl Module for MobileNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let x = self.features.iter().fold(self.stem.forward(xs), |x, b| b.forward(&x));
        let x = self.last.forward(&x).adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        // Dropout is the identity at inference.
        let x = match &self.hidden {
            Some(h) => h.forward(&x).hardswish(),
            None => x,
        };
        self.classifier.forward(&x)
    }
}

impl Network for MobileNet {
    fn classes(&self) -> i64 {
        self.classifier.outputs()
    }
}

/// (expansion, channels, repeats, stride) of MobileNet V2's stages.
const V2_STAGES: [(i64, i64, i64, i64); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

pub fn build_v2(p: &P) -> Result<Box<dyn Network>, BuildError> {
    const EPS: f64 = 1e-5;
    let f = p.sub("features");
    let stem = Unit::load(&f.sub(0), 3, 32, 3, 2, 1, EPS, Act::Relu6)?;
    let (mut features, mut cin) = (Vec::new(), 32);
    for (t, c, n, s) in V2_STAGES {
        for i in 0..n {
            let b = f.sub(features.len() + 1).sub("conv");
            let (stride, hidden) = (if i == 0 { s } else { 1 }, cin * t);
            let mut layers = Vec::new();
            if t != 1 {
                layers.push(Layer::Unit(Unit::load(&b.sub(0), cin, hidden, 1, 1, 1, EPS, Act::Relu6)?));
            }
            let at = layers.len();
            layers.push(Layer::Unit(Unit::load(&b.sub(at), hidden, hidden, 3, stride, hidden, EPS, Act::Relu6)?));
            let names = ((at + 1).to_string(), (at + 2).to_string());
            let project = ConvBn::load(&b, (&names.0, &names.1), hidden, c, [1, 1], ConvCfg::default(), EPS)?;
            layers.push(Layer::Project(project));
            features.push(InvertedResidual { layers, residual: stride == 1 && cin == c });
            cin = c;
        }
    }
    let last = Unit::load(&f.sub(features.len() + 1), cin, 1280, 1, 1, 1, EPS, Act::Relu6)?;
    let classifier = Linear::load(&p.sub("classifier").sub(1), 1280, None)?;
    Ok(Box::new(MobileNet { features, stem, last, hidden: None, classifier }))
}

/// One V3 block: input, kernel, expanded, output channels, squeeze-and-excitation, hard swish, stride.
type V3Block = (i64, i64, i64, i64, bool, bool, i64);

pub struct V3 {
    blocks: &'static [V3Block],
    last_channel: i64,
}

pub const V3_LARGE: V3 = V3 {
    blocks: &[
        (16, 3, 16, 16, false, false, 1),
        (16, 3, 64, 24, false, false, 2),
        (24, 3, 72, 24, false, false, 1),
        (24, 5, 72, 40, true, false, 2),
        (40, 5, 120, 40, true, false, 1),
        (40, 5, 120, 40, true, false, 1),
        (40, 3, 240, 80, false, true, 2),
        (80, 3, 200, 80, false, true, 1),
        (80, 3, 184, 80, false, true, 1),
        (80, 3, 184, 80, false, true, 1),
        (80, 3, 480, 112, true, true, 1),
        (112, 3, 672, 112, true, true, 1),
        (112, 5, 672, 160, true, true, 2),
        (160, 5, 960, 160, true, true, 1),
        (160, 5, 960, 160, true, true, 1),
    ],
    last_channel: 1280,
};

pub const V3_SMALL: V3 = V3 {
    blocks: &[
        (16, 3, 16, 16, true, false, 2),
        (16, 3, 72, 24, false, false, 2),
        (24, 3, 88, 24, false, false, 1),
        (24, 5, 96, 40, true, true, 2),
        (40, 5, 240, 40, true, true, 1),
        (40, 5, 240, 40, true, true, 1),
        (40, 5, 120, 48, true, true, 1),
        (48, 5, 144, 48, true, true, 1),
        (48, 5, 288, 96, true, true, 2),
        (96, 5, 576, 96, true, true, 1),
        (96, 5, 576, 96, true, true, 1),
    ],
    last_channel: 1024,
};

pub fn build_v3(p: &P, cfg: &V3) -> Result<Box<dyn Network>, BuildError> {
    const EPS: f64 = 1e-3;
    let f = p.sub("features");
    let stem = Unit::load(&f.sub(0), 3, 16, 3, 2, 1, EPS, Act::Hardswish)?;
    let mut features = Vec::new();
    for (i, &(cin, k, exp, cout, se, hs, stride)) in cfg.blocks.iter().enumerate() {
        let b = f.sub(i + 1).sub("block");
        let act = if hs { Act::Hardswish } else { Act::Relu };
        let mut layers = Vec::new();
        if exp != cin {
            layers.push(Layer::Unit(Unit::load(&b.sub(0), cin, exp, 1, 1, 1, EPS, act)?));
        }
        layers.push(Layer::Unit(Unit::load(&b.sub(layers.len()), exp, exp, k, stride, exp, EPS, act)?));
        if se {
            let s = b.sub(layers.len());
            let squeeze = make_divisible((exp / 4) as f64, 8);
            let fc1 = Conv2d::load(&s.sub("fc1"), exp, squeeze, [1, 1], ConvCfg::default())?;
            let fc2 = Conv2d::load(&s.sub("fc2"), squeeze, exp, [1, 1], ConvCfg::default())?;
            layers.push(Layer::Se(SqueezeExcite { fc1, fc2 }));
        }
        layers.push(Layer::Unit(Unit::load(&b.sub(layers.len()), exp, cout, 1, 1, 1, EPS, Act::None)?));
        features.push(InvertedResidual { layers, residual: stride == 1 && cin == cout });
    }
    let cin = cfg.blocks.last().expect("blocks").3;
    let last = Unit::load(&f.sub(cfg.blocks.len() + 1), cin, 6 * cin, 1, 1, 1, EPS, Act::Hardswish)?;
    let c = p.sub("classifier");
    let hidden = Linear::load(&c.sub(0), 6 * cin, Some(cfg.last_channel))?;
    let classifier = Linear::load(&c.sub(3), cfg.last_channel, None)?;
    Ok(Box::new(MobileNet { features, stem, last, hidden: Some(hidden), classifier }))
}
