//! AlexNet (Krizhevsky et al., 2012, "ImageNet Classification with Deep Convolutional Neural Networks"), as
//! torchvision builds it: the single-GPU variant of "One weird trick for parallelizing convolutional neural
//! networks" (Krizhevsky, 2014), five convolutions with ReLU and three max pools, then three fully connected
//! layers. Like VGG without batch norm.
use super::layers::{Act, Conv2d, ConvCfg, Linear, P};
use super::{Accuracy, BuildError, Eval, InputSizes, ModelSpec, Network, Split, Weights, WeightsFile};
use tch::{nn::Module, Tensor};

/// Grad-CAM's target layer: the last max pool of `features`, as for VGG.
pub const CAM_LAYER: &str = "features[-1]";

/// What the family's entries share.
const FAMILY: ModelSpec = ModelSpec { family: "AlexNet", cam_layer: CAM_LAYER, int8: true, ..ModelSpec::BLANK };

/// The family's entries in the registry.
pub(super) const MODELS: &[ModelSpec] = &[ModelSpec {
    name: "alexnet",
    arch: "AlexNet",
    weights: &[Weights {
        tag: "IMAGENET1K_V1",
        file: WeightsFile::published("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
        accuracy: Accuracy { top1: 56.522, top5: Some(79.066) },
        eval: Eval::bilinear(256, 224),
        file_mb: 233.087,
        gmacs: Some(0.714),
        ..Weights::TORCHVISION
    }],
    build: |p, _| build(&p.root()),
    ..FAMILY
}];

/// One layer of `features`: a convolution with its ReLU fused, or a 3×3 max pool with stride 2.
#[derive(Debug)]
enum Feature {
    Conv(Conv2d),
    Pool,
}

#[derive(Debug)]
pub struct AlexNet {
    features: Vec<Feature>,
    classifier: [Linear; 3],
}

pub fn build(p: &P) -> Result<Box<dyn Network>, BuildError> {
    let f = p.sub("features");
    let conv = |index: usize, cin: i64, cout: i64, k: i64, cfg: ConvCfg| -> Result<Feature, BuildError> {
        Ok(Feature::Conv(Conv2d::load(&f.sub(index), cin, cout, [k, k], cfg)?.with_act(Act::Relu)))
    };
    let plain = ConvCfg::default();
    // torchvision's indices: each convolution is followed by its ReLU.
    let features = vec![
        conv(0, 3, 64, 11, plain.stride(4).pad(2))?,
        Feature::Pool,
        conv(3, 64, 192, 5, plain.pad(2))?,
        Feature::Pool,
        conv(6, 192, 384, 3, plain.pad(1))?,
        conv(8, 384, 256, 3, plain.pad(1))?,
        conv(10, 256, 256, 3, plain.pad(1))?,
        Feature::Pool,
    ];
    let c = p.sub("classifier");
    // Dropout at 0 and 3.
    let classifier = [
        Linear::load(&c.sub(1), 256 * 6 * 6, Some(4096))?,
        Linear::load(&c.sub(4), 4096, Some(4096))?,
        Linear::load(&c.sub(6), 4096, None)?,
    ];
    Ok(Box::new(AlexNet { features, classifier }))
}

impl Split for AlexNet {
    fn features(&self, xs: &Tensor) -> Tensor {
        self.features.iter().fold(xs.shallow_clone(), |x, layer| match layer {
            Feature::Conv(conv) => conv.forward(&x),
            Feature::Pool => super::layers::max_pool2d(&x, 3, 2, 0, false),
        })
    }

    fn head(&self, features: &Tensor) -> Tensor {
        // Dropout is the identity at inference.
        let x = super::quant::dequantized(features).adaptive_avg_pool2d([6, 6]).flatten(1, -1);
        let x = self.classifier[0].forward(&x).relu_();
        let x = self.classifier[1].forward(&x).relu_();
        self.classifier[2].forward(&x)
    }
}

impl Module for AlexNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.head(&self.features(xs))
    }
}

impl Network for AlexNet {
    fn classes(&self) -> i64 {
        self.classifier[2].outputs()
    }

    fn split(&self) -> Option<&dyn Split> {
        Some(self)
    }

    /// The stride-4 11×11 convolution and three unpadded pools leave nothing below 63×63 (torchvision's
    /// `min_size`).
    fn input_sizes(&self) -> InputSizes {
        InputSizes::AtLeast(63)
    }
}
