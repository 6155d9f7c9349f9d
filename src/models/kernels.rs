//! libtorch's fused and quantized CPU operators, outside tch's generated API, through csrc/kernels.cpp:
//! oneDNN convolutions with prepacked weights and a fused activation or residual sum, and the int8 convolutions
//! and additions of the x86 quantization engine. Each wrapper returns libtorch's error as a `tch::TchError`.
use std::ffi::{c_char, c_void, CStr};
use tch::{TchError, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn ci_has_onednn() -> i32;
    fn ci_reorder_conv_weight(
        weight: *const C_tensor,
        padding: *const i64,
        stride: *const i64,
        dilation: *const i64,
        groups: i64,
        input_size: *const i64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ci_conv_pointwise(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        padding: *const i64,
        stride: *const i64,
        dilation: *const i64,
        groups: i64,
        attr: *const c_char,
        lo: f64,
        hi: f64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ci_conv_pointwise_add(
        x: *const C_tensor,
        other: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        padding: *const i64,
        stride: *const i64,
        dilation: *const i64,
        groups: i64,
        relu: i32,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ci_use_x86_quantized_engine() -> *mut c_char;
    fn ci_qconv_prepack(
        qweight: *const C_tensor,
        bias: *const C_tensor,
        stride: *const i64,
        padding: *const i64,
        dilation: *const i64,
        groups: i64,
        packed: *mut *mut c_void,
    ) -> *mut c_char;
    fn ci_packed_free(packed: *mut c_void);
    fn ci_qconv(
        qx: *const C_tensor,
        packed: *const c_void,
        scale: f64,
        zero_point: i64,
        relu: i32,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ci_qlinear_prepack(qweight: *const C_tensor, bias: *const C_tensor, packed: *mut *mut c_void) -> *mut c_char;
    fn ci_qlinear_dynamic(x: *const C_tensor, packed: *const c_void, out: *mut *mut C_tensor) -> *mut c_char;
    fn ci_qadd(
        a: *const C_tensor,
        b: *const C_tensor,
        scale: f64,
        zero_point: i64,
        relu: i32,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// The C++ side's error message, if any, freed here.
pub(super) fn check(error: *mut c_char) -> Result<(), TchError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is a NUL-terminated string from malloc, owned by us from here on.
    let message = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
    unsafe { libc::free(error.cast()) };
    Err(TchError::Torch(message))
}

/// A tensor the C++ side allocated for us.
pub(super) fn take(out: *mut C_tensor) -> Tensor {
    // SAFETY: the C++ side wrote a heap `at::Tensor*` that nothing else owns.
    unsafe { Tensor::from_ptr(out) }
}

fn optional(t: Option<&Tensor>) -> *const C_tensor {
    t.map_or(std::ptr::null(), Tensor::as_ptr)
}

/// Whether this libtorch has oneDNN's fused convolutions (x86 and ARM builds of PyTorch do).
pub fn has_onednn() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| unsafe { ci_has_onednn() } != 0)
}

/// The geometry of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub stride: [i64; 2],
    pub padding: [i64; 2],
    pub dilation: [i64; 2],
    pub groups: i64,
}

/// A unary activation fused into a convolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    None,
    Relu,
    /// Clamp to [lo, hi]: ReLU6 is `Hardtanh(0, 6)`.
    Hardtanh(f64, f64),
    Hardswish,
    /// SiLU (swish), `x · sigmoid(x)`: EfficientNet's.
    Silu,
    /// GELU with the error function (PyTorch's default, not the tanh approximation): MaxViT's.
    Gelu,
}

impl Unary {
    /// The post-op's name and scalars, as libtorch's `mkldnn::_convolution_pointwise` takes them.
    pub(super) fn attr(self) -> (&'static CStr, f64, f64) {
        match self {
            Unary::None => (c"none", 0.0, 0.0),
            Unary::Relu => (c"relu", 0.0, 0.0),
            Unary::Hardtanh(lo, hi) => (c"hardtanh", lo, hi),
            Unary::Hardswish => (c"hardswish", 0.0, 0.0),
            Unary::Silu => (c"swish", 0.0, 0.0),
            Unary::Gelu => (c"gelu", 0.0, 0.0),
        }
    }
}

/// `weight` in oneDNN's blocked layout for inputs of `input_size` (N, C, H, W): prepacked once, so that no
/// convolution reorders it again.
pub fn reorder_conv_weight(weight: &Tensor, g: Geometry, input_size: [i64; 4]) -> Result<Tensor, TchError> {
    let mut out = std::ptr::null_mut();
    check(unsafe {
        ci_reorder_conv_weight(
            weight.as_ptr(),
            g.padding.as_ptr(),
            g.stride.as_ptr(),
            g.dilation.as_ptr(),
            g.groups,
            input_size.as_ptr(),
            &mut out,
        )
    })?;
    Ok(take(out))
}

/// `act(conv2d(x, weight, bias))` as one oneDNN primitive; `weight` plain or from [`reorder_conv_weight`].
pub fn conv_pointwise(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: Geometry,
    act: Unary,
) -> Result<Tensor, TchError> {
    let (attr, lo, hi) = act.attr();
    let mut out = std::ptr::null_mut();
    check(unsafe {
        ci_conv_pointwise(
            x.as_ptr(),
            weight.as_ptr(),
            optional(bias),
            g.padding.as_ptr(),
            g.stride.as_ptr(),
            g.dilation.as_ptr(),
            g.groups,
            attr.as_ptr(),
            lo,
            hi,
            &mut out,
        )
    })?;
    Ok(take(out))
}

/// `conv2d(x, weight, bias) + other`, then ReLU if `relu`, as one oneDNN primitive.
pub fn conv_pointwise_add(
    x: &Tensor,
    other: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: Geometry,
    relu: bool,
) -> Result<Tensor, TchError> {
    let mut out = std::ptr::null_mut();
    check(unsafe {
        ci_conv_pointwise_add(
            x.as_ptr(),
            other.as_ptr(),
            weight.as_ptr(),
            optional(bias),
            g.padding.as_ptr(),
            g.stride.as_ptr(),
            g.dilation.as_ptr(),
            g.groups,
            relu as i32,
            &mut out,
        )
    })?;
    Ok(take(out))
}

/// Selects libtorch's x86 engine (FBGEMM and oneDNN) for quantized operators.
pub fn use_x86_quantized_engine() -> Result<(), TchError> {
    check(unsafe { ci_use_x86_quantized_engine() })
}

/// Weights packed by libtorch's quantized engine (its packed-parameters object), owned: freed on drop.
struct Packed(*mut c_void);

// SAFETY: packed parameters are immutable once made; libtorch's quantized operators only read them.
unsafe impl Send for Packed {}
unsafe impl Sync for Packed {}

impl Drop for Packed {
    fn drop(&mut self) {
        unsafe { ci_packed_free(self.0) }
    }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Packed")
    }
}

/// An int8 convolution's weights, packed for the quantized engine.
#[derive(Debug)]
pub struct QConvPacked(Packed);

impl QConvPacked {
    /// Packs `qweight` (qint8, quantized per output channel) and the float `bias`.
    pub fn new(qweight: &Tensor, bias: Option<&Tensor>, g: Geometry) -> Result<Self, TchError> {
        let mut packed = std::ptr::null_mut();
        check(unsafe {
            ci_qconv_prepack(
                qweight.as_ptr(),
                optional(bias),
                g.stride.as_ptr(),
                g.padding.as_ptr(),
                g.dilation.as_ptr(),
                g.groups,
                &mut packed,
            )
        })?;
        Ok(QConvPacked(Packed(packed)))
    }

    /// The convolution of the quint8 tensor `qx`, requantized to (`scale`, `zero_point`), with ReLU if `relu`.
    pub fn forward(&self, qx: &Tensor, scale: f64, zero_point: i64, relu: bool) -> Result<Tensor, TchError> {
        let mut out = std::ptr::null_mut();
        check(unsafe { ci_qconv(qx.as_ptr(), self.0 .0, scale, zero_point, relu as i32, &mut out) })?;
        Ok(take(out))
    }
}

/// An int8 fully connected layer's weights, packed for the quantized engine.
#[derive(Debug)]
pub struct QLinearPacked(Packed);

impl QLinearPacked {
    /// Packs `qweight` (qint8, quantized per output row) and the float `bias`.
    pub fn new(qweight: &Tensor, bias: Option<&Tensor>) -> Result<Self, TchError> {
        let mut packed = std::ptr::null_mut();
        check(unsafe { ci_qlinear_prepack(qweight.as_ptr(), optional(bias), &mut packed) })?;
        Ok(QLinearPacked(Packed(packed)))
    }

    /// `x · weightᵀ + bias` for float `x`, quantized on the fly (one scale per call), float out.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let mut out = std::ptr::null_mut();
        check(unsafe { ci_qlinear_dynamic(x.as_ptr(), self.0 .0, &mut out) })?;
        Ok(take(out))
    }
}

/// `a + b` for two quint8 tensors, requantized to (`scale`, `zero_point`), with ReLU if `relu`.
pub fn qadd(a: &Tensor, b: &Tensor, scale: f64, zero_point: i64, relu: bool) -> Result<Tensor, TchError> {
    let mut out = std::ptr::null_mut();
    check(unsafe { ci_qadd(a.as_ptr(), b.as_ptr(), scale, zero_point, relu as i32, &mut out) })?;
    Ok(take(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::channels_last;
    use crate::models::test_data;
    use tch::{Device, Kind};

    trait ChannelsLast {
        fn to_channels_last(self) -> Tensor;
    }
    impl ChannelsLast for Tensor {
        fn to_channels_last(self) -> Tensor {
            channels_last(&self)
        }
    }

    const PLAIN: Geometry = Geometry { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    #[test]
    fn fused_convolutions_equal_aten_ones() {
        let _guard = tch::no_grad_guard();
        let x = test_data::randn(&[2, 8, 12, 12], 301).to_channels_last();
        let w = test_data::randn(&[16, 8, 3, 3], 302);
        let b = test_data::randn(&[16], 303);
        let plain = x.conv2d(&w, Some(&b), [1, 1], [1, 1], [1, 1], 1);
        let packed = reorder_conv_weight(&w, PLAIN, [2, 8, 12, 12]).unwrap();
        for (act, expected) in [
            (Unary::None, plain.shallow_clone()),
            (Unary::Relu, plain.relu()),
            (Unary::Hardtanh(0.0, 6.0), plain.clamp(0.0, 6.0)),
            (Unary::Hardswish, plain.hardswish()),
            (Unary::Silu, plain.silu()),
            (Unary::Gelu, plain.gelu("none")),
        ] {
            for weight in [&w, &packed] {
                let got = conv_pointwise(&x, weight, Some(&b), PLAIN, act).unwrap();
                assert!(max_diff(&got, &expected) < 1e-4, "{act:?}");
            }
        }
        let other = test_data::randn(&[2, 16, 12, 12], 304).to_channels_last();
        let before = other.copy();
        for relu in [false, true] {
            let sum = &plain + &other;
            let expected = if relu { sum.relu() } else { sum };
            let got = conv_pointwise_add(&x, &other, &packed, Some(&b), PLAIN, relu).unwrap();
            assert!(max_diff(&got, &expected) < 1e-4);
        }
        assert_eq!(max_diff(&other, &before), 0.0, "the residual input is left as it was");
    }

    fn quant_rows(w: &Tensor) -> Tensor {
        let rows = w.size()[0];
        let scales = w.abs().amax([1], false).to_kind(Kind::Double) / 127.0;
        w.quantize_per_channel(&scales, &Tensor::zeros([rows], (Kind::Int64, Device::Cpu)), 0, Kind::QInt8)
    }

    #[test]
    fn quantized_convolution_and_addition_follow_their_float_versions() {
        let _guard = tch::no_grad_guard();
        use_x86_quantized_engine().unwrap();
        let x = test_data::rand(&[1, 8, 10, 10], 305);
        let w = test_data::randn(&[16, 8, 3, 3], 306) * 0.1;
        let b = test_data::randn(&[16], 307) * 0.1;
        let scales = w.abs().amax([1, 2, 3], false).to_kind(Kind::Double) / 127.0;
        let zeros = Tensor::zeros([16], (Kind::Int64, Device::Cpu));
        let qw = w.quantize_per_channel(&scales, &zeros, 0, Kind::QInt8);
        let packed = QConvPacked::new(&qw, Some(&b), PLAIN).unwrap();
        let qx = x.quantize_per_tensor(1.0 / 255.0, 0, Kind::QUInt8);
        let expected = x.conv2d(&w, Some(&b), [1, 1], [1, 1], [1, 1], 1).relu();
        let got = packed.forward(&qx, 0.02, 0, true).unwrap().dequantize();
        assert!(max_diff(&got, &expected) < 0.05, "int8 convolution off by {}", max_diff(&got, &expected));
        let sum = qadd(&qx, &qx, 2.0 / 255.0, 0, false).unwrap().dequantize();
        assert!(max_diff(&sum, &(&x * 2.0)) < 0.01);
        // A bad call is an error, not an abort.
        assert!(packed.forward(&x, 0.02, 0, true).is_err());

        let w = test_data::randn(&[10, 32], 308) * 0.1;
        let b = test_data::randn(&[10], 309);
        let x = test_data::randn(&[2, 32], 310);
        let qw = quant_rows(&w);
        let linear = QLinearPacked::new(&qw, Some(&b)).unwrap();
        let expected = x.linear(&w, Some(&b));
        assert!(max_diff(&linear.forward(&x).unwrap(), &expected) < 0.05);
    }
}
