//! The building blocks of every family, made straight from loaded tensors.
//!
//! tch's `nn::conv2d` and friends create their parameters in a `VarStore` with a random initialisation that
//! loading then overwrites (1.3 s of initialisation for VGG16). Here a layer takes its tensors out of [`Params`]
//! by `state_dict` name, checking each shape, so nothing is initialised or copied twice. The layers implement
//! `tch::nn::Module`, so the families compose them like any tch module.
//!
//! Two things are done once here so that inference does less (measurements in BENCHMARKS.md): a BatchNorm that
//! follows a convolution is folded into that convolution's weights and bias, and on the CPU convolution weights
//! are stored channels-last, the layout oneDNN's convolutions run fastest in.
use super::BuildError;
use crate::weights::NamedTensors;
use std::cell::RefCell;
use tch::{nn::Module, Device, Kind, Tensor};

/// The loaded tensors, handed out once each by name.
pub struct Params {
    tensors: RefCell<NamedTensors>,
    device: Device,
    /// The floating-point type the layers compute in (Float, or Half for `--half`).
    kind: Kind,
    /// Unit tests only: every tensor the model asks for and the file lacks is made up (zeros of the shape
    /// asked for) and its name and shape recorded, so that a model builds without a weights file.
    #[cfg(test)]
    made_up: Option<RefCell<Vec<MadeUp>>>,
}

/// A tensor made up in unit tests: its name and shape.
#[cfg(test)]
type MadeUp = (String, Vec<i64>);

impl Params {
    pub fn new(tensors: NamedTensors, device: Device, kind: Kind) -> Self {
        Params {
            tensors: RefCell::new(tensors),
            device,
            kind,
            #[cfg(test)]
            made_up: None,
        }
    }

    /// No tensors: each one the model asks for is made up, zeros of the shape it asks for (a `-1`, the
    /// classifier's size, becomes 1000). [`Params::made_up_tensors`] lists them afterwards.
    #[cfg(test)]
    pub fn made_up(device: Device) -> Self {
        Params { made_up: Some(RefCell::default()), ..Params::new(NamedTensors::new(), device, Kind::Float) }
    }

    /// The tensors made up so far, as (name, shape), in the order the model asked for them.
    #[cfg(test)]
    pub fn made_up_tensors(&self) -> Vec<MadeUp> {
        self.made_up.as_ref().map_or_else(Vec::new, |m| m.borrow().clone())
    }

    pub fn root(&self) -> P<'_> {
        P { params: self, prefix: String::new() }
    }

    /// Renames keys, e.g. from a legacy naming scheme: `rename` returns the new name, or `None` to keep it.
    pub fn rename_keys(&self, rename: impl Fn(&str) -> Option<String>) {
        let mut tensors = self.tensors.borrow_mut();
        let renames: Vec<(String, String)> =
            tensors.keys().filter_map(|k| rename(k).map(|new| (k.clone(), new))).collect();
        for (old, new) in renames {
            let t = tensors.remove(&old).expect("key listed above");
            tensors.insert(new, t);
        }
    }

    /// Fails if the file has parameters the model did not take: weights for a bigger or different
    /// architecture. BatchNorm's `num_batches_tracked` counters and keys under `ignore` (parts used only in
    /// training) don't count.
    pub fn finish(self, ignore: &[&str]) -> Result<(), BuildError> {
        let tensors = self.tensors.into_inner();
        let mut unused: Vec<&String> = tensors
            .keys()
            .filter(|k| !k.ends_with("num_batches_tracked") && !ignore.iter().any(|p| k.starts_with(p)))
            .collect();
        unused.sort();
        match unused.first() {
            None => Ok(()),
            Some(first) => Err(BuildError(format!(
                "has {} tensors that the model does not use, e.g. `{first}` (weights for another architecture?)",
                unused.len()
            ))),
        }
    }
}

/// A position in the parameter tree, like torchvision's module path (`features.denseblock1.denselayer1`).
#[derive(Clone)]
pub struct P<'a> {
    params: &'a Params,
    prefix: String,
}

impl<'a> P<'a> {
    pub fn sub(&self, name: impl std::fmt::Display) -> P<'a> {
        let prefix = if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) };
        P { params: self.params, prefix }
    }

    fn key(&self, name: &str) -> String {
        self.sub(name).prefix
    }

    /// Takes the float tensor `name`, whose shape must be `shape` (`-1` matches any size), onto the device, in
    /// the network's floating-point type.
    pub fn take(&self, name: &str, shape: &[i64]) -> Result<Tensor, BuildError> {
        let key = self.key(name);
        let tensor = self.params.tensors.borrow_mut().remove(&key);
        #[cfg(test)]
        let tensor = tensor.or_else(|| self.make_up(&key, shape));
        let tensor = tensor.ok_or_else(|| {
            BuildError(format!("has no `{key}`, which the model needs (weights for another architecture?)"))
        })?;
        let size = tensor.size();
        let fits = size.len() == shape.len() && size.iter().zip(shape).all(|(&s, &e)| e == -1 || s == e);
        if !fits {
            return Err(BuildError(format!("has `{key}` of shape {size:?} where the model needs {shape:?}")));
        }
        if !tensor.is_floating_point() {
            return Err(BuildError(format!("has `{key}` of type {:?} where the model needs floats", tensor.kind())));
        }
        // NaN or infinite parameters give NaN probabilities, not an error: refuse them here.
        if !all_finite(&tensor) {
            return Err(BuildError(format!("has NaN or infinite values in `{key}` (corrupt weights)")));
        }
        Ok(tensor.to_device(self.params.device).to_kind(self.params.kind).contiguous())
    }

    /// In [`Params::made_up`]'s mode, zeros of `shape` (`-1` read as 1000), recorded under `key`.
    #[cfg(test)]
    fn make_up(&self, key: &str, shape: &[i64]) -> Option<Tensor> {
        let shape: Vec<i64> = shape.iter().map(|&s| if s == -1 { 1000 } else { s }).collect();
        self.params.made_up.as_ref()?.borrow_mut().push((key.to_string(), shape.clone()));
        Some(Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu)))
    }

    /// A convolution weight in the layout its device computes fastest with: channels-last on the CPU.
    fn conv_layout(&self, weight: Tensor) -> Tensor {
        if self.params.device == Device::Cpu {
            channels_last(&weight)
        } else {
            weight
        }
    }
}

/// The same 4-D tensor laid out channels-last (NHWC in memory, still indexed N, C, H, W). Given one, libtorch's
/// CPU convolutions, pooling, ReLU, additions and concatenations return channels-last tensors too, so a network
/// stays in that layout from its input on. A tensor already in it is returned as it is.
pub fn channels_last(t: &Tensor) -> Tensor {
    let nhwc = t.permute([0, 2, 3, 1]);
    if nhwc.is_contiguous() {
        t.shallow_clone()
    } else {
        nhwc.contiguous().permute([0, 3, 1, 2])
    }
}

/// No NaN or infinity in `t`: its minimum and maximum are finite (both are NaN if any element is), found in
/// one pass without the boolean copy that `isfinite().all()` would allocate.
fn all_finite(t: &Tensor) -> bool {
    if t.numel() == 0 {
        return true;
    }
    match t.f_aminmax(None, false) {
        Ok((min, max)) => [min, max].iter().all(|v| v.double_value(&[]).is_finite()),
        Err(_) => false,
    }
}

/// Convolution hyper-parameters, torchvision's defaults to start with.
#[derive(Debug, Clone, Copy)]
pub struct ConvCfg {
    pub stride: [i64; 2],
    pub padding: [i64; 2],
    pub groups: i64,
    pub bias: bool,
}

impl Default for ConvCfg {
    fn default() -> Self {
        ConvCfg { stride: [1, 1], padding: [0, 0], groups: 1, bias: true }
    }
}

impl ConvCfg {
    pub fn stride(self, s: i64) -> Self {
        ConvCfg { stride: [s, s], ..self }
    }
    pub fn pad(self, p: i64) -> Self {
        self.pad2(p, p)
    }
    pub fn pad2(self, ph: i64, pw: i64) -> Self {
        ConvCfg { padding: [ph, pw], ..self }
    }
    pub fn groups(self, groups: i64) -> Self {
        ConvCfg { groups, ..self }
    }
    pub fn no_bias(self) -> Self {
        ConvCfg { bias: false, ..self }
    }
}

#[derive(Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub cfg: ConvCfg,
}

impl Conv2d {
    pub fn load(p: &P, cin: i64, cout: i64, kernel: [i64; 2], cfg: ConvCfg) -> Result<Self, BuildError> {
        let weight = p.take("weight", &[cout, cin / cfg.groups, kernel[0], kernel[1]])?;
        let bias = if cfg.bias { Some(p.take("bias", &[cout])?) } else { None };
        Ok(Conv2d { weight: p.conv_layout(weight), bias, cfg })
    }

    pub fn out_channels(&self) -> i64 {
        self.weight.size()[0]
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.conv2d(&self.weight, self.bias.as_ref(), self.cfg.stride, self.cfg.padding, [1, 1], self.cfg.groups)
    }
}

#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    eps: f64,
}

impl BatchNorm2d {
    pub fn load(p: &P, channels: i64, eps: f64) -> Result<Self, BuildError> {
        Ok(BatchNorm2d {
            weight: p.take("weight", &[channels])?,
            bias: p.take("bias", &[channels])?,
            running_mean: p.take("running_mean", &[channels])?,
            running_var: p.take("running_var", &[channels])?,
            eps,
        })
    }

    /// The convolution `conv` followed by this BatchNorm, as one convolution: at inference BatchNorm is
    /// `(y - mean) * gamma / sqrt(var + eps) + beta`, an affine map per channel, which goes into the
    /// convolution's weights and bias. The per-channel factors are computed in float64, so each folded weight
    /// is rounded once, as in PyTorch's own `fuse_conv_bn_eval`.
    pub fn fold_into(self, conv: Conv2d, p: &P) -> Conv2d {
        let kind = conv.weight.kind();
        let double = |t: &Tensor| t.to_kind(Kind::Double);
        let scale = double(&self.weight) / (double(&self.running_var) + self.eps).sqrt();
        let weight = &conv.weight * scale.to_kind(kind).view([-1, 1, 1, 1]);
        let bias = conv.bias.as_ref().map_or_else(|| scale.zeros_like(), double);
        let bias = (bias - double(&self.running_mean)) * &scale + double(&self.bias);
        Conv2d { weight: p.conv_layout(weight), bias: Some(bias.to_kind(kind)), cfg: conv.cfg }
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            false,
            0.1,
            self.eps,
            true,
        )
    }
}

/// A fully connected layer. The classifier's output size is read from the weights (`outputs: None`), so a
/// fine-tuned head with another number of classes loads as it is.
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn load(p: &P, inputs: i64, outputs: Option<i64>) -> Result<Self, BuildError> {
        let weight = p.take("weight", &[outputs.unwrap_or(-1), inputs])?;
        let bias = p.take("bias", &[weight.size()[0]])?;
        Ok(Linear { weight, bias })
    }

    pub fn outputs(&self) -> i64 {
        self.weight.size()[0]
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.linear(&self.weight, Some(&self.bias))
    }
}

/// The convolution + BatchNorm pair that most families are made of, as one convolution with the BatchNorm
/// folded in ([`BatchNorm2d::fold_into`]); the activation stays with the caller.
#[derive(Debug)]
pub struct ConvBn(Conv2d);

impl ConvBn {
    /// `conv`/`bn` are the two modules' names under `p` (torchvision names them differently per family).
    pub fn load(
        p: &P,
        (conv, bn): (&str, &str),
        cin: i64,
        cout: i64,
        kernel: [i64; 2],
        cfg: ConvCfg,
        eps: f64,
    ) -> Result<Self, BuildError> {
        let conv = Conv2d::load(&p.sub(conv), cin, cout, kernel, cfg.no_bias())?;
        Ok(ConvBn(BatchNorm2d::load(&p.sub(bn), cout, eps)?.fold_into(conv, p)))
    }

    pub fn out_channels(&self) -> i64 {
        self.0.out_channels()
    }
}

impl Module for ConvBn {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.0.forward(xs)
    }
}

/// TensorFlow's channel rounding (torchvision's `_make_divisible`, EfficientNet's `round_filters`): the
/// nearest multiple of `divisor`, at least `divisor`, and never more than 10% below `v`.
pub fn make_divisible(v: f64, divisor: i64) -> i64 {
    let rounded = (((v + divisor as f64 / 2.0) as i64) / divisor * divisor).max(divisor);
    if (rounded as f64) < 0.9 * v {
        rounded + divisor
    } else {
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_finite_finds_nan_and_infinities_anywhere() {
        let ok = Tensor::from_slice(&[1.0f32, -2.0, 3.0e38, 0.0]);
        assert!(all_finite(&ok));
        assert!(all_finite(&Tensor::from_slice::<f32>(&[])));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in 0..4 {
                let mut values = [1.0f32, -2.0, 3.0, 4.0];
                values[at] = bad;
                assert!(!all_finite(&Tensor::from_slice(&values)), "{bad} at {at}");
            }
        }
    }

    #[test]
    fn folded_batchnorm_equals_convolution_then_batchnorm() {
        tch::manual_seed(1);
        let opts = (Kind::Float, Device::Cpu);
        let conv = Conv2d {
            weight: Tensor::randn([8, 3, 3, 3], opts),
            bias: Some(Tensor::randn([8], opts)),
            cfg: ConvCfg::default().pad(1),
        };
        let bn = BatchNorm2d {
            weight: Tensor::rand([8], opts) + 0.5,
            bias: Tensor::randn([8], opts),
            running_mean: Tensor::randn([8], opts),
            running_var: Tensor::rand([8], opts) + 0.1,
            eps: 1e-3,
        };
        let x = channels_last(&Tensor::randn([2, 3, 10, 10], opts));
        let params = Params::new(NamedTensors::new(), Device::Cpu, Kind::Float);
        let expected = bn.forward(&conv.forward(&x));
        let folded = bn.fold_into(conv, &params.root());
        let diff = f64::try_from((folded.forward(&x) - expected).abs().max()).unwrap();
        assert!(diff < 1e-5, "folded convolution differs by {diff}");
        // On the CPU the folded weight is channels-last, and so is the output.
        assert!(folded.weight.permute([0, 2, 3, 1]).is_contiguous());
        assert!(folded.forward(&x).permute([0, 2, 3, 1]).is_contiguous());
    }
}
