//! Inception v3 (Szegedy et al., 2015), as torchvision builds it, with `transform_input` on, as
//! `inception_v3(pretrained=True)` sets it and so as the seed's model runs. The auxiliary classifier only
//! matters in training; its weights are accepted and left unused.
use super::layers::{Act, ConvBn, ConvCfg, Linear, Params, P};
use super::{Accuracy, BuildError, Eval, InputSizes, ModelSpec, Network, Split, Weights, WeightsFile};
use crate::config::{MEAN, STD};
use tch::{nn::Module, Tensor};

/// Grad-CAM's target layer: the last Inception block.
pub const CAM_LAYER: &str = "Mixed_7c";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "Inception", cam_layer: CAM_LAYER, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[ModelSpec {
    name: "inception_v3",
    arch: "Inception v3 with transform_input (as its weights are built)",
    weights: &[Weights {
        tag: "IMAGENET1K_V1",
        aliases: &["inception"],
        seed_size: Some(224),
        file: WeightsFile::published("https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"),
        accuracy: Accuracy { top1: 77.294, top5: Some(93.45) },
        eval: Eval::bilinear(342, 299),
        file_mb: 103.903,
        gmacs: Some(5.713),
        ..Weights::TORCHVISION
    }],
    unused: UNUSED,
    build: |p, _| build(p),
    ..FAMILY
}];

/// Keys under this prefix are allowed in a file and not used.
pub const UNUSED: &[&str] = &["AuxLogits."];

/// torchvision's BasicConv2d: convolution without bias, BatchNorm (eps 1e-3), ReLU.
#[derive(Debug)]
struct Basic(ConvBn);

impl Basic {
    fn load(p: &P, name: &str, cin: i64, cout: i64, kernel: [i64; 2], cfg: ConvCfg) -> Result<Self, BuildError> {
        Ok(Basic(ConvBn::load(&p.sub(name), ("conv", "bn"), cin, cout, kernel, cfg, 1e-3)?.with_act(Act::Relu)))
    }
    fn k(p: &P, name: &str, cin: i64, cout: i64, k: i64) -> Result<Self, BuildError> {
        Self::load(p, name, cin, cout, [k, k], ConvCfg::default().pad(k / 2))
    }
    /// A 1×7 or 7×1 (1×3, 3×1) factorised convolution with "same" padding.
    fn rect(p: &P, name: &str, cin: i64, cout: i64, kernel: [i64; 2]) -> Result<Self, BuildError> {
        Self::load(p, name, cin, cout, kernel, ConvCfg::default().pad2(kernel[0] / 2, kernel[1] / 2))
    }
    /// An unpadded convolution with stride 2.
    fn reduce(p: &P, name: &str, cin: i64, cout: i64) -> Result<Self, BuildError> {
        Self::load(p, name, cin, cout, [3, 3], ConvCfg::default().stride(2))
    }
    fn chain(xs: &Tensor, convs: &[Basic]) -> Tensor {
        convs.iter().fold(xs.shallow_clone(), |x, c| c.forward(&x))
    }
}

impl Module for Basic {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.0.forward(xs)
    }
}

fn avg3(xs: &Tensor) -> Tensor {
    // torchvision: F.avg_pool2d(x, 3, stride=1, padding=1), count_include_pad=True.
    xs.avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None)
}

fn max3(xs: &Tensor) -> Tensor {
    super::layers::max_pool2d(xs, 3, 2, 0, false)
}

#[derive(Debug)]
enum Mixed {
    /// InceptionA: 1×1 | 5×5 | double 3×3 | pool.
    A { b1: Basic, b5: [Basic; 2], b3: [Basic; 3], pool: Basic },
    /// InceptionB: strided 3×3 | double 3×3 | max pool.
    B { b3: Basic, b3dbl: [Basic; 3] },
    /// InceptionC: 1×1 | 7×7 factorised | double 7×7 factorised | pool.
    C { b1: Basic, b7: [Basic; 3], b7dbl: [Basic; 5], pool: Basic },
    /// InceptionD: 3×3 reduction | 7×7×3 reduction | max pool.
    D { b3: [Basic; 2], b7: [Basic; 4] },
    /// InceptionE: 1×1 | 3×3 split | double 3×3 split | pool.
    E { b1: Basic, b3: Basic, b3_split: [Basic; 2], dbl: [Basic; 2], dbl_split: [Basic; 2], pool: Basic },
}

impl Mixed {
    fn a(p: &P, cin: i64, pool: i64) -> Result<Self, BuildError> {
        Ok(Mixed::A {
            b1: Basic::k(p, "branch1x1", cin, 64, 1)?,
            b5: [Basic::k(p, "branch5x5_1", cin, 48, 1)?, Basic::k(p, "branch5x5_2", 48, 64, 5)?],
            b3: [
                Basic::k(p, "branch3x3dbl_1", cin, 64, 1)?,
                Basic::k(p, "branch3x3dbl_2", 64, 96, 3)?,
                Basic::k(p, "branch3x3dbl_3", 96, 96, 3)?,
            ],
            pool: Basic::k(p, "branch_pool", cin, pool, 1)?,
        })
    }

    fn b(p: &P, cin: i64) -> Result<Self, BuildError> {
        Ok(Mixed::B {
            b3: Basic::reduce(p, "branch3x3", cin, 384)?,
            b3dbl: [
                Basic::k(p, "branch3x3dbl_1", cin, 64, 1)?,
                Basic::k(p, "branch3x3dbl_2", 64, 96, 3)?,
                Basic::reduce(p, "branch3x3dbl_3", 96, 96)?,
            ],
        })
    }

    fn c(p: &P, cin: i64, c7: i64) -> Result<Self, BuildError> {
        let (row, col) = ([1, 7], [7, 1]);
        Ok(Mixed::C {
            b1: Basic::k(p, "branch1x1", cin, 192, 1)?,
            b7: [
                Basic::k(p, "branch7x7_1", cin, c7, 1)?,
                Basic::rect(p, "branch7x7_2", c7, c7, row)?,
                Basic::rect(p, "branch7x7_3", c7, 192, col)?,
            ],
            b7dbl: [
                Basic::k(p, "branch7x7dbl_1", cin, c7, 1)?,
                Basic::rect(p, "branch7x7dbl_2", c7, c7, col)?,
                Basic::rect(p, "branch7x7dbl_3", c7, c7, row)?,
                Basic::rect(p, "branch7x7dbl_4", c7, c7, col)?,
                Basic::rect(p, "branch7x7dbl_5", c7, 192, row)?,
            ],
            pool: Basic::k(p, "branch_pool", cin, 192, 1)?,
        })
    }

    fn d(p: &P, cin: i64) -> Result<Self, BuildError> {
        Ok(Mixed::D {
            b3: [Basic::k(p, "branch3x3_1", cin, 192, 1)?, Basic::reduce(p, "branch3x3_2", 192, 320)?],
            b7: [
                Basic::k(p, "branch7x7x3_1", cin, 192, 1)?,
                Basic::rect(p, "branch7x7x3_2", 192, 192, [1, 7])?,
                Basic::rect(p, "branch7x7x3_3", 192, 192, [7, 1])?,
                Basic::reduce(p, "branch7x7x3_4", 192, 192)?,
            ],
        })
    }

    fn e(p: &P, cin: i64) -> Result<Self, BuildError> {
        Ok(Mixed::E {
            b1: Basic::k(p, "branch1x1", cin, 320, 1)?,
            b3: Basic::k(p, "branch3x3_1", cin, 384, 1)?,
            b3_split: [
                Basic::rect(p, "branch3x3_2a", 384, 384, [1, 3])?,
                Basic::rect(p, "branch3x3_2b", 384, 384, [3, 1])?,
            ],
            dbl: [Basic::k(p, "branch3x3dbl_1", cin, 448, 1)?, Basic::k(p, "branch3x3dbl_2", 448, 384, 3)?],
            dbl_split: [
                Basic::rect(p, "branch3x3dbl_3a", 384, 384, [1, 3])?,
                Basic::rect(p, "branch3x3dbl_3b", 384, 384, [3, 1])?,
            ],
            pool: Basic::k(p, "branch_pool", cin, 192, 1)?,
        })
    }
}

impl Module for Mixed {
    fn forward(&self, x: &Tensor) -> Tensor {
        let branches = match self {
            Mixed::A { b1, b5, b3, pool } => {
                vec![b1.forward(x), Basic::chain(x, b5), Basic::chain(x, b3), pool.forward(&avg3(x))]
            }
            Mixed::B { b3, b3dbl } => vec![b3.forward(x), Basic::chain(x, b3dbl), max3(x)],
            Mixed::C { b1, b7, b7dbl, pool } => {
                vec![b1.forward(x), Basic::chain(x, b7), Basic::chain(x, b7dbl), pool.forward(&avg3(x))]
            }
            Mixed::D { b3, b7 } => vec![Basic::chain(x, b3), Basic::chain(x, b7), max3(x)],
            Mixed::E { b1, b3, b3_split, dbl, dbl_split, pool } => {
                let y = b3.forward(x);
                let z = Basic::chain(x, dbl);
                vec![
                    b1.forward(x),
                    Tensor::cat(&[b3_split[0].forward(&y), b3_split[1].forward(&y)], 1),
                    Tensor::cat(&[dbl_split[0].forward(&z), dbl_split[1].forward(&z)], 1),
                    pool.forward(&avg3(x)),
                ]
            }
        };
        Tensor::cat(&branches, 1)
    }
}

#[derive(Debug)]
pub struct InceptionV3 {
    stem: [Basic; 5],
    mixed: Vec<Mixed>,
    fc: Linear,
}

pub fn build(params: &Params) -> Result<Box<dyn Network>, BuildError> {
    let p = params.root();
    let stem = [
        Basic::reduce(&p, "Conv2d_1a_3x3", 3, 32)?,
        Basic::load(&p, "Conv2d_2a_3x3", 32, 32, [3, 3], ConvCfg::default())?,
        Basic::k(&p, "Conv2d_2b_3x3", 32, 64, 3)?,
        Basic::k(&p, "Conv2d_3b_1x1", 64, 80, 1)?,
        Basic::load(&p, "Conv2d_4a_3x3", 80, 192, [3, 3], ConvCfg::default())?,
    ];
    let mixed = vec![
        Mixed::a(&p.sub("Mixed_5b"), 192, 32)?,
        Mixed::a(&p.sub("Mixed_5c"), 256, 64)?,
        Mixed::a(&p.sub("Mixed_5d"), 288, 64)?,
        Mixed::b(&p.sub("Mixed_6a"), 288)?,
        Mixed::c(&p.sub("Mixed_6b"), 768, 128)?,
        Mixed::c(&p.sub("Mixed_6c"), 768, 160)?,
        Mixed::c(&p.sub("Mixed_6d"), 768, 160)?,
        Mixed::c(&p.sub("Mixed_6e"), 768, 192)?,
        Mixed::d(&p.sub("Mixed_7a"), 768)?,
        Mixed::e(&p.sub("Mixed_7b"), 1280)?,
        Mixed::e(&p.sub("Mixed_7c"), 2048)?,
    ];
    let fc = Linear::load(&p.sub("fc"), 2048, None)?;
    Ok(Box::new(InceptionV3 { stem, mixed, fc }))
}

/// torchvision's `_transform_input` (Inception v3's and GoogLeNet's): the weights were trained on inputs
/// normalised with mean = std = 0.5, so the ImageNet-normalised input is re-mapped per channel, with the same
/// arithmetic.
pub(super) fn transform_input(xs: &Tensor) -> Tensor {
    let channels: Vec<Tensor> =
        (0..3).map(|c| xs.select(1, c as i64).unsqueeze(1) * (STD[c] / 0.5) + (MEAN[c] - 0.5) / 0.5).collect();
    Tensor::cat(&channels, 1)
}

impl Split for InceptionV3 {
    fn features(&self, xs: &Tensor) -> Tensor {
        let x = transform_input(xs);
        let [c1a, c2a, c2b, c3b, c4a] = &self.stem;
        let x = max3(&c2b.forward(&c2a.forward(&c1a.forward(&x))));
        let x = max3(&c4a.forward(&c3b.forward(&x)));
        self.mixed.iter().fold(x, |x, m| m.forward(&x))
    }

    fn head(&self, features: &Tensor) -> Tensor {
        // Dropout is the identity at inference.
        self.fc.forward(&features.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

impl Module for InceptionV3 {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for InceptionV3 {
    fn classes(&self) -> i64 {
        self.fc.outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }

    /// Its stride-2 3×3 convolutions without padding leave nothing below 75×75.
    fn input_sizes(&self) -> InputSizes {
        InputSizes::AtLeast(75)
    }
}
