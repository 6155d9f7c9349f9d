//! RegNet (Radosavovic et al., 2020, "Designing Network Design Spaces"), as torchvision builds it: networks
//! whose stage widths and depths follow from a few numbers (a quantized linear rule of the block index), made
//! of residual bottleneck blocks with a grouped 3×3 convolution; RegNetY adds squeeze-and-excitation to each
//! block, RegNetX does not.
use super::layers::{make_divisible, Act, ConvBn, ConvCfg, Gate, Linear, SqueezeExcite, P};
use super::{Accuracy, BuildError, Eval, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// torchvision's BatchNorm (`nn.BatchNorm2d`, eps 1e-5).
const EPS: f64 = 1e-5;

/// The stem's output channels.
const STEM_WIDTH: i64 = 32;

/// Grad-CAM's target layer: the last stage.
pub const CAM_LAYER: &str = "trunk_output[-1]";

/// What the family's entries share: RegNetX's layers all have int8 forms; RegNetY's squeeze-and-excitation
/// (a product with a sigmoid gate) does not.
const FAMILY_X: ModelSpec = ModelSpec { family: "RegNet", cam_layer: CAM_LAYER, int8: true, ..ModelSpec::BLANK };
const FAMILY_Y: ModelSpec = ModelSpec { int8: false, ..FAMILY_X };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "regnet_x_400mf",
        arch: "RegNetX-400MF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_400mf-62229a5f.pth"),
                accuracy: Accuracy { top1: 74.864, top5: Some(92.322) },
                eval: Eval::bilinear(232, 224),
                file_mb: 21.257,
                gmacs: Some(0.414),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_400mf-adf1edd5.pth"),
                accuracy: Accuracy { top1: 72.834, top5: Some(90.95) },
                eval: Eval::bilinear(256, 224),
                file_mb: 21.258,
                gmacs: Some(0.414),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_X_400MF),
        ..FAMILY_X
    },
    ModelSpec {
        name: "regnet_x_800mf",
        arch: "RegNetX-800MF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_800mf-94a99ebd.pth"),
                accuracy: Accuracy { top1: 77.522, top5: Some(93.826) },
                eval: Eval::bilinear(232, 224),
                file_mb: 27.945,
                gmacs: Some(0.8),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_800mf-ad17e45c.pth"),
                accuracy: Accuracy { top1: 75.212, top5: Some(92.348) },
                eval: Eval::bilinear(256, 224),
                file_mb: 27.945,
                gmacs: Some(0.8),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_X_800MF),
        ..FAMILY_X
    },
    ModelSpec {
        name: "regnet_x_1_6gf",
        arch: "RegNetX-1.6GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_1_6gf-a12f2b72.pth"),
                accuracy: Accuracy { top1: 79.668, top5: Some(94.922) },
                eval: Eval::bilinear(232, 224),
                file_mb: 35.339,
                gmacs: Some(1.603),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_1_6gf-e3633e7f.pth"),
                accuracy: Accuracy { top1: 77.04, top5: Some(93.44) },
                eval: Eval::bilinear(256, 224),
                file_mb: 35.339,
                gmacs: Some(1.603),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_X_1_6GF),
        ..FAMILY_X
    },
    ModelSpec {
        name: "regnet_x_3_2gf",
        arch: "RegNetX-3.2GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_3_2gf-7071aa85.pth"),
                accuracy: Accuracy { top1: 81.196, top5: Some(95.43) },
                eval: Eval::bilinear(232, 224),
                file_mb: 58.756,
                gmacs: Some(3.177),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_3_2gf-f342aeae.pth"),
                accuracy: Accuracy { top1: 78.364, top5: Some(93.992) },
                eval: Eval::bilinear(256, 224),
                file_mb: 58.756,
                gmacs: Some(3.177),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_X_3_2GF),
        ..FAMILY_X
    },
    ModelSpec {
        name: "regnet_x_8gf",
        arch: "RegNetX-8GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_8gf-2b70d774.pth"),
                accuracy: Accuracy { top1: 81.682, top5: Some(95.678) },
                eval: Eval::bilinear(232, 224),
                file_mb: 151.456,
                gmacs: Some(7.995),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_8gf-03ceed89.pth"),
                accuracy: Accuracy { top1: 79.344, top5: Some(94.686) },
                eval: Eval::bilinear(256, 224),
                file_mb: 151.456,
                gmacs: Some(7.995),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_X_8GF),
        ..FAMILY_X
    },
    ModelSpec {
        name: "regnet_x_16gf",
        arch: "RegNetX-16GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_16gf-ba3796d7.pth"),
                accuracy: Accuracy { top1: 82.716, top5: Some(96.196) },
                eval: Eval::bilinear(232, 224),
                file_mb: 207.627,
                gmacs: Some(15.941),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_16gf-2007eb11.pth"),
                accuracy: Accuracy { top1: 80.058, top5: Some(94.944) },
                eval: Eval::bilinear(256, 224),
                file_mb: 207.627,
                gmacs: Some(15.941),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_X_16GF),
        ..FAMILY_X
    },
    ModelSpec {
        name: "regnet_x_32gf",
        arch: "RegNetX-32GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_32gf-6eb8fdc6.pth"),
                accuracy: Accuracy { top1: 83.014, top5: Some(96.288) },
                eval: Eval::bilinear(232, 224),
                file_mb: 412.039,
                gmacs: Some(31.736),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_x_32gf-9d47f8d0.pth"),
                accuracy: Accuracy { top1: 80.622, top5: Some(95.248) },
                eval: Eval::bilinear(256, 224),
                file_mb: 412.039,
                gmacs: Some(31.736),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_X_32GF),
        ..FAMILY_X
    },
    ModelSpec {
        name: "regnet_y_400mf",
        arch: "RegNetY-400MF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_400mf-e6988f5f.pth"),
                accuracy: Accuracy { top1: 75.804, top5: Some(92.742) },
                eval: Eval::bilinear(232, 224),
                file_mb: 16.806,
                gmacs: Some(0.402),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_400mf-c65dace8.pth"),
                accuracy: Accuracy { top1: 74.046, top5: Some(91.716) },
                eval: Eval::bilinear(256, 224),
                file_mb: 16.806,
                gmacs: Some(0.402),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_Y_400MF),
        ..FAMILY_Y
    },
    ModelSpec {
        name: "regnet_y_800mf",
        arch: "RegNetY-800MF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_800mf-58fc7688.pth"),
                accuracy: Accuracy { top1: 78.828, top5: Some(94.502) },
                eval: Eval::bilinear(232, 224),
                file_mb: 24.774,
                gmacs: Some(0.834),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_800mf-1b27b58c.pth"),
                accuracy: Accuracy { top1: 76.42, top5: Some(93.136) },
                eval: Eval::bilinear(256, 224),
                file_mb: 24.774,
                gmacs: Some(0.834),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_Y_800MF),
        ..FAMILY_Y
    },
    ModelSpec {
        name: "regnet_y_1_6gf",
        arch: "RegNetY-1.6GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_1_6gf-0d7bc02a.pth"),
                accuracy: Accuracy { top1: 80.876, top5: Some(95.444) },
                eval: Eval::bilinear(232, 224),
                file_mb: 43.152,
                gmacs: Some(1.612),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_1_6gf-b11a554e.pth"),
                accuracy: Accuracy { top1: 77.95, top5: Some(93.966) },
                eval: Eval::bilinear(256, 224),
                file_mb: 43.152,
                gmacs: Some(1.612),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_Y_1_6GF),
        ..FAMILY_Y
    },
    ModelSpec {
        name: "regnet_y_3_2gf",
        arch: "RegNetY-3.2GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_3_2gf-9180c971.pth"),
                accuracy: Accuracy { top1: 81.982, top5: Some(95.972) },
                eval: Eval::bilinear(232, 224),
                file_mb: 74.567,
                gmacs: Some(3.176),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_3_2gf-b5a9779c.pth"),
                accuracy: Accuracy { top1: 78.948, top5: Some(94.576) },
                eval: Eval::bilinear(256, 224),
                file_mb: 74.567,
                gmacs: Some(3.176),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_Y_3_2GF),
        ..FAMILY_Y
    },
    ModelSpec {
        name: "regnet_y_8gf",
        arch: "RegNetY-8GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_8gf-dc2b1b54.pth"),
                accuracy: Accuracy { top1: 82.828, top5: Some(96.33) },
                eval: Eval::bilinear(232, 224),
                file_mb: 150.701,
                gmacs: Some(8.473),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_8gf-d0d0e4a8.pth"),
                accuracy: Accuracy { top1: 80.032, top5: Some(95.048) },
                eval: Eval::bilinear(256, 224),
                file_mb: 150.701,
                gmacs: Some(8.473),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_Y_8GF),
        ..FAMILY_Y
    },
    ModelSpec {
        name: "regnet_y_16gf",
        arch: "RegNetY-16GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_16gf-3e4a00f9.pth"),
                accuracy: Accuracy { top1: 82.886, top5: Some(96.328) },
                eval: Eval::bilinear(232, 224),
                file_mb: 319.49,
                gmacs: Some(15.912),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_16gf-9e6ed7dd.pth"),
                accuracy: Accuracy { top1: 80.424, top5: Some(95.24) },
                eval: Eval::bilinear(256, 224),
                file_mb: 319.49,
                gmacs: Some(15.912),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_E2E_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_16gf_swag-43afe44d.pth"),
                accuracy: Accuracy { top1: 86.012, top5: Some(98.054) },
                eval: Eval::bicubic(384, 384),
                file_mb: 319.49,
                gmacs: Some(46.735),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_LINEAR_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_16gf_lc_swag-f3ec0043.pth"),
                accuracy: Accuracy { top1: 83.976, top5: Some(97.244) },
                eval: Eval::bicubic(224, 224),
                file_mb: 319.49,
                gmacs: Some(15.912),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_Y_16GF),
        ..FAMILY_Y
    },
    ModelSpec {
        name: "regnet_y_32gf",
        arch: "RegNetY-32GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_V2",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_32gf-8db6d4b5.pth"),
                accuracy: Accuracy { top1: 83.368, top5: Some(96.498) },
                eval: Eval::bilinear(232, 224),
                file_mb: 554.076,
                gmacs: Some(32.28),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_32gf-4dee3f7a.pth"),
                accuracy: Accuracy { top1: 80.878, top5: Some(95.34) },
                eval: Eval::bilinear(256, 224),
                file_mb: 554.076,
                gmacs: Some(32.28),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_E2E_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_32gf_swag-04fdfa75.pth"),
                accuracy: Accuracy { top1: 86.838, top5: Some(98.362) },
                eval: Eval::bicubic(384, 384),
                file_mb: 554.076,
                gmacs: Some(94.826),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_LINEAR_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_32gf_lc_swag-e1583746.pth"),
                accuracy: Accuracy { top1: 84.622, top5: Some(97.48) },
                eval: Eval::bicubic(224, 224),
                file_mb: 554.076,
                gmacs: Some(32.28),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_Y_32GF),
        ..FAMILY_Y
    },
    ModelSpec {
        name: "regnet_y_128gf",
        arch: "RegNetY-128GF",
        weights: &[
            Weights {
                tag: "IMAGENET1K_SWAG_E2E_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_128gf_swag-c8ce3e52.pth"),
                accuracy: Accuracy { top1: 88.228, top5: Some(98.682) },
                eval: Eval::bicubic(384, 384),
                file_mb: 2461.564,
                gmacs: Some(374.57),
                ..Weights::TORCHVISION
            },
            Weights {
                tag: "IMAGENET1K_SWAG_LINEAR_V1",
                file: WeightsFile::published("https://download.pytorch.org/models/regnet_y_128gf_lc_swag-cbe8ce12.pth"),
                accuracy: Accuracy { top1: 86.068, top5: Some(97.844) },
                eval: Eval::bicubic(224, 224),
                file_mb: 2461.564,
                gmacs: Some(127.518),
                ..Weights::TORCHVISION
            },
        ],
        build: |p, _| build(&p.root(), &REGNET_Y_128GF),
        ..FAMILY_Y
    },
];

/// A RegNet's design: torchvision's `BlockParams.from_init_params` arguments.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The number of blocks, all stages together.
    pub depth: usize,
    /// The first block's width (a multiple of 8).
    pub w_0: i64,
    /// The slope of the widths' linear rule, in channels per block.
    pub w_a: f64,
    /// The ratio between consecutive stages' widths, before quantization.
    pub w_m: f64,
    /// The channels per group of the 3×3 convolutions.
    pub group_width: i64,
    /// The bottleneck's width as a fraction of the block's output width.
    pub bottleneck_multiplier: f64,
    /// Squeeze-and-excitation's width as a fraction of the block's input width: RegNetY's 0.25, none in
    /// RegNetX.
    pub se_ratio: Option<f64>,
}

const fn x(depth: usize, w_0: i64, w_a: f64, w_m: f64, group_width: i64) -> Config {
    Config { depth, w_0, w_a, w_m, group_width, bottleneck_multiplier: 1.0, se_ratio: None }
}

const fn y(depth: usize, w_0: i64, w_a: f64, w_m: f64, group_width: i64) -> Config {
    Config { se_ratio: Some(0.25), ..x(depth, w_0, w_a, w_m, group_width) }
}

pub const REGNET_X_400MF: Config = x(22, 24, 24.48, 2.54, 16);
pub const REGNET_X_800MF: Config = x(16, 56, 35.73, 2.28, 16);
pub const REGNET_X_1_6GF: Config = x(18, 80, 34.01, 2.25, 24);
pub const REGNET_X_3_2GF: Config = x(25, 88, 26.31, 2.25, 48);
pub const REGNET_X_8GF: Config = x(23, 80, 49.56, 2.88, 120);
pub const REGNET_X_16GF: Config = x(22, 216, 55.59, 2.1, 128);
pub const REGNET_X_32GF: Config = x(23, 320, 69.86, 2.0, 168);
pub const REGNET_Y_400MF: Config = y(16, 48, 27.89, 2.09, 8);
pub const REGNET_Y_800MF: Config = y(14, 56, 38.84, 2.4, 16);
pub const REGNET_Y_1_6GF: Config = y(27, 48, 20.71, 2.65, 24);
pub const REGNET_Y_3_2GF: Config = y(21, 80, 42.63, 2.66, 24);
pub const REGNET_Y_8GF: Config = y(17, 192, 76.82, 2.19, 56);
pub const REGNET_Y_16GF: Config = y(18, 200, 106.23, 2.48, 112);
pub const REGNET_Y_32GF: Config = y(20, 232, 115.89, 2.53, 232);
pub const REGNET_Y_128GF: Config = y(27, 456, 160.83, 2.52, 264);

/// One stage: `depth` blocks of `width` output channels, the first with stride 2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub width: i64,
    pub depth: usize,
    pub group_width: i64,
    pub bottleneck_multiplier: f64,
}

impl Config {
    /// The stages, as torchvision's `BlockParams.from_init_params` computes them: each block's width from the
    /// linear rule `w_0 + w_a·i`, quantized in log space to `w_0·w_m^k` and then to a multiple of 8, in float32
    /// as torchvision computes it with tensors; consecutive blocks of one width make a stage, whose width is then
    /// adjusted to a multiple of its group width (`_adjust_widths_groups_compatibilty`).
    pub fn stages(&self) -> Result<Vec<Stage>, BuildError> {
        const QUANT: f32 = 8.0;
        if self.w_a < 0.0 || self.w_0 <= 0 || self.w_m <= 1.0 || self.w_0 % 8 != 0 {
            return Err(BuildError("invalid RegNet settings".into()));
        }
        let (w_0, w_a, w_m) = (self.w_0 as f32, self.w_a as f32, self.w_m as f32);
        let log_w_m = self.w_m.ln() as f32;
        let block_widths = (0..self.depth).map(|i| {
            let capacity = ((i as f32 * w_a + w_0) / w_0).ln() / log_w_m;
            ((w_0 * w_m.powf(capacity.round_ties_even()) / QUANT).round_ties_even() * QUANT) as i64
        });
        // Runs of equal widths; as many stages as distinct widths (the same for the increasing widths of
        // w_a ≥ 0).
        let mut runs: Vec<(i64, usize)> = Vec::new();
        for w in block_widths {
            match runs.last_mut() {
                Some((width, depth)) if *width == w => *depth += 1,
                _ => runs.push((w, 1)),
            }
        }
        let mut distinct: Vec<i64> = runs.iter().map(|&(w, _)| w).collect();
        distinct.sort_unstable();
        distinct.dedup();
        runs.truncate(distinct.len());
        let b = self.bottleneck_multiplier;
        Ok(runs
            .into_iter()
            .map(|(width, depth)| {
                let bottleneck = (width as f64 * b) as i64;
                let group_width = self.group_width.min(bottleneck);
                let bottleneck = make_divisible(bottleneck as f64, group_width);
                Stage { width: (bottleneck as f64 / b) as i64, depth, group_width, bottleneck_multiplier: b }
            })
            .collect())
    }
}

/// torchvision's `ResBottleneckBlock`: `relu(proj(x) + f(x))`, `f` a 1×1 convolution, a grouped 3×3 one,
/// squeeze-and-excitation in RegNetY, a 1×1 convolution; `proj` a strided 1×1 convolution where the shape
/// changes, the identity elsewhere.
#[derive(Debug)]
struct Block {
    proj: Option<ConvBn>,
    a: ConvBn,
    b: ConvBn,
    se: Option<SqueezeExcite>,
    c: ConvBn,
}

impl Block {
    fn load(p: &P, cin: i64, stage: &Stage, stride: i64, se_ratio: Option<f64>) -> Result<Self, BuildError> {
        let cout = stage.width;
        let plain = ConvCfg::default();
        let proj = if cin != cout || stride != 1 {
            Some(ConvBn::load(&p.sub("proj"), ("0", "1"), cin, cout, [1, 1], plain.stride(stride), EPS)?)
        } else {
            None
        };
        let f = p.sub("f");
        // Python's round(), half to even.
        let width = (cout as f64 * stage.bottleneck_multiplier).round_ties_even() as i64;
        let grouped = plain.stride(stride).pad(1).groups(width / stage.group_width);
        let a = ConvBn::load(&f.sub("a"), ("0", "1"), cin, width, [1, 1], plain, EPS)?.with_act(Act::Relu);
        let b = ConvBn::load(&f.sub("b"), ("0", "1"), width, width, [3, 3], grouped, EPS)?.with_act(Act::Relu);
        let se = match se_ratio {
            // The squeeze is a fraction of the block's input width.
            Some(ratio) => {
                let squeeze = (ratio * cin as f64).round_ties_even() as i64;
                Some(SqueezeExcite::load(&f.sub("se"), width, squeeze, Act::Relu, Gate::Sigmoid)?)
            }
            None => None,
        };
        let c = ConvBn::load(&f.sub("c"), ("0", "1"), width, cout, [1, 1], plain, EPS)?;
        Ok(Block { proj, a, b, se, c })
    }
}

impl Module for Block {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let y = self.b.forward(&self.a.forward(xs));
        let y = self.se.as_ref().map_or(y.shallow_clone(), |se| se.forward(&y));
        let shortcut = self.proj.as_ref().map_or_else(|| xs.shallow_clone(), |proj| proj.forward(xs));
        self.c.forward_add(&y, &shortcut, true)
    }
}

#[derive(Debug)]
pub struct RegNet {
    stem: ConvBn,
    blocks: Vec<Block>,
    fc: Linear,
}

pub fn build(p: &P, cfg: &Config) -> Result<Box<dyn Network>, BuildError> {
    let stem =
        ConvBn::load(&p.sub("stem"), ("0", "1"), 3, STEM_WIDTH, [3, 3], ConvCfg::default().stride(2).pad(1), EPS)?
            .with_act(Act::Relu);
    let (mut blocks, mut cin) = (Vec::new(), STEM_WIDTH);
    let trunk = p.sub("trunk_output");
    for (s, stage) in cfg.stages()?.iter().enumerate() {
        let at = trunk.sub(format!("block{}", s + 1));
        for i in 0..stage.depth {
            let stride = if i == 0 { 2 } else { 1 };
            blocks.push(Block::load(&at.sub(format!("block{}-{i}", s + 1)), cin, stage, stride, cfg.se_ratio)?);
            cin = stage.width;
        }
    }
    let fc = Linear::load(&p.sub("fc"), cin, None)?;
    Ok(Box::new(RegNet { stem, blocks, fc }))
}

impl Split for RegNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        self.blocks.iter().fold(self.stem.forward(xs), |x, block| block.forward(&x))
    }

    fn head(&self, features: &Tensor) -> Tensor {
        self.fc.forward(&super::quant::dequantized(features).adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

impl Module for RegNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for RegNet {
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

    /// The stages torchvision 0.28 builds: `(width, depth, group_width)` for each of `BlockParams`' stages, as
    /// each builder makes them.
    #[test]
    fn stages_are_torchvisions() {
        type Stages = &'static [(i64, usize, i64)];
        #[rustfmt::skip]
        let expected: [(&Config, Stages); 15] = [
            (&REGNET_X_400MF, &[(32, 1, 16), (64, 2, 16), (160, 7, 16), (400, 12, 16)]),
            (&REGNET_X_800MF, &[(64, 1, 16), (128, 3, 16), (288, 7, 16), (672, 5, 16)]),
            (&REGNET_X_1_6GF, &[(72, 2, 24), (168, 4, 24), (408, 10, 24), (912, 2, 24)]),
            (&REGNET_X_3_2GF, &[(96, 2, 48), (192, 6, 48), (432, 15, 48), (1008, 2, 48)]),
            (&REGNET_X_8GF, &[(80, 2, 80), (240, 5, 120), (720, 15, 120), (1920, 1, 120)]),
            (&REGNET_X_16GF, &[(256, 2, 128), (512, 6, 128), (896, 13, 128), (2048, 1, 128)]),
            (&REGNET_X_32GF, &[(336, 2, 168), (672, 7, 168), (1344, 13, 168), (2520, 1, 168)]),
            (&REGNET_Y_400MF, &[(48, 1, 8), (104, 3, 8), (208, 6, 8), (440, 6, 8)]),
            (&REGNET_Y_800MF, &[(64, 1, 16), (144, 3, 16), (320, 8, 16), (784, 2, 16)]),
            (&REGNET_Y_1_6GF, &[(48, 2, 24), (120, 6, 24), (336, 17, 24), (888, 2, 24)]),
            (&REGNET_Y_3_2GF, &[(72, 2, 24), (216, 5, 24), (576, 13, 24), (1512, 1, 24)]),
            (&REGNET_Y_8GF, &[(224, 2, 56), (448, 4, 56), (896, 10, 56), (2016, 1, 56)]),
            (&REGNET_Y_16GF, &[(224, 2, 112), (448, 4, 112), (1232, 11, 112), (3024, 1, 112)]),
            (&REGNET_Y_32GF, &[(232, 2, 232), (696, 5, 232), (1392, 12, 232), (3712, 1, 232)]),
            (&REGNET_Y_128GF, &[(528, 2, 264), (1056, 7, 264), (2904, 17, 264), (7392, 1, 264)]),
        ];
        for (cfg, stages) in expected {
            let ours: Vec<(i64, usize, i64)> =
                cfg.stages().unwrap().iter().map(|s| (s.width, s.depth, s.group_width)).collect();
            assert_eq!(ours, stages, "{cfg:?}");
        }
        let invalid = Config { w_0: 20, ..REGNET_X_400MF };
        assert!(invalid.stages().is_err());
    }
}
