//! VGG (Simonyan & Zisserman, 2014), as torchvision builds it, with or without batch norm.
use super::layers::{Act, Conv2d, ConvCfg, Linear, P};
use super::{BuildError, Network, Split};
use tch::{nn::Module, Tensor};

/// Grad-CAM's target layer: the last max pool of `features`.
pub const CAM_LAYER: &str = "features[-1]";

/// A 3×3 convolution with this many output channels, or a 2×2 max pool (`M`).
const M: i64 = 0;
/// torchvision's configuration "A".
pub const VGG11: &[i64] = &[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's configuration "B".
pub const VGG13: &[i64] = &[64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's configuration "D".
pub const VGG16: &[i64] = &[64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M];
/// torchvision's configuration "E".
pub const VGG19: &[i64] =
    &[64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M];

#[derive(Debug)]
pub struct Vgg {
    /// A 3×3 convolution (with its BatchNorm folded in, in the `_bn` variants) and ReLU, or (`None`) a max pool.
    features: Vec<Option<Conv2d>>,
    classifier: [Linear; 3],
}

pub fn build(p: &P, cfg: &[i64], batch_norm: bool) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let (mut features, mut index, mut cin) = (Vec::new(), 0, 3);
    for &c in cfg {
        if c == M {
            features.push(None);
            index += 1; // MaxPool2d
        } else {
            let cfg = ConvCfg::default().pad(1);
            let conv = if batch_norm {
                Conv2d::load_bn(&f.sub(index), &f.sub(index + 1), cin, c, [3, 3], cfg, 1e-5)?
            } else {
                Conv2d::load(&f.sub(index), cin, c, [3, 3], cfg)?
            };
            features.push(Some(conv.with_act(Act::Relu)));
            index += if batch_norm { 3 } else { 2 }; // Conv2d, [BatchNorm2d,] ReLU
            cin = c;
        }
    }
    let c = p.sub("classifier");
    let classifier = [
        Linear::load(&c.sub(0), cin * 7 * 7, Some(4096))?,
        Linear::load(&c.sub(3), 4096, Some(4096))?,
        Linear::load(&c.sub(6), 4096, None)?,
    ];
    Ok(Box::new(Vgg { features, classifier }))
}

impl Split for Vgg {
    fn features(&self, xs: &Tensor) -> Tensor {
        self.features.iter().fold(xs.shallow_clone(), |x, layer| match layer {
            Some(conv) => conv.forward(&x),
            None => x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
        })
    }

    fn head(&self, features: &Tensor) -> Tensor {
        // Dropout is the identity at inference.
        let x = super::quant::dequantized(features).adaptive_avg_pool2d([7, 7]).flatten(1, -1);
        let x = self.classifier[0].forward(&x).relu_();
        let x = self.classifier[1].forward(&x).relu_();
        self.classifier[2].forward(&x)
    }
}

impl Module for Vgg {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for Vgg {
    fn classes(&self) -> i64 {
        self.classifier[2].outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }
}
