//! ResNet with bottleneck blocks (He et al., 2015), as torchvision builds it: the stride sits on the 3×3
//! convolution ("v1.5").
use super::layers::{ConvBn, ConvCfg, Linear, P};
use super::{BuildError, Network};
use tch::{nn::Module, Tensor};

const EPS: f64 = 1e-5;
const EXPANSION: i64 = 4;
/// Blocks per stage of ResNet-50.
pub const RESNET50: [usize; 4] = [3, 4, 6, 3];

#[derive(Debug)]
struct Bottleneck {
    reduce: ConvBn,
    conv: ConvBn,
    expand: ConvBn,
    downsample: Option<ConvBn>,
}

impl Bottleneck {
    fn load(p: &P, cin: i64, width: i64, stride: i64) -> Result<Self, BuildError> {
        let cout = width * EXPANSION;
        let plain = ConvCfg::default();
        let downsample = if stride != 1 || cin != cout {
            Some(ConvBn::load(&p.sub("downsample"), ("0", "1"), cin, cout, [1, 1], plain.stride(stride), EPS)?)
        } else {
            None
        };
        Ok(Bottleneck {
            reduce: ConvBn::load(p, ("conv1", "bn1"), cin, width, [1, 1], plain, EPS)?,
            conv: ConvBn::load(p, ("conv2", "bn2"), width, width, [3, 3], plain.stride(stride).pad(1), EPS)?,
            expand: ConvBn::load(p, ("conv3", "bn3"), width, cout, [1, 1], plain, EPS)?,
            downsample,
        })
    }
}

impl Module for Bottleneck {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let y = self.reduce.forward(xs).relu();
        let y = self.conv.forward(&y).relu();
        let y = self.expand.forward(&y);
        let identity = self.downsample.as_ref().map_or_else(|| xs.shallow_clone(), |d| d.forward(xs));
        (y + identity).relu()
    }
}

#[derive(Debug)]
pub struct ResNet {
    stem: ConvBn,
    blocks: Vec<Bottleneck>,
    fc: Linear,
}

pub fn build(p: &P, layers: [usize; 4]) -> Result<Box<dyn Network>, BuildError> {
    let stem = ConvBn::load(p, ("conv1", "bn1"), 3, 64, [7, 7], ConvCfg::default().stride(2).pad(3), EPS)?;
    let (mut blocks, mut cin) = (Vec::new(), 64);
    for (stage, &count) in layers.iter().enumerate() {
        let width = 64 << stage;
        for i in 0..count {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            blocks.push(Bottleneck::load(&p.sub(format!("layer{}", stage + 1)).sub(i), cin, width, stride)?);
            cin = width * EXPANSION;
        }
    }
    let fc = Linear::load(&p.sub("fc"), cin, None)?;
    Ok(Box::new(ResNet { stem, blocks, fc }))
}

impl Module for ResNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut x = self.stem.forward(xs).relu().max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for block in &self.blocks {
            x = block.forward(&x);
        }
        self.fc.forward(&x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

impl Network for ResNet {
    fn classes(&self) -> i64 {
        self.fc.outputs()
    }
}
