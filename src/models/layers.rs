//! The building blocks of every family, made straight from loaded tensors.
//!
//! tch's `nn::conv2d` and friends create their parameters in a `VarStore` with a random initialisation that
//! loading then overwrites (1.3 s of initialisation for VGG16). Here a layer takes its tensors out of [`Params`]
//! by `state_dict` name, checking each shape, so nothing is initialised or copied twice. The layers implement
//! `tch::nn::Module`, so the families compose them like any tch module.
//!
//! Work is done once here so that inference does less (measurements in BENCHMARKS.md): a BatchNorm that follows a
//! convolution is folded into that convolution's weights and bias; on the CPU, activations are channels-last and
//! convolutions run as oneDNN primitives with their weights prepacked and their activation (and a residual sum)
//! fused in ([`super::kernels`]); in int8, weights are quantized once and activations stay quantized from one
//! convolution to the next ([`super::quant`]).
pub use super::kernels::Unary as Act;
use super::kernels::{self, Geometry, QConvPacked, QLinearPacked};
use super::onednn::{self, Post};
use super::quant::{self, Point, QParams, Ranges, Recorder};
use super::BuildError;
use crate::weights::NamedTensors;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use tch::{nn::Module, Device, Kind, Tensor};

/// ReLU6, `min(max(x, 0), 6)`, as the clamp oneDNN fuses.
pub const RELU6: Act = Act::Hardtanh(0.0, 6.0);

/// How a network's convolutions run.
#[derive(Debug, Clone)]
pub enum Convs {
    /// libtorch's `conv2d`, then the activation: GPUs, and CPUs without oneDNN.
    Aten,
    /// oneDNN primitives with prepacked weights and fused post-ops: the CPU, in float32 or bfloat16.
    Onednn,
    /// As `Onednn`, recording the range of every convolution's input, output and residual sum (int8
    /// calibration).
    Calibrate(Recorder),
    /// int8, with activation ranges from calibration.
    Int8(Ranges),
}

/// The loaded tensors, handed out once each by name.
pub struct Params {
    tensors: RefCell<NamedTensors>,
    device: Device,
    /// The floating-point type the layers compute in: Float, BFloat16, or Half (CUDA).
    kind: Kind,
    convs: Convs,
    /// In a dry build: every tensor the model asks for is made up (zeros of the shape asked for) and its name
    /// and shape recorded, so that a model builds without a weights file.
    made_up: Option<RefCell<Vec<MadeUp>>>,
}

/// A tensor made up in a dry build: its name and shape.
pub type MadeUp = (String, Vec<i64>);

impl Params {
    /// Tensors for a network computing in `kind` on `device`: convolutions through oneDNN on a CPU that has it,
    /// through libtorch's `conv2d` elsewhere.
    pub fn new(tensors: NamedTensors, device: Device, kind: Kind) -> Self {
        let convs = if device == Device::Cpu && kernels::has_onednn() { Convs::Onednn } else { Convs::Aten };
        Params { tensors: RefCell::new(tensors), device, kind, convs, made_up: None }
    }

    /// The same with convolutions run as `convs` says (int8, calibration, or libtorch's own for comparison).
    pub fn with_convs(self, convs: Convs) -> Self {
        Params { convs, ..self }
    }

    /// No tensors, for a dry build: each one the model asks for is made up, zeros of the shape it asks for (a
    /// `-1`, the classifier's size, becomes 1000). [`Params::made_up_tensors`] lists them afterwards. A dry
    /// build runs libtorch's own convolutions: prepacking made-up weights for oneDNN costs more than the one
    /// forward pass a dry build is for.
    pub fn made_up(device: Device) -> Self {
        let params = Params::new(NamedTensors::new(), device, Kind::Float).with_convs(Convs::Aten);
        Params { made_up: Some(RefCell::default()), ..params }
    }

    /// The tensors made up so far, as (name, shape), in the order the model asked for them.
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
    /// float32: layers fold and quantize in float32 and then convert to the network's type ([`P::compute`]).
    pub fn take(&self, name: &str, shape: &[i64]) -> Result<Tensor, BuildError> {
        let key = self.key(name);
        let loaded = self.params.tensors.borrow_mut().remove(&key);
        let made_up = loaded.is_none();
        let tensor = loaded.or_else(|| self.make_up(&key, shape));
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
        // NaN or infinite parameters give NaN probabilities, not an error: refuse them here (made-up zeros are
        // neither).
        if !made_up && !all_finite(&tensor) {
            return Err(BuildError(format!("has NaN or infinite values in `{key}` (corrupt weights)")));
        }
        Ok(tensor.to_device(self.params.device).to_kind(Kind::Float).contiguous())
    }

    /// Takes the integer tensor `name` (an index buffer, such as windowed attention's relative position index)
    /// of shape `shape`, every value in [0, `bound`): libtorch would fail on an index out of range.
    pub fn take_index(&self, name: &str, shape: &[i64], bound: i64) -> Result<Tensor, BuildError> {
        let key = self.key(name);
        let tensor = self.params.tensors.borrow_mut().remove(&key);
        let tensor = tensor.or_else(|| self.make_up(&key, shape).map(|t| t.to_kind(Kind::Int64)));
        let tensor = tensor.ok_or_else(|| {
            BuildError(format!("has no `{key}`, which the model needs (weights for another architecture?)"))
        })?;
        if tensor.size() != shape {
            return Err(BuildError(format!(
                "has `{key}` of shape {:?} where the model needs {shape:?}",
                tensor.size()
            )));
        }
        if tensor.is_floating_point() || tensor.kind() == Kind::Bool {
            return Err(BuildError(format!("has `{key}` of type {:?} where the model needs integers", tensor.kind())));
        }
        let tensor = tensor.to_kind(Kind::Int64).to_device(self.params.device);
        if tensor.numel() > 0 {
            let (min, max) = tensor.aminmax(None, false);
            let (min, max) = (min.int64_value(&[]), max.int64_value(&[]));
            if min < 0 || max >= bound {
                return Err(BuildError(format!("has `{key}` with values {min} to {max}, outside 0 to {}", bound - 1)));
            }
        }
        Ok(tensor)
    }

    /// `t` in the network's floating-point type.
    pub fn compute(&self, t: &Tensor) -> Tensor {
        t.to_kind(self.params.kind)
    }

    /// This position's name in the weights (`layer1.0.conv1`).
    pub fn name(&self) -> &str {
        &self.prefix
    }

    /// In [`Params::made_up`]'s mode, zeros of `shape` (`-1` read as 1000), recorded under `key`.
    fn make_up(&self, key: &str, shape: &[i64]) -> Option<Tensor> {
        let shape: Vec<i64> = shape.iter().map(|&s| if s == -1 { 1000 } else { s }).collect();
        self.params.made_up.as_ref()?.borrow_mut().push((key.to_string(), shape.clone()));
        Some(Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu)))
    }

    /// A convolution weight in the network's type and the layout its device computes fastest with:
    /// channels-last on the CPU.
    fn conv_layout(&self, weight: &Tensor) -> Tensor {
        let weight = self.compute(weight);
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

    /// The geometry the fused and int8 kernels take (no dilation in any family).
    fn geometry(self) -> Geometry {
        Geometry { stride: self.stride, padding: self.padding, dilation: [1, 1], groups: self.groups }
    }
}

#[derive(Debug)]
pub struct Conv2d {
    /// In the network's floating-point type (channels-last on the CPU). An int8 convolution that runs on its
    /// packed weights keeps none: this is then an empty tensor whose first dimension is the output channels.
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub cfg: ConvCfg,
    /// The activation applied to the output (fused where the engine can).
    act: Act,
    /// The convolution's name in the weights, which calibration ranges are filed under.
    name: String,
    engine: Engine,
}

/// How one convolution runs.
#[derive(Debug)]
enum Engine {
    /// libtorch's `conv2d`, then the activation.
    Aten,
    /// oneDNN, prepared for each input shape and post-op seen (a few kept; batch sizes vary), optionally
    /// recording ranges for calibration.
    Onednn {
        packed: PreparedCache,
        record: Option<Recorder>,
    },
    Int8(Box<Int8Conv>),
}

/// An int8 convolution: packed qint8 weights, and the quantization of its input (where it arrives in floating
/// point), its output and its residual sum.
#[derive(Debug)]
struct Int8Conv {
    packed: QConvPacked,
    /// Run in float32 between a dequantization and a quantization instead: the geometries that libtorch's int8
    /// kernels only reach through im2col, which is slower than the float convolution and its conversions.
    in_float: bool,
    input: Option<QParams>,
    output: QParams,
    sum: Option<QParams>,
}

/// `xs.max_pool2d(kernel, stride, padding, [1, 1], ceil_mode)`: on the CPU, in float32 or bfloat16 and without
/// gradients, as a oneDNN primitive made once per input shape (libtorch's own kernel took 210 µs for ResNet-50's
/// 64 × 112 × 112 pooling on 2 threads of an Intel Xeon).
pub fn max_pool2d(xs: &Tensor, kernel: i64, stride: i64, padding: i64, ceil_mode: bool) -> Tensor {
    let window = onednn::Window { kernel: [kernel; 2], stride: [stride; 2], padding: [padding; 2], ceil_mode };
    let direct = xs.device() == Device::Cpu
        && matches!(xs.kind(), Kind::Float | Kind::BFloat16)
        && xs.dim() == 4
        && !xs.requires_grad()
        && onednn::available();
    if !direct {
        return xs.max_pool2d(window.kernel, window.stride, window.padding, [1, 1], ceil_mode);
    }
    /// The poolings made so far, by input shape, type and window.
    static POOLS: Kept<([i64; 4], Kind, onednn::Window), Arc<onednn::MaxPool>> = Mutex::new(Vec::new());
    let size = xs.size();
    let key = ([size[0], size[1], size[2], size[3]], xs.kind(), window);
    let pool = kept(&POOLS, key, 32, || {
        Arc::new(
            onednn::MaxPool::new(xs, window)
                .unwrap_or_else(|e| panic!("oneDNN cannot make a max pooling for {size:?}: {e}")),
        )
    });
    pool.forward(xs).unwrap_or_else(|e| panic!("oneDNN max pooling failed: {e}"))
}

/// Values made once and kept by key, a few of them: oneDNN primitives by input shape.
type Kept<K, V> = Mutex<Vec<(K, V)>>;

/// The value `cache` keeps under `key`, or the one `make` gives, then kept too (the oldest dropped beyond
/// `keep` values).
fn kept<K: PartialEq, V: Clone>(cache: &Kept<K, V>, key: K, keep: usize, make: impl FnOnce() -> V) -> V {
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, value)) = cache.iter().find(|(k, _)| *k == key) {
        return value.clone();
    }
    let value = make();
    if cache.len() == keep {
        drop(cache.remove(0));
    }
    cache.push((key, value.clone()));
    value
}

/// A oneDNN convolution ready for one input shape and post-op.
#[derive(Debug)]
enum Prepared {
    /// Its primitive, called directly.
    Direct(Arc<onednn::Conv>),
    /// The weight prepacked for libtorch's fused operator, which makes the primitive at each call: where oneDNN
    /// cannot be called directly.
    Weight(Tensor),
}

/// Another handle on the same primitive or packed weight.
impl Clone for Prepared {
    fn clone(&self) -> Prepared {
        match self {
            Prepared::Direct(conv) => Prepared::Direct(conv.clone()),
            Prepared::Weight(w) => Prepared::Weight(w.shallow_clone()),
        }
    }
}

/// A convolution's prepared forms, by input shape and post-op.
type PreparedCache = Kept<([i64; 4], Post), Prepared>;

/// How many prepared forms a convolution keeps, one per input shape and post-op.
const PACKED_SHAPES: usize = 4;

impl Conv2d {
    pub fn load(p: &P, cin: i64, cout: i64, kernel: [i64; 2], cfg: ConvCfg) -> Result<Self, BuildError> {
        let (weight, bias) = Self::read(p, cin, cout, kernel, cfg)?;
        Conv2d::new(p, p.name().to_string(), &weight, bias.as_ref(), cfg, Act::None)
    }

    /// The convolution at `conv` followed by the BatchNorm at `bn`, as one convolution
    /// ([`BatchNorm2d::fold`]).
    pub fn load_bn(
        conv: &P,
        bn: &P,
        cin: i64,
        cout: i64,
        kernel: [i64; 2],
        cfg: ConvCfg,
        eps: f64,
    ) -> Result<Self, BuildError> {
        let (weight, bias) = Self::read(conv, cin, cout, kernel, cfg)?;
        let (weight, bias) = BatchNorm2d::load(bn, cout, eps)?.fold(&weight, bias.as_ref());
        Conv2d::new(conv, conv.name().to_string(), &weight, Some(&bias), cfg, Act::None)
    }

    /// The weight and bias in float32.
    fn read(
        p: &P,
        cin: i64,
        cout: i64,
        kernel: [i64; 2],
        cfg: ConvCfg,
    ) -> Result<(Tensor, Option<Tensor>), BuildError> {
        let weight = p.take("weight", &[cout, cin / cfg.groups, kernel[0], kernel[1]])?;
        let bias = if cfg.bias { Some(p.take("bias", &[cout])?) } else { None };
        Ok((weight, bias))
    }

    /// A convolution of float32 `weight` and `bias`, set up for the network's engine.
    fn new(
        p: &P,
        name: String,
        weight: &Tensor,
        bias: Option<&Tensor>,
        cfg: ConvCfg,
        act: Act,
    ) -> Result<Self, BuildError> {
        let engine = match &p.params.convs {
            Convs::Aten => Engine::Aten,
            Convs::Onednn => Engine::Onednn { packed: Mutex::default(), record: None },
            Convs::Calibrate(recorder) => Engine::Onednn { packed: Mutex::default(), record: Some(recorder.clone()) },
            Convs::Int8(ranges) => Engine::Int8(Box::new(Int8Conv::new(&name, ranges, weight, bias, cfg)?)),
        };
        let bias = bias.map(|b| p.compute(b));
        let weight = match &engine {
            Engine::Int8(q) if !q.in_float => no_elements(weight),
            _ => p.conv_layout(weight),
        };
        Ok(Conv2d { weight, bias, cfg, act, name, engine })
    }

    /// The same convolution followed by `act`.
    pub fn with_act(self, act: Act) -> Self {
        Conv2d { act, ..self }
    }

    /// This convolution with its kernel grown by a leading row and column of zeros and padded by `padding` on
    /// every side: for a padding one pixel larger at the bottom and right than at the top and left (TensorFlow's
    /// "same" padding of an even input at stride 2), it computes the same sums as the explicitly padded input
    /// would give this one, without the padded copy. `None` for int8 and calibration, whose ranges and input
    /// means belong to the convolution as it is.
    pub fn with_leading_zero_taps(&self, padding: [i64; 2]) -> Option<Conv2d> {
        let engine = match &self.engine {
            Engine::Aten => Engine::Aten,
            Engine::Onednn { record: None, .. } => Engine::Onednn { packed: Mutex::default(), record: None },
            _ => return None,
        };
        let grown = self.weight.constant_pad_nd([1, 0, 1, 0]);
        let weight = if grown.device() == Device::Cpu { channels_last(&grown) } else { grown };
        Some(Conv2d {
            weight,
            bias: self.bias.as_ref().map(Tensor::shallow_clone),
            cfg: ConvCfg { padding, ..self.cfg },
            act: self.act,
            name: self.name.clone(),
            engine,
        })
    }

    pub fn out_channels(&self) -> i64 {
        self.weight.size()[0]
    }

    fn geometry(&self) -> Geometry {
        self.cfg.geometry()
    }

    /// libtorch's convolution without the activation.
    fn aten(&self, xs: &Tensor) -> Tensor {
        xs.conv2d(&self.weight, self.bias.as_ref(), self.cfg.stride, self.cfg.padding, [1, 1], self.cfg.groups)
    }

    fn apply_act(&self, mut y: Tensor) -> Tensor {
        match self.act {
            Act::None => y,
            Act::Relu => y.relu_(),
            Act::Hardtanh(lo, hi) => y.clamp_(lo, hi),
            Act::Hardswish => y.hardswish_(),
            Act::Silu => y.silu_(),
            Act::Gelu => y.gelu_("none"),
        }
    }

    /// The convolution prepared for inputs shaped like `xs`, followed by `post`.
    fn prepared(&self, cache: &PreparedCache, xs: &Tensor, post: Post) -> Prepared {
        let size = xs.size();
        let shape = [size[0], size[1], size[2], size[3]];
        kept(cache, (shape, post), PACKED_SHAPES, || {
            let geometry = self.geometry();
            let prepared = if onednn::available() {
                onednn::Conv::new(&self.weight, self.bias.as_ref(), geometry, shape, post)
                    .map(|c| Prepared::Direct(Arc::new(c)))
            } else {
                kernels::reorder_conv_weight(&self.weight, geometry, shape).map(Prepared::Weight)
            };
            prepared.unwrap_or_else(|e| panic!("oneDNN cannot prepare `{}` for inputs {shape:?}: {e}", self.name))
        })
    }

    /// The oneDNN convolution of `xs` followed by `post` (`other` is the residual of [`Post::Add`]).
    fn onednn(&self, cache: &PreparedCache, xs: &Tensor, other: Option<&Tensor>, post: Post) -> Tensor {
        let y = match (self.prepared(cache, xs, post), post, other) {
            (Prepared::Direct(conv), _, _) => conv.forward(xs, other),
            (Prepared::Weight(w), Post::Unary(act), None) => {
                kernels::conv_pointwise(xs, &w, self.bias.as_ref(), self.geometry(), act)
            }
            (Prepared::Weight(w), Post::Add { relu }, Some(other)) => {
                kernels::conv_pointwise_add(xs, other, &w, self.bias.as_ref(), self.geometry(), relu)
            }
            _ => unreachable!("a residual sum comes with its residual"),
        };
        y.unwrap_or_else(|e| panic!("oneDNN convolution `{}` failed: {e}", self.name))
    }

    /// `conv(xs) + other`, then ReLU if `relu`: a residual connection ending in this convolution, which has no
    /// activation of its own. `other` is not modified.
    pub fn forward_add(&self, xs: &Tensor, other: &Tensor, relu: bool) -> Tensor {
        debug_assert_eq!(self.act, Act::None, "`{}` adds after an activation", self.name);
        match &self.engine {
            Engine::Onednn { packed, record } if !xs.requires_grad() => {
                if let Some(r) = record {
                    r.record(&self.name, Point::Input, xs);
                    r.record(&self.name, Point::Output, &self.onednn(packed, xs, None, Post::Unary(Act::None)));
                }
                let y = self.onednn(packed, xs, Some(other), Post::Add { relu });
                if let Some(r) = record {
                    r.record(&self.name, Point::Sum, &y);
                }
                y
            }
            Engine::Int8(q) => {
                let y = q.forward(self, xs, false);
                let sum = q.sum.unwrap_or_else(|| panic!("the calibration has no residual sum at `{}`", self.name));
                let other = if quant::is_quantized(other) { other.shallow_clone() } else { sum.quantize(other) };
                kernels::qadd(&y, &other, sum.scale, sum.zero_point, relu)
                    .unwrap_or_else(|e| panic!("int8 addition after `{}` failed: {e}", self.name))
            }
            _ => {
                let mut y = self.aten(xs);
                y += other;
                if relu {
                    y.relu_()
                } else {
                    y
                }
            }
        }
    }
}

impl Int8Conv {
    fn new(
        name: &str,
        ranges: &Ranges,
        weight: &Tensor,
        bias: Option<&Tensor>,
        cfg: ConvCfg,
    ) -> Result<Self, BuildError> {
        let missing = |what: &str| {
            BuildError(format!("the int8 calibration has no {what} range for `{name}` (calibrated for another model?)"))
        };
        let r = ranges.get(name).ok_or_else(|| missing("output"))?;
        let valid = |range: Option<quant::Range>, what: &str| match range {
            Some(range) if range.is_valid() => Ok(Some(QParams::covering(range))),
            Some(_) => {
                Err(BuildError(format!("the int8 calibration's {what} range for `{name}` is not a finite range")))
            }
            None => Ok(None),
        };
        let output = valid(r.output, "output")?.ok_or_else(|| missing("output"))?;
        let qweight = quant::quantize_weight(weight);
        let bias = match &r.mean {
            Some(mean) => Some(
                quant::corrected_bias(weight, &qweight, bias, mean, cfg.groups)
                    .map_err(|e| BuildError(format!("the int8 calibration for `{name}` has {e}")))?,
            ),
            None => bias.map(|b| b.to_kind(Kind::Float)),
        };
        let packed = QConvPacked::new(&qweight, bias.as_ref(), cfg.geometry())
            .map_err(|e| BuildError(format!("cannot pack `{name}` for int8: {e}")))?;
        // The x86 engine gives a depthwise convolution of more than 100 channels to FBGEMM, whose depthwise
        // kernel needs the padding to be half the kernel; without it (EfficientNet's explicit, asymmetric "same"
        // padding before a stride-2 layer) the convolution goes through im2col. Measured with PyTorch 2.13's x86
        // engine, a batch of 8: 144 channels at 56×56, 5×5: 194 ms instead of 1.5 ms; 240 channels at 28×28,
        // 3×3: 31 ms instead of 0.5 ms; 96 channels at 112×112, 3×3 (oneDNN's): 0.9 ms either way. Those run in
        // float.
        let depthwise = cfg.groups > 1 && cfg.groups == weight.size()[0] && weight.size()[1] == 1;
        let k = [weight.size()[2], weight.size()[3]];
        let half_kernel = [(k[0] - 1) / 2, (k[1] - 1) / 2];
        let in_float = depthwise && cfg.groups > 100 && cfg.padding != half_kernel;
        Ok(Int8Conv { packed, in_float, input: valid(r.input, "input")?, output, sum: valid(r.sum, "sum")? })
    }

    /// The convolution of `xs` (quantized here if it arrives in floating point), quantized, ReLU fused if
    /// `relu`.
    fn forward(&self, conv: &Conv2d, xs: &Tensor, relu: bool) -> Tensor {
        let name = &conv.name;
        if self.in_float {
            let x = if quant::is_quantized(xs) { xs.dequantize() } else { xs.shallow_clone() };
            let y = conv.aten(&x);
            return self.output.quantize(&if relu { y.relu() } else { y });
        }
        let qx = if quant::is_quantized(xs) {
            xs.shallow_clone()
        } else {
            let input = self.input.unwrap_or_else(|| panic!("the calibration has no input range for `{name}`"));
            input.quantize(xs)
        };
        self.packed
            .forward(&qx, self.output.scale, self.output.zero_point, relu)
            .unwrap_or_else(|e| panic!("int8 convolution `{name}` failed: {e}"))
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match &self.engine {
            // Gradients (Grad-CAM) need libtorch's own convolution: oneDNN's fused one has no backward.
            Engine::Onednn { packed, record } if !xs.requires_grad() => {
                let y = self.onednn(packed, xs, None, Post::Unary(self.act));
                if let Some(r) = record {
                    r.record(&self.name, Point::Input, xs);
                    r.record(&self.name, Point::Output, &y);
                }
                y
            }
            Engine::Int8(q) => {
                // ReLU and ReLU6 become the quantized output's lower bound, and ReLU6's upper bound the top of
                // its calibrated range (at most 6).
                let relu = match self.act {
                    Act::None => false,
                    Act::Relu => true,
                    Act::Hardtanh(0.0, _) => true,
                    other => panic!("`{}`: no int8 form of {other:?}", self.name),
                };
                q.forward(self, xs, relu)
            }
            _ => self.apply_act(self.aten(xs)),
        }
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

    /// The same BatchNorm computing in the network's floating-point type, as a layer of its own.
    pub fn standalone(self, p: &P) -> Self {
        BatchNorm2d {
            weight: p.compute(&self.weight),
            bias: p.compute(&self.bias),
            running_mean: p.compute(&self.running_mean),
            running_var: p.compute(&self.running_var),
            eps: self.eps,
        }
    }

    /// The convolution `conv` followed by this BatchNorm, as one convolution: at inference BatchNorm is
    /// `(y - mean) * gamma / sqrt(var + eps) + beta`, an affine map per channel, which goes into the
    /// convolution's weights and bias. The per-channel factors are computed in float64, so each folded weight
    /// is rounded once, as in PyTorch's own `fuse_conv_bn_eval`; in float32, whatever type the network then
    /// computes in. Returns the folded float32 weight and bias.
    fn fold(self, weight: &Tensor, bias: Option<&Tensor>) -> (Tensor, Tensor) {
        let double = |t: &Tensor| t.to_kind(Kind::Double);
        let scale = double(&self.weight) / (double(&self.running_var) + self.eps).sqrt();
        let weight = weight * scale.to_kind(Kind::Float).view([-1, 1, 1, 1]);
        let bias = bias.map_or_else(|| scale.zeros_like(), double);
        let bias = ((bias - double(&self.running_mean)) * &scale + double(&self.bias)).to_kind(Kind::Float);
        (weight, bias)
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
    /// Most have one; Swin's patch merging and MaxViT's classifier do not.
    bias: Option<Tensor>,
    /// In int8: the weights in qint8, run with the input quantized on the fly (dynamic quantization: a
    /// classifier needs no calibration). `weight` is then empty, its first dimension the outputs.
    int8: Option<QLinearPacked>,
}

/// An empty tensor with `t`'s first dimension: what a layer that runs on packed int8 weights keeps of its float
/// ones, for their count of outputs (VGG16's classifier is 0.5 GB in float32).
fn no_elements(t: &Tensor) -> Tensor {
    let mut shape = t.size();
    shape[1..].iter_mut().for_each(|d| *d = 0);
    Tensor::empty(shape.as_slice(), (t.kind(), t.device()))
}

impl Linear {
    pub fn load(p: &P, inputs: i64, outputs: Option<i64>) -> Result<Self, BuildError> {
        Linear::load_named(p, ("weight", Some("bias")), inputs, outputs)
    }

    /// A fully connected layer without a bias.
    pub fn load_no_bias(p: &P, inputs: i64, outputs: Option<i64>) -> Result<Self, BuildError> {
        Linear::load_named(p, ("weight", None), inputs, outputs)
    }

    /// The same with its weight and bias (if any) under other names: `nn.MultiheadAttention`'s packed query,
    /// key and value projection is `in_proj_weight` and `in_proj_bias`.
    pub fn load_named(
        p: &P,
        (weight, bias): (&str, Option<&str>),
        inputs: i64,
        outputs: Option<i64>,
    ) -> Result<Self, BuildError> {
        let weight = p.take(weight, &[outputs.unwrap_or(-1), inputs])?;
        let bias = bias.map(|b| p.take(b, &[weight.size()[0]])).transpose()?;
        let int8 = match p.params.convs {
            Convs::Int8(_) => Some(
                QLinearPacked::new(&quant::quantize_weight(&weight), bias.as_ref())
                    .map_err(|e| BuildError(format!("cannot pack `{}` for int8: {e}", p.name())))?,
            ),
            _ => None,
        };
        // The layer whose outputs are the classes (its count taken from the weights) computes in float32 when the
        // network computes in bfloat16 or float16: logits in bfloat16 keep 3 significant digits, which ties
        // close classes (EfficientNet-Lite0 on the evaluation set, bf16 on a Xeon with AMX: top-1 73.87% with
        // bfloat16 logits, 74.13% with float32 ones, 74.40% in fp32), for a cost of one small matrix product.
        let typed = |t: &Tensor| if outputs.is_none() { t.to_kind(Kind::Float) } else { p.compute(t) };
        let weight = if int8.is_some() { no_elements(&weight) } else { typed(&weight) };
        Ok(Linear { weight, bias: bias.map(|b| typed(&b)), int8 })
    }

    pub fn outputs(&self) -> i64 {
        self.weight.size()[0]
    }
}

impl Module for Linear {
    /// An int8 network's features may arrive quantized: they are dequantized first.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let xs = quant::dequantized(xs);
        match &self.int8 {
            Some(packed) => packed.forward(&xs).unwrap_or_else(|e| panic!("int8 fully connected layer failed: {e}")),
            None => xs.to_kind(self.weight.kind()).linear(&self.weight, self.bias.as_ref()),
        }
    }
}

/// The convolution + BatchNorm pair that most families are made of, as one convolution with the BatchNorm
/// folded in ([`BatchNorm2d::fold`]).
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
        Ok(ConvBn(Conv2d::load_bn(&p.sub(conv), &p.sub(bn), cin, cout, kernel, cfg.no_bias(), eps)?))
    }

    /// torchvision's `Conv2dNormActivation` at `p`: its convolution (`0`: `kernel`×`kernel`, padded by
    /// `(kernel - 1) / 2`, without bias; `cfg` gives the stride and groups) with its BatchNorm (`1`) folded in and
    /// `act` fused.
    pub fn norm_act(
        p: &P,
        cin: i64,
        cout: i64,
        kernel: i64,
        cfg: ConvCfg,
        eps: f64,
        act: Act,
    ) -> Result<Self, BuildError> {
        let cfg = cfg.pad((kernel - 1) / 2);
        Ok(ConvBn::load(p, ("0", "1"), cin, cout, [kernel, kernel], cfg, eps)?.with_act(act))
    }

    pub fn out_channels(&self) -> i64 {
        self.0.out_channels()
    }

    /// The same followed by `act` ([`Conv2d::with_act`]).
    pub fn with_act(self, act: Act) -> Self {
        ConvBn(self.0.with_act(act))
    }

    /// [`Conv2d::with_leading_zero_taps`].
    pub fn with_leading_zero_taps(&self, padding: [i64; 2]) -> Option<ConvBn> {
        self.0.with_leading_zero_taps(padding).map(ConvBn)
    }

    /// `conv(xs) + other`, then ReLU if `relu` ([`Conv2d::forward_add`]).
    pub fn forward_add(&self, xs: &Tensor, other: &Tensor, relu: bool) -> Tensor {
        self.0.forward_add(xs, other, relu)
    }
}

impl Module for ConvBn {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.0.forward(xs)
    }
}

/// The gate of a squeeze-and-excitation block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// EfficientNet, RegNet, MaxViT.
    Sigmoid,
    /// MobileNet V3.
    Hardsigmoid,
}

/// Squeeze-and-excitation (torchvision's `SqueezeExcitation`, its 1×1 convolutions named `fc1` and `fc2`): each
/// channel scaled by a gate of the channels' means, squeezed to `squeeze` channels with an activation between.
#[derive(Debug)]
pub struct SqueezeExcite {
    fc1: Conv2d,
    fc2: Conv2d,
    gate: Gate,
}

impl SqueezeExcite {
    pub fn load(p: &P, channels: i64, squeeze: i64, act: Act, gate: Gate) -> Result<Self, BuildError> {
        let fc1 = Conv2d::load(&p.sub("fc1"), channels, squeeze, [1, 1], ConvCfg::default())?.with_act(act);
        let fc2 = Conv2d::load(&p.sub("fc2"), squeeze, channels, [1, 1], ConvCfg::default())?;
        Ok(SqueezeExcite { fc1, fc2, gate })
    }
}

impl Module for SqueezeExcite {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let scale = self.fc2.forward(&self.fc1.forward(&xs.adaptive_avg_pool2d([1, 1])));
        xs * match self.gate {
            Gate::Sigmoid => scale.sigmoid(),
            Gate::Hardsigmoid => scale.hardsigmoid(),
        }
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
    use crate::models::test_data;

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
        let _no_grad = tch::no_grad_guard();
        let tensors: NamedTensors = [
            ("conv.weight", test_data::randn(&[8, 3, 3, 3], 101)),
            ("conv.bias", test_data::randn(&[8], 102)),
            ("bn.weight", test_data::rand(&[8], 103) + 0.5),
            ("bn.bias", test_data::randn(&[8], 104)),
            ("bn.running_mean", test_data::randn(&[8], 105)),
            ("bn.running_var", test_data::rand(&[8], 106) + 0.1),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_string(), t))
        .collect();
        let t = |k: &str| tensors[k].shallow_clone();
        let x = channels_last(&test_data::randn(&[2, 3, 10, 10], 107));
        let expected = x.conv2d(&t("conv.weight"), Some(&t("conv.bias")), [1, 1], [1, 1], [1, 1], 1).batch_norm(
            Some(&t("bn.weight")),
            Some(&t("bn.bias")),
            Some(&t("bn.running_mean")),
            Some(&t("bn.running_var")),
            false,
            0.1,
            1e-3,
            true,
        );
        let copy: NamedTensors = tensors.iter().map(|(k, v)| (k.clone(), v.copy())).collect();
        for convs in [Convs::Aten, Convs::Onednn] {
            let params =
                Params::new(copy.iter().map(|(k, v)| (k.clone(), v.copy())).collect(), Device::Cpu, Kind::Float)
                    .with_convs(convs.clone());
            let root = params.root();
            let cfg = ConvCfg::default().pad(1);
            let folded = Conv2d::load_bn(&root.sub("conv"), &root.sub("bn"), 3, 8, [3, 3], cfg, 1e-3).unwrap();
            params.finish(&[]).unwrap();
            // Float32 sums in another order: a few units in the last place of the largest output.
            let tolerance = 1e-6 * f64::try_from(expected.abs().max()).unwrap();
            let diff = f64::try_from((folded.forward(&x) - &expected).abs().max()).unwrap();
            assert!(diff < tolerance, "{convs:?}: folded convolution differs by {diff}");
            // On the CPU the folded weight is channels-last, and so is the output.
            assert!(folded.weight.permute([0, 2, 3, 1]).is_contiguous());
            assert!(folded.forward(&x).permute([0, 2, 3, 1]).is_contiguous());
            // With a residual sum and ReLU fused.
            let other = channels_last(&test_data::randn(&[2, 8, 10, 10], 108));
            let diff = f64::try_from((folded.forward_add(&x, &other, true) - (&expected + &other).relu()).abs().max())
                .unwrap();
            assert!(diff < tolerance, "{convs:?}: fused sum differs by {diff}");
        }
    }
}
