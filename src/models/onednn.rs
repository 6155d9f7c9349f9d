//! Convolutions and max pooling through oneDNN's own API (csrc/onednn.cpp): the primitive is made once per
//! layer and input shape, a convolution's weights reordered once, and a call only executes it. libtorch's fused operator
//! ([`kernels::conv_pointwise`](super::kernels::conv_pointwise)) computes the same primitive but rebuilds its
//! descriptor on every call. [`available`] says whether this process can use it (the loaded libtorch must be
//! the one the binary was built against); otherwise the convolutions go through libtorch's operator.
use super::kernels::{check, take, Geometry, Unary};
use std::ffi::{c_char, c_void, CStr};
use tch::{TchError, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn ci_onednn_unavailable() -> *const c_char;
    fn ci_onednn_conv_new(
        weight: *const C_tensor,
        bias: *const C_tensor,
        padding: *const i64,
        stride: *const i64,
        dilation: *const i64,
        groups: i64,
        input_size: *const i64,
        attr: *const c_char,
        lo: f64,
        hi: f64,
        binary: i32,
        relu: i32,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn ci_onednn_implementation(conv: *const c_void) -> *const c_char;
    fn ci_onednn_run(
        conv: *const c_void,
        x: *const C_tensor,
        other: *const C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ci_onednn_free(conv: *mut c_void);
    fn ci_onednn_max_pool_new(
        x: *const C_tensor,
        kernel: *const i64,
        stride: *const i64,
        padding: *const i64,
        ceil_mode: i32,
        out: *mut *mut c_void,
    ) -> *mut c_char;
}

/// Why oneDNN cannot be called directly in this process, or `None` if it can.
pub fn unavailable() -> Option<&'static str> {
    // SAFETY: NULL or a static NUL-terminated string.
    let why = unsafe { ci_onednn_unavailable() };
    (!why.is_null()).then(|| unsafe { CStr::from_ptr(why) }.to_str().unwrap_or("unknown reason"))
}

/// The environment variable that, set to `0`, makes the convolutions go through libtorch's operator even where
/// oneDNN can be called directly (to compare the two).
pub const SWITCH: &str = "CLASSIFY_IMAGE_DIRECT_ONEDNN";

/// Whether the convolutions call oneDNN directly in this process: it can, and [`SWITCH`] is not `0`.
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| std::env::var_os(SWITCH).is_none_or(|v| v != "0") && unavailable().is_none())
}

/// How the CPU convolutions run in this process, for `classify-image devices`.
pub fn describe() -> String {
    match unavailable() {
        _ if available() => "oneDNN primitives made once per layer and input shape, called directly".to_string(),
        None => format!("libtorch's fused oneDNN operator ({SWITCH}=0)"),
        Some(why) => format!("libtorch's fused oneDNN operator ({why})"),
    }
}

/// Whether oneDNN can make bfloat16 convolutions on this CPU: it needs AVX-512 (native bf16 instructions, or
/// AVX-512 to convert in software) or AVX-NE-CONVERT, and has none for a CPU with AVX2 alone. Probed once, on
/// a small convolution, through the path the networks use.
pub fn bf16_convolutions() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        let _guard = tch::no_grad_guard();
        let g = Geometry { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 };
        let kind = (tch::Kind::BFloat16, tch::Device::Cpu);
        let (w, x) = (Tensor::zeros([16, 16, 1, 1], kind), Tensor::zeros([1, 16, 4, 4], kind));
        if available() {
            Conv::new(&w, None, g, [1, 16, 4, 4], Post::Unary(Unary::None)).is_ok()
        } else {
            super::kernels::has_onednn()
                && super::kernels::reorder_conv_weight(&w, g, [1, 16, 4, 4])
                    .and_then(|w| super::kernels::conv_pointwise(&x, &w, None, g, Unary::None))
                    .is_ok()
        }
    })
}

/// What follows the convolution inside its primitive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Post {
    Unary(Unary),
    /// `+ other`, then ReLU if `relu`: a residual connection.
    Add {
        relu: bool,
    },
}

/// A convolution made for one input shape.
#[derive(Debug)]
pub struct Conv(*mut c_void);

// SAFETY: a made convolution is immutable; running it uses per-thread streams and scratch memory.
unsafe impl Send for Conv {}
unsafe impl Sync for Conv {}

impl Drop for Conv {
    fn drop(&mut self) {
        unsafe { ci_onednn_free(self.0) }
    }
}

impl Conv {
    /// The convolution of `weight` (float32 or bfloat16, any layout) and `bias` for inputs shaped `input_size`,
    /// then `post`.
    pub fn new(
        weight: &Tensor,
        bias: Option<&Tensor>,
        g: Geometry,
        input_size: [i64; 4],
        post: Post,
    ) -> Result<Self, TchError> {
        let ((attr, lo, hi), binary, relu) = match post {
            Post::Unary(u) => (u.attr(), 0, 0),
            Post::Add { relu } => ((c"none", 0.0, 0.0), 1, relu as i32),
        };
        let mut out = std::ptr::null_mut();
        check(unsafe {
            ci_onednn_conv_new(
                weight.as_ptr(),
                bias.map_or(std::ptr::null(), Tensor::as_ptr),
                g.padding.as_ptr(),
                g.stride.as_ptr(),
                g.dilation.as_ptr(),
                g.groups,
                input_size.as_ptr(),
                attr.as_ptr(),
                lo,
                hi,
                binary,
                relu,
                &mut out,
            )
        })?;
        Ok(Conv(out))
    }

    /// The oneDNN implementation it runs, as oneDNN names it (e.g. `brg_conv_fwd:avx512_core`).
    pub fn implementation(&self) -> String {
        // SAFETY: a NUL-terminated string owned by the convolution.
        unsafe { CStr::from_ptr(ci_onednn_implementation(self.0)) }.to_string_lossy().into_owned()
    }

    /// The convolution of `x` (the shape it was made for), with `other` the residual of an [`Post::Add`]
    /// convolution; a new channels-last tensor.
    pub fn forward(&self, x: &Tensor, other: Option<&Tensor>) -> Result<Tensor, TchError> {
        let mut out = std::ptr::null_mut();
        check(unsafe { ci_onednn_run(self.0, x.as_ptr(), other.map_or(std::ptr::null(), Tensor::as_ptr), &mut out) })?;
        Ok(take(out))
    }
}

/// Max pooling made for one input shape and type.
#[derive(Debug)]
pub struct MaxPool(Conv);

/// A max pooling's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub kernel: [i64; 2],
    pub stride: [i64; 2],
    pub padding: [i64; 2],
    pub ceil_mode: bool,
}

impl MaxPool {
    /// Max pooling of inputs shaped and typed like `x` (float32 or bfloat16), as `Tensor::max_pool2d` with a
    /// dilation of 1 computes it.
    pub fn new(x: &Tensor, w: Window) -> Result<Self, TchError> {
        let mut out = std::ptr::null_mut();
        check(unsafe {
            ci_onednn_max_pool_new(
                x.as_ptr(),
                w.kernel.as_ptr(),
                w.stride.as_ptr(),
                w.padding.as_ptr(),
                w.ceil_mode as i32,
                &mut out,
            )
        })?;
        Ok(MaxPool(Conv(out)))
    }

    /// The pooling of `x` (the shape and type it was made for); a new channels-last tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        self.0.forward(x, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::channels_last;
    use crate::models::test_data;
    use tch::Kind;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a.to_kind(Kind::Float) - b.to_kind(Kind::Float)).abs().max()).unwrap()
    }

    #[test]
    fn this_libtorch_can_be_called_directly() {
        assert_eq!(unavailable(), None);
    }

    #[test]
    fn direct_convolutions_equal_aten_ones() {
        let _guard = tch::no_grad_guard();
        let cases = [
            (Geometry { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 }, [2, 8, 12, 12], 16, 3),
            (Geometry { stride: [2, 2], padding: [0, 0], dilation: [1, 1], groups: 1 }, [1, 8, 9, 9], 24, 1),
            (Geometry { stride: [1, 1], padding: [2, 2], dilation: [2, 2], groups: 1 }, [1, 8, 10, 10], 8, 3),
            (Geometry { stride: [2, 2], padding: [2, 2], dilation: [1, 1], groups: 8 }, [1, 8, 11, 11], 8, 5),
            (Geometry { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 2 }, [1, 8, 7, 7], 4, 3),
        ];
        for (n, (g, input, cout, k)) in cases.into_iter().enumerate() {
            let seed = 400 + 10 * n as u64;
            let x = channels_last(&test_data::randn(&input, seed));
            let w = test_data::randn(&[cout, input[1] / g.groups, k, k], seed + 1);
            let b = test_data::randn(&[cout], seed + 2);
            let plain = x.conv2d(&w, Some(&b), g.stride, g.padding, g.dilation, g.groups);
            for (act, expected) in [
                (Unary::None, plain.shallow_clone()),
                (Unary::Relu, plain.relu()),
                (Unary::Hardtanh(0.0, 6.0), plain.clamp(0.0, 6.0)),
                (Unary::Hardswish, plain.hardswish()),
                (Unary::Silu, plain.silu()),
                (Unary::Gelu, plain.gelu("none")),
            ] {
                for weight in [w.shallow_clone(), channels_last(&w)] {
                    let conv = Conv::new(&weight, Some(&b), g, input, Post::Unary(act)).unwrap();
                    let got = conv.forward(&x, None).unwrap();
                    assert_eq!(got.size(), expected.size());
                    assert!(max_diff(&got, &expected) < 1e-4, "case {n}, {act:?}: {}", max_diff(&got, &expected));
                }
            }
            let other = channels_last(&test_data::randn(&plain.size(), seed + 3));
            let before = other.copy();
            for relu in [false, true] {
                let sum = &plain + &other;
                let expected = if relu { sum.relu() } else { sum };
                let conv = Conv::new(&w, Some(&b), g, input, Post::Add { relu }).unwrap();
                assert!(max_diff(&conv.forward(&x, Some(&other)).unwrap(), &expected) < 1e-4);
            }
            assert_eq!(max_diff(&other, &before), 0.0, "the residual input is left as it was");
            // Without a bias, and from a contiguous (not channels-last) input.
            let conv = Conv::new(&w, None, g, input, Post::Unary(Unary::None)).unwrap();
            let expected = x.conv2d::<Tensor>(&w, None, g.stride, g.padding, g.dilation, g.groups);
            assert!(max_diff(&conv.forward(&x.contiguous(), None).unwrap(), &expected) < 1e-4);
        }
    }

    #[test]
    fn bfloat16_convolutions_follow_float_ones() {
        let _guard = tch::no_grad_guard();
        let g = Geometry { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
        let x = channels_last(&test_data::randn(&[1, 16, 8, 8], 451));
        let w = test_data::randn(&[32, 16, 3, 3], 452) * 0.1;
        let b = test_data::randn(&[32], 453);
        let expected = x.conv2d(&w, Some(&b), [1, 1], [1, 1], [1, 1], 1).relu();
        let bf = |t: &Tensor| t.to_kind(Kind::BFloat16);
        let conv = Conv::new(&bf(&w), Some(&bf(&b)), g, [1, 16, 8, 8], Post::Unary(Unary::Relu)).unwrap();
        let got = conv.forward(&bf(&x), None).unwrap();
        assert_eq!(got.kind(), Kind::BFloat16);
        assert!(max_diff(&got, &expected) < 0.1, "{}", max_diff(&got, &expected));
    }

    #[test]
    fn max_pooling_equals_libtorchs() {
        let _guard = tch::no_grad_guard();
        for (n, (input, w)) in [
            ([1, 8, 112, 112], Window { kernel: [3, 3], stride: [2, 2], padding: [1, 1], ceil_mode: false }),
            ([2, 4, 14, 14], Window { kernel: [2, 2], stride: [2, 2], padding: [0, 0], ceil_mode: false }),
            ([1, 4, 13, 13], Window { kernel: [3, 3], stride: [2, 2], padding: [0, 0], ceil_mode: true }),
            ([1, 4, 14, 15], Window { kernel: [3, 3], stride: [2, 2], padding: [1, 1], ceil_mode: true }),
            ([1, 4, 9, 9], Window { kernel: [3, 3], stride: [1, 1], padding: [1, 1], ceil_mode: true }),
        ]
        .into_iter()
        .enumerate()
        {
            // Negative values everywhere: the padding must never be the maximum.
            let x = channels_last(&(test_data::randn(&input, 470 + n as u64).abs() * -1.0 - 0.5));
            let expected = x.max_pool2d(w.kernel, w.stride, w.padding, [1, 1], w.ceil_mode);
            for x in [x.shallow_clone(), x.to_kind(Kind::BFloat16)] {
                let got = MaxPool::new(&x, w).unwrap().forward(&x).unwrap();
                assert_eq!(got.size(), expected.size(), "case {n}");
                assert_eq!(got.kind(), x.kind());
                assert_eq!(max_diff(&got, &expected.to_kind(x.kind())), 0.0, "case {n} {:?}", x.kind());
            }
        }
    }

    #[test]
    fn misuse_is_an_error_not_an_abort() {
        let _guard = tch::no_grad_guard();
        let g = Geometry { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
        let w = test_data::randn(&[4, 3, 3, 3], 461);
        assert!(Conv::new(&w, None, g, [1, 5, 8, 8], Post::Unary(Unary::None)).is_err(), "wrong input channels");
        assert!(Conv::new(&w.to_kind(Kind::Double), None, g, [1, 3, 8, 8], Post::Unary(Unary::None)).is_err());
        let conv = Conv::new(&w, None, g, [1, 3, 8, 8], Post::Unary(Unary::None)).unwrap();
        assert!(conv.forward(&test_data::randn(&[1, 3, 9, 9], 462), None).is_err(), "wrong input size");
        assert!(conv.forward(&test_data::randn(&[1, 3, 8, 8], 463), Some(&w)).is_err(), "no residual sum");
        assert!(!conv.implementation().is_empty());
    }
}
