// libtorch's fused and quantized CPU operators that tch's generated API does not reach: oneDNN convolutions with
// prepacked weights and a fused activation or residual sum (the operators TorchInductor uses on the CPU), and the
// int8 convolutions and additions of the x86 quantization engine. Each is called through libtorch's operator
// dispatcher by its schema name, so nothing here depends on libtorch's private headers.
//
// Tensors cross the boundary as tch's `at::Tensor*`. Every function returns NULL on success or a malloc'ed error
// message, which the caller frees; results are written to `out` as a new heap tensor the caller owns.
#include <ATen/ATen.h>
#include <ATen/Version.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "guarded.h"

namespace {

using guarded_call::guarded;

c10::OperatorHandle op(const char *name, const char *overload) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

std::vector<int64_t> list2(const int64_t *values) { return {values[0], values[1]}; }

c10::IValue optional_tensor(const at::Tensor *t) {
    return t == nullptr ? c10::IValue() : c10::IValue(*t);
}

// The unary post-op and its scalars: "none", "relu", "hardtanh" (lo, hi: ReLU6 is 0, 6), "hardswish", "swish",
// "gelu", "sigmoid".
std::vector<c10::optional<c10::Scalar>> unary_scalars(const std::string &attr, double lo, double hi) {
    if (attr == "hardtanh") {
        return {c10::Scalar(lo), c10::Scalar(hi)};
    }
    return {};
}

// The post-op's algorithm: GELU's exact form ("none", PyTorch's default) rather than its tanh approximation.
c10::IValue unary_algorithm(const std::string &attr) {
    return attr == "gelu" ? c10::IValue(std::string("none")) : c10::IValue();
}

at::Tensor run(const c10::OperatorHandle &handle, torch::jit::Stack &stack) {
    handle.callBoxed(&stack);
    return stack.at(0).toTensor();
}

}  // namespace

extern "C" {

// The vector kernels libtorch's CPU operators dispatch to, as torch.backends.cpu.get_cpu_capability() names them
// ("AVX512", "AVX2", "DEFAULT"...): a static copy, valid for the process's life.
const char *ci_cpu_capability() {
    static const std::string capability = at::get_cpu_capability();
    return capability.c_str();
}

// Whether this libtorch has oneDNN and its fused convolution operator.
int ci_has_onednn() {
    try {
        return at::hasMKLDNN() &&
               c10::Dispatcher::singleton().findSchema({"mkldnn::_convolution_pointwise", ""}).has_value();
    } catch (...) {
        return 0;
    }
}

// oneDNN's blocked layout for a convolution weight, chosen for inputs of `input_size` (N, C, H, W).
char *ci_reorder_conv_weight(const at::Tensor *weight, const int64_t *padding, const int64_t *stride,
                             const int64_t *dilation, int64_t groups, const int64_t *input_size, at::Tensor **out) {
    return guarded([&] {
        static const auto handle = op("mkldnn::_reorder_convolution_weight", "");
        torch::jit::Stack stack{*weight, list2(padding), list2(stride), list2(dilation), groups,
                                std::vector<int64_t>(input_size, input_size + 4)};
        *out = new at::Tensor(run(handle, stack));
    });
}

// conv2d(x, weight, bias) followed by the unary post-op `attr`, in one oneDNN primitive.
char *ci_conv_pointwise(const at::Tensor *x, const at::Tensor *weight, const at::Tensor *bias, const int64_t *padding,
                        const int64_t *stride, const int64_t *dilation, int64_t groups, const char *attr, double lo,
                        double hi, at::Tensor **out) {
    return guarded([&] {
        static const auto handle = op("mkldnn::_convolution_pointwise", "");
        std::string unary(attr);
        torch::jit::Stack stack{*x,
                                *weight,
                                optional_tensor(bias),
                                list2(padding),
                                list2(stride),
                                list2(dilation),
                                groups,
                                unary,
                                unary_scalars(unary, lo, hi),
                                unary_algorithm(unary)};
        *out = new at::Tensor(run(handle, stack));
    });
}

// conv2d(x, weight, bias) + other, then ReLU if `relu`: the residual sum fused into the convolution.
char *ci_conv_pointwise_add(const at::Tensor *x, const at::Tensor *other, const at::Tensor *weight,
                            const at::Tensor *bias, const int64_t *padding, const int64_t *stride,
                            const int64_t *dilation, int64_t groups, int relu, at::Tensor **out) {
    return guarded([&] {
        static const auto handle = op("mkldnn::_convolution_pointwise", "binary");
        torch::jit::Stack stack{*x,
                                *other,
                                *weight,
                                optional_tensor(bias),
                                list2(padding),
                                list2(stride),
                                list2(dilation),
                                groups,
                                std::string("add"),
                                c10::IValue(1.0),
                                relu ? c10::IValue(std::string("relu")) : c10::IValue(),
                                std::vector<c10::optional<c10::Scalar>>{},
                                c10::IValue()};
        *out = new at::Tensor(run(handle, stack));
    });
}

// Selects the x86 engine for quantized operators (FBGEMM and oneDNN, chosen per operator), and makes one quantized
// tensor with warnings silenced: libtorch warns once per process that quantized tensor types are deprecated, a
// notice for Python users of torch.ao that a command-line user cannot act on.
char *ci_use_x86_quantized_engine() {
    return guarded([&] {
        at::globalContext().setQEngine(at::QEngine::X86);
        struct Silent : c10::WarningHandler {
            void process(const c10::Warning &) override {}
        } silent;
        c10::WarningUtils::WarningHandlerGuard guard(&silent);
        at::quantize_per_tensor(at::zeros({1}), 1.0, 0, at::kQUInt8);
    });
}

// A quantized convolution's weights (qint8, per channel) and float bias, packed for the engine.
char *ci_qconv_prepack(const at::Tensor *qweight, const at::Tensor *bias, const int64_t *stride,
                       const int64_t *padding, const int64_t *dilation, int64_t groups, void **packed) {
    return guarded([&] {
        static const auto handle = op("quantized::conv2d_prepack", "");
        torch::jit::Stack stack{*qweight, optional_tensor(bias), list2(stride), list2(padding), list2(dilation),
                                groups};
        handle.callBoxed(&stack);
        *packed = new c10::IValue(std::move(stack.at(0)));
    });
}

// Frees what ci_qconv_prepack or ci_qlinear_prepack made.
void ci_packed_free(void *packed) { delete static_cast<c10::IValue *>(packed); }

// The quantized convolution of quint8 `qx`, its output requantized to (scale, zero_point), with ReLU if `relu`.
char *ci_qconv(const at::Tensor *qx, const void *packed, double scale, int64_t zero_point, int relu,
               at::Tensor **out) {
    return guarded([&] {
        static const auto plain = op("quantized::conv2d", "new");
        static const auto with_relu = op("quantized::conv2d_relu", "new");
        torch::jit::Stack stack{*qx, *static_cast<const c10::IValue *>(packed), scale, zero_point};
        *out = new at::Tensor(run(relu ? with_relu : plain, stack));
    });
}

// A fully connected layer's weights (qint8, per output channel) and float bias, packed for the engine.
char *ci_qlinear_prepack(const at::Tensor *qweight, const at::Tensor *bias, void **packed) {
    return guarded([&] {
        static const auto handle = op("quantized::linear_prepack", "");
        torch::jit::Stack stack{*qweight, optional_tensor(bias)};
        handle.callBoxed(&stack);
        *packed = new c10::IValue(std::move(stack.at(0)));
    });
}

// The fully connected layer of float `x`, quantized on the fly per batch (dynamic quantization), float out.
char *ci_qlinear_dynamic(const at::Tensor *x, const void *packed, at::Tensor **out) {
    return guarded([&] {
        static const auto handle = op("quantized::linear_dynamic", "");
        torch::jit::Stack stack{*x, *static_cast<const c10::IValue *>(packed), false};
        *out = new at::Tensor(run(handle, stack));
    });
}

// a + b for two quint8 tensors, requantized to (scale, zero_point), with ReLU if `relu`.
char *ci_qadd(const at::Tensor *a, const at::Tensor *b, double scale, int64_t zero_point, int relu,
              at::Tensor **out) {
    return guarded([&] {
        static const auto plain = op("quantized::add", "");
        static const auto with_relu = op("quantized::add_relu", "");
        torch::jit::Stack stack{*a, *b, scale, zero_point};
        *out = new at::Tensor(run(relu ? with_relu : plain, stack));
    });
}

}  // extern "C"
