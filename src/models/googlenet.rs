//! GoogLeNet (Szegedy et al., 2014, "Going Deeper with Convolutions"), Inception v1, as torchvision builds it
//! for its weights: BatchNorm after every convolution (the weights are ported from a batch-normalised
//! re-implementation), `transform_input` on, and the branch torchvision calls "5×5" a 3×3 convolution, as its
//! weights have it (pytorch/vision#906). The auxiliary classifiers only matter in training; their weights are
//! accepted and left unused.
use super::inception::transform_input;
use super::layers::{Act, ConvBn, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// Grad-CAM's target layer: the last Inception module.
pub const CAM_LAYER: &str = "inception5b";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "GoogLeNet", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[ModelSpec {
    name: "googlenet",
    arch: "GoogLeNet (Inception v1) with transform_input (as its weights are built)",
    weights: &[Weights {
        tag: "IMAGENET1K_V1",
        file: WeightsFile::published("https://download.pytorch.org/models/googlenet-1378be20.pth"),
        accuracy: Accuracy { top1: 69.778, top5: Some(89.53) },
        eval: Eval::bilinear(256, 224),
        file_mb: 49.731,
        gmacs: Some(1.498),
        ..Weights::TORCHVISION
    }],
    unused: UNUSED,
    build: |p, _| build(&p.root()),
    ..FAMILY
}];

/// Keys under these prefixes (the auxiliary classifiers) are allowed in a file and not used.
pub const UNUSED: &[&str] = &["aux1.", "aux2."];

/// torchvision's BasicConv2d: a k×k convolution without bias with "same" padding (stride 1) or the given
/// one, BatchNorm (eps 1e-3), ReLU, as one convolution.
fn basic(p: &P, cin: i64, cout: i64, k: i64, cfg: ConvCfg) -> Result<ConvBn, BuildError> {
    Ok(ConvBn::load(p, ("conv", "bn"), cin, cout, [k, k], cfg, 1e-3)?.with_act(Act::Relu))
}

/// A stride-1 BasicConv2d with "same" padding.
fn same(p: &P, cin: i64, cout: i64, k: i64) -> Result<ConvBn, BuildError> {
    basic(p, cin, cout, k, ConvCfg::default().pad(k / 2))
}

/// A max pool with `ceil_mode`, as all of GoogLeNet's are.
fn max_pool(xs: &Tensor, k: i64, stride: i64, pad: i64) -> Tensor {
    super::layers::max_pool2d(xs, k, stride, pad, true)
}

/// An Inception module's channels: input, 1×1, 3×3 reduction and 3×3, "5×5" reduction and "5×5" (a 3×3),
/// pool projection (torchvision's argument order).
type Channels = (i64, i64, i64, i64, i64, i64, i64);

/// An Inception module: 1×1 | 1×1, 3×3 | 1×1, 3×3 | 3×3 max pool, 1×1, concatenated.
#[derive(Debug)]
struct Inception {
    branch1: ConvBn,
    branch2: [ConvBn; 2],
    branch3: [ConvBn; 2],
    branch4: ConvBn,
}

impl Inception {
    fn load(p: &P, (cin, c1, r3, c3, r5, c5, pool): Channels) -> Result<Self, BuildError> {
        let (b2, b3) = (p.sub("branch2"), p.sub("branch3"));
        Ok(Inception {
            branch1: same(&p.sub("branch1"), cin, c1, 1)?,
            branch2: [same(&b2.sub(0), cin, r3, 1)?, same(&b2.sub(1), r3, c3, 3)?],
            branch3: [same(&b3.sub(0), cin, r5, 1)?, same(&b3.sub(1), r5, c5, 3)?],
            // branch4.0 is the max pool.
            branch4: same(&p.sub("branch4").sub(1), cin, pool, 1)?,
        })
    }
}

impl Module for Inception {
    fn forward(&self, x: &Tensor) -> Tensor {
        let chain = |[a, b]: &[ConvBn; 2]| b.forward(&a.forward(x));
        Tensor::cat(
            &[
                self.branch1.forward(x),
                chain(&self.branch2),
                chain(&self.branch3),
                self.branch4.forward(&max_pool(x, 3, 1, 1)),
            ],
            1,
        )
    }
}

/// The modules' names and channels, in order; a max pool follows 3b and 4e.
const MODULES: [(&str, Channels); 9] = [
    ("inception3a", (192, 64, 96, 128, 16, 32, 32)),
    ("inception3b", (256, 128, 128, 192, 32, 96, 64)),
    ("inception4a", (480, 192, 96, 208, 16, 48, 64)),
    ("inception4b", (512, 160, 112, 224, 24, 64, 64)),
    ("inception4c", (512, 128, 128, 256, 24, 64, 64)),
    ("inception4d", (512, 112, 144, 288, 32, 64, 64)),
    ("inception4e", (528, 256, 160, 320, 32, 128, 128)),
    ("inception5a", (832, 256, 160, 320, 32, 128, 128)),
    ("inception5b", (832, 384, 192, 384, 48, 128, 128)),
];

#[derive(Debug)]
pub struct GoogLeNet {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    /// 3a, 3b | 4a … 4e | 5a, 5b.
    inception: Vec<Inception>,
    fc: Linear,
}

pub fn build(p: &P) -> Result<Box<dyn Network>, BuildError> {
    let conv1 = basic(&p.sub("conv1"), 3, 64, 7, ConvCfg::default().stride(2).pad(3))?;
    let conv2 = same(&p.sub("conv2"), 64, 64, 1)?;
    let conv3 = same(&p.sub("conv3"), 64, 192, 3)?;
    let inception =
        MODULES.iter().map(|(name, channels)| Inception::load(&p.sub(name), *channels)).collect::<Result<_, _>>()?;
    let fc = Linear::load(&p.sub("fc"), 1024, None)?;
    Ok(Box::new(GoogLeNet { conv1, conv2, conv3, inception, fc }))
}

impl Split for GoogLeNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = max_pool(&self.conv1.forward(&transform_input(xs)), 3, 2, 0);
        let mut x = max_pool(&self.conv3.forward(&self.conv2.forward(&x)), 3, 2, 0);
        for (i, module) in self.inception.iter().enumerate() {
            x = module.forward(&x);
            match MODULES[i].0 {
                "inception3b" => x = max_pool(&x, 3, 2, 0),
                "inception4e" => x = max_pool(&x, 2, 2, 0),
                _ => {}
            }
        }
        x
    }

    fn head(&self, features: &Tensor) -> Tensor {
        // Dropout is the identity at inference.
        self.fc.forward(&features.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

impl Module for GoogLeNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for GoogLeNet {
    fn classes(&self) -> i64 {
        self.fc.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}
