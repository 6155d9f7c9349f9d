// Convolutions and max pooling through oneDNN's own API: a primitive is made once per layer and input shape, a
// convolution's weights are reordered once into the layout it chose, and each call only executes it on the
// tensors' memory. libtorch's mkldnn::_convolution_pointwise computes the same primitive but builds its
// descriptor again on every call, which costs more than the convolution itself for the small ones of a batch-1
// pass (a 1×1 bfloat16 convolution of 256 channels at 14×14 with AMX: 15 µs executed directly, 43 µs through
// the operator).
//
// libtorch links oneDNN in statically and exports none of its functions. build.rs reads their addresses from
// libtorch_cpu.so's symbol table into onednn_symbols.h, with the first 32 bytes of each function's code; they are
// called only if the library this process loaded has exactly those bytes at those addresses, i.e. is the very
// file build.rs read. Otherwise ci_onednn_unavailable() says why, and the caller uses libtorch's operators.
//
// Every function returns NULL on success or a malloc'ed error message (guarded.h).
#include <ATen/ATen.h>

#include <link.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <stdexcept>
#include <string>
#include <vector>

#include "guarded.h"
#include "onednn_symbols.h"

#if CI_ONEDNN_FOUND
#include <oneapi/dnnl/dnnl.h>
#endif

using guarded_call::guarded;

#if CI_ONEDNN_FOUND
namespace {

// The oneDNN functions, at their addresses in the loaded libtorch_cpu.so.
struct Api {
#define CI_FIELD(name, address, code) decltype(&::name) name;
    CI_ONEDNN_FUNCTIONS(CI_FIELD)
#undef CI_FIELD
};

struct Resolved {
    Api api{};
    std::string error;  // empty when usable
};

// Whether [address, address + size) lies in one of the object's loaded, executable segments.
bool in_code(const dl_phdr_info *info, uintptr_t address, size_t size) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const auto &ph = info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) && address >= start && address + size <= start + ph.p_filesz) {
            return true;
        }
    }
    return false;
}

// Fills `api` from the loaded library whose code matches the table; an error message otherwise.
std::string resolve(Api &api) {
    struct Search {
        Api *api;
        bool found;
    } search{&api, false};
    dl_iterate_phdr(
        [](dl_phdr_info *info, size_t, void *data) {
            auto *s = static_cast<Search *>(data);
            if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, "libtorch_cpu") == nullptr) {
                return 0;
            }
            bool all = true;
#define CI_CHECK(name, address, code)                                                          \
    if (all) {                                                                                 \
        static const char expected[] = code;                                                   \
        uintptr_t at = info->dlpi_addr + (address);                                            \
        all = in_code(info, at, sizeof expected - 1) &&                                        \
              std::memcmp(reinterpret_cast<const void *>(at), expected, sizeof expected - 1) == 0; \
        s->api->name = reinterpret_cast<decltype(&::name)>(at);                                \
    }
            CI_ONEDNN_FUNCTIONS(CI_CHECK)
#undef CI_CHECK
            s->found = all;
            return all ? 1 : 0;
        },
        &search);
    if (!search.found) {
        return "the loaded libtorch_cpu.so is not the one classify-image was built against (rebuild it)";
    }
    const dnnl_version_t *v = api.dnnl_version();
    if (v->major != DNNL_VERSION_MAJOR || v->minor != DNNL_VERSION_MINOR) {
        return "libtorch's oneDNN is " + std::to_string(v->major) + "." + std::to_string(v->minor) +
               ", its headers say " + std::to_string(DNNL_VERSION_MAJOR) + "." + std::to_string(DNNL_VERSION_MINOR);
    }
    return "";
}

const Resolved &resolved() {
    static const Resolved r = [] {
        Resolved out;
        out.error = resolve(out.api);
        return out;
    }();
    return r;
}

const Api &api() { return resolved().api; }

void check(dnnl_status_t status, const char *what) {
    if (status != dnnl_success) {
        throw std::runtime_error(std::string("oneDNN: ") + what + " failed (status " + std::to_string(status) + ")");
    }
}

dnnl_engine_t engine() {
    static const dnnl_engine_t e = [] {
        dnnl_engine_t made = nullptr;
        check(api().dnnl_engine_create(&made, dnnl_cpu, 0), "creating the CPU engine");
        return made;
    }();
    return e;
}

// One stream per thread: a primitive may run on several threads at once, a stream is used by one.
dnnl_stream_t stream() {
    thread_local const dnnl_stream_t s = [] {
        dnnl_stream_t made = nullptr;
        check(api().dnnl_stream_create(&made, engine(), dnnl_stream_default_flags), "creating a stream");
        return made;
    }();
    return s;
}

dnnl_data_type_t data_type(const at::Tensor &t) {
    switch (t.scalar_type()) {
        case at::kFloat:
            return dnnl_f32;
        case at::kBFloat16:
            return dnnl_bf16;
        default:
            throw std::runtime_error(std::string("oneDNN convolutions take float32 or bfloat16, not ") +
                                     c10::toString(t.scalar_type()));
    }
}

// Owns a memory descriptor.
struct Desc {
    dnnl_memory_desc_t md = nullptr;
    Desc() = default;
    Desc(const Desc &) = delete;
    Desc &operator=(const Desc &) = delete;
    ~Desc() {
        if (md != nullptr) api().dnnl_memory_desc_destroy(md);
    }
};

// A dense N, C, H, W tensor stored channels-last (N, H, W, C).
void nhwc(Desc &d, const std::vector<int64_t> &dims, dnnl_data_type_t dt) {
    check(api().dnnl_memory_desc_create_with_tag(&d.md, 4, dims.data(), dt, dnnl_nhwc), "describing a tensor");
}

// Executes `primitive` with `args` (kind, memory descriptor, data pointer) on this thread's stream.
void execute(dnnl_primitive_t primitive, const std::vector<std::tuple<int, const_dnnl_memory_desc_t, void *>> &args) {
    std::vector<dnnl_exec_arg_t> exec;
    exec.reserve(args.size());
    for (const auto &[kind, md, data] : args) {
        dnnl_memory_t m = nullptr;
        dnnl_status_t status = api().dnnl_memory_create(&m, md, engine(), data);
        if (status != dnnl_success) {
            for (auto &e : exec) api().dnnl_memory_destroy(e.memory);
            check(status, "wrapping a tensor");
        }
        exec.push_back({kind, m});
    }
    dnnl_status_t status = api().dnnl_primitive_execute(primitive, stream(), static_cast<int>(exec.size()), exec.data());
    if (status == dnnl_success) status = api().dnnl_stream_wait(stream());
    for (auto &e : exec) api().dnnl_memory_destroy(e.memory);
    check(status, "executing a primitive");
}

// This thread's scratch memory, at least `size` bytes (one primitive runs at a time on a thread).
void *scratchpad(size_t size) {
    thread_local at::Tensor buffer;
    if (!buffer.defined() || static_cast<size_t>(buffer.numel()) < size) {
        buffer = at::empty({static_cast<int64_t>(size) + 64}, at::kByte);
    }
    return buffer.data_ptr();
}

// A convolution with its post-ops, made for one input shape; or, without weights, a pooling.
struct Primitive {
    dnnl_primitive_desc_t pd = nullptr;
    dnnl_primitive_t primitive = nullptr;
    at::Tensor weights;  // bytes, in the primitive's layout
    at::Tensor bias;     // undefined if none
    Desc src, dst, other, bias_md;
    const_dnnl_memory_desc_t weights_md = nullptr, scratch_md = nullptr;  // owned by pd
    size_t scratch_size = 0;
    std::vector<int64_t> input_size, output_size;
    at::ScalarType type;
    bool binary = false;

    ~Primitive() {
        if (primitive != nullptr) api().dnnl_primitive_destroy(primitive);
        if (pd != nullptr) api().dnnl_primitive_desc_destroy(pd);
    }
};

// The unary post-op named as mkldnn::_convolution_pointwise names it, with its parameters.
void append_unary(dnnl_post_ops_t ops, const std::string &attr, double lo, double hi) {
    auto eltwise = [&](dnnl_alg_kind_t alg, float alpha, float beta) {
        check(api().dnnl_post_ops_append_eltwise(ops, alg, alpha, beta), "adding an activation");
    };
    if (attr == "none") return;
    if (attr == "relu") return eltwise(dnnl_eltwise_relu, 0.f, 0.f);
    if (attr == "hardtanh") return eltwise(dnnl_eltwise_clip, static_cast<float>(lo), static_cast<float>(hi));
    if (attr == "hardswish") return eltwise(dnnl_eltwise_hardswish, 1.f / 6.f, 0.5f);
    if (attr == "swish") return eltwise(dnnl_eltwise_swish, 1.f, 0.f);
    if (attr == "gelu") return eltwise(dnnl_eltwise_gelu_erf, 0.f, 0.f);
    throw std::runtime_error("no oneDNN post-op for the activation " + attr);
}

}  // namespace
#endif

extern "C" {

// NULL if oneDNN's functions can be called directly in this process, else why not (a static string).
const char *ci_onednn_unavailable() {
#if CI_ONEDNN_FOUND
    static const std::string error = resolved().error;
    return error.empty() ? nullptr : error.c_str();
#else
    return "libtorch_cpu.so has no symbol table or libtorch has no oneDNN headers";
#endif
}

// A convolution of `weight` (O, I/groups, KH, KW, any strides) and `bias` for inputs of `input_size`, followed by
// the residual sum if `binary` (then ReLU if `relu`), or by the unary post-op `attr` (as
// mkldnn::_convolution_pointwise names them: none, relu, hardtanh(lo, hi), hardswish, swish, gelu).
char *ci_onednn_conv_new(const at::Tensor *weight, const at::Tensor *bias, const int64_t *padding,
                         const int64_t *stride, const int64_t *dilation, int64_t groups, const int64_t *input_size,
                         const char *attr, double lo, double hi, int binary, int relu, void **out) {
    return guarded([&] {
#if CI_ONEDNN_FOUND
        if (const char *why = ci_onednn_unavailable()) throw std::runtime_error(why);
        const Api &a = api();
        auto conv = std::make_unique<Primitive>();
        const at::Tensor &w = *weight;
        dnnl_data_type_t dt = data_type(w);
        conv->type = w.scalar_type();
        conv->input_size.assign(input_size, input_size + 4);
        int64_t o = w.size(0), kh = w.size(2), kw = w.size(3);
        auto out_dim = [&](int i, int64_t k) {
            return (input_size[2 + i] + 2 * padding[i] - dilation[i] * (k - 1) - 1) / stride[i] + 1;
        };
        conv->output_size = {input_size[0], o, out_dim(0, kh), out_dim(1, kw)};
        if (input_size[1] != w.size(1) * groups || conv->output_size[2] < 1 || conv->output_size[3] < 1) {
            throw std::runtime_error("the convolution's weight does not fit its input");
        }
        nhwc(conv->src, conv->input_size, dt);
        nhwc(conv->dst, conv->output_size, dt);
        // The weight as it is stored, and as the primitive wants it (grouped: G, O/G, I/G, KH, KW).
        Desc plain, any;
        std::vector<int64_t> dims, strides;
        if (groups == 1) {
            dims = {o, w.size(1), kh, kw};
            strides = {w.stride(0), w.stride(1), w.stride(2), w.stride(3)};
        } else {
            dims = {groups, o / groups, w.size(1), kh, kw};
            strides = {o / groups * w.stride(0), w.stride(0), w.stride(1), w.stride(2), w.stride(3)};
        }
        int rank = static_cast<int>(dims.size());
        check(a.dnnl_memory_desc_create_with_strides(&plain.md, rank, dims.data(), dt, strides.data()),
              "describing the weight");
        check(a.dnnl_memory_desc_create_with_tag(&any.md, rank, dims.data(), dt, dnnl_format_tag_any),
              "describing the weight");
        if (bias != nullptr) {
            conv->bias = bias->contiguous();
            int64_t n = o;
            check(a.dnnl_memory_desc_create_with_tag(&conv->bias_md.md, 1, &n, data_type(conv->bias), dnnl_a),
                  "describing the bias");
        }

        dnnl_primitive_attr_t pattr = nullptr;
        dnnl_post_ops_t ops = nullptr;
        check(a.dnnl_primitive_attr_create(&pattr), "creating attributes");
        std::unique_ptr<dnnl_primitive_attr, decltype(a.dnnl_primitive_attr_destroy)> attr_guard(
            pattr, a.dnnl_primitive_attr_destroy);
        check(a.dnnl_post_ops_create(&ops), "creating post-ops");
        std::unique_ptr<dnnl_post_ops, decltype(a.dnnl_post_ops_destroy)> ops_guard(ops, a.dnnl_post_ops_destroy);
        if (binary) {
            conv->binary = true;
            nhwc(conv->other, conv->output_size, dt);
            check(a.dnnl_post_ops_append_binary(ops, dnnl_binary_add, conv->other.md), "adding the residual sum");
            if (relu) append_unary(ops, "relu", 0, 0);
        } else {
            append_unary(ops, attr, lo, hi);
        }
        check(a.dnnl_primitive_attr_set_post_ops(pattr, ops), "setting post-ops");
        check(a.dnnl_primitive_attr_set_scratchpad_mode(pattr, dnnl_scratchpad_mode_user), "setting the scratchpad");
        int64_t st[2] = {stride[0], stride[1]}, dil[2] = {dilation[0] - 1, dilation[1] - 1},
                pad[2] = {padding[0], padding[1]};
        check(a.dnnl_convolution_forward_primitive_desc_create(&conv->pd, engine(), dnnl_forward_inference,
                                                               dnnl_convolution_direct, conv->src.md, any.md,
                                                               conv->bias_md.md, conv->dst.md, st, dil, pad, pad, pattr),
              "creating the convolution");
        check(a.dnnl_primitive_create(&conv->primitive, conv->pd), "creating the convolution");

        // The weight, reordered once into the layout the primitive chose.
        const_dnnl_memory_desc_t packed = a.dnnl_primitive_desc_query_md(conv->pd, dnnl_query_weights_md, 0);
        conv->weights_md = packed;
        conv->scratch_md = a.dnnl_primitive_desc_query_md(conv->pd, dnnl_query_scratchpad_md, 0);
        conv->scratch_size = a.dnnl_memory_desc_get_size(conv->scratch_md);
        conv->weights = at::empty({static_cast<int64_t>(a.dnnl_memory_desc_get_size(packed))}, at::kByte);
        dnnl_primitive_desc_t rpd = nullptr;
        check(a.dnnl_reorder_primitive_desc_create(&rpd, plain.md, engine(), packed, engine(), nullptr),
              "creating the weight reorder");
        std::unique_ptr<dnnl_primitive_desc, decltype(a.dnnl_primitive_desc_destroy)> rpd_guard(
            rpd, a.dnnl_primitive_desc_destroy);
        dnnl_primitive_t reorder = nullptr;
        check(a.dnnl_primitive_create(&reorder, rpd), "creating the weight reorder");
        std::unique_ptr<dnnl_primitive, decltype(a.dnnl_primitive_destroy)> reorder_guard(reorder,
                                                                                           a.dnnl_primitive_destroy);
        at::Tensor source = w;  // kept alive while the reorder reads it
        execute(reorder, {{DNNL_ARG_FROM, plain.md, source.data_ptr()}, {DNNL_ARG_TO, packed, conv->weights.data_ptr()}});
        *out = conv.release();
#else
        throw std::runtime_error(ci_onednn_unavailable());
#endif
    });
}

// The oneDNN implementation the convolution runs (e.g. "brg_conv_fwd:avx512_core_amx"), a static string valid
// while the convolution lives.
const char *ci_onednn_implementation(const void *conv) {
#if CI_ONEDNN_FOUND
    const char *info = nullptr;
    api().dnnl_primitive_desc_query(static_cast<const Primitive *>(conv)->pd, dnnl_query_impl_info_str, 0, &info);
    return info == nullptr ? "" : info;
#else
    return "";
#endif
}

// Runs the convolution (or pooling) on `x` (its input shape, any layout), with `other` the residual (its output
// shape) for a convolution made with `binary`; the output is a new channels-last tensor.
char *ci_onednn_run(const void *handle, const at::Tensor *x, const at::Tensor *other, at::Tensor **out) {
    return guarded([&] {
#if CI_ONEDNN_FOUND
        const auto *conv = static_cast<const Primitive *>(handle);
        if (x->sizes() != at::IntArrayRef(conv->input_size) || x->scalar_type() != conv->type) {
            throw std::runtime_error("the input does not have the shape and type the convolution was made for");
        }
        if (conv->binary != (other != nullptr)) {
            throw std::runtime_error("a residual sum needs exactly the convolution made for one");
        }
        at::Tensor src = x->contiguous(at::MemoryFormat::ChannelsLast);
        at::Tensor dst = at::empty(conv->output_size, src.options().memory_format(at::MemoryFormat::ChannelsLast));
        std::vector<std::tuple<int, const_dnnl_memory_desc_t, void *>> args{
            {DNNL_ARG_SRC, conv->src.md, src.data_ptr()},
            {DNNL_ARG_DST, conv->dst.md, dst.data_ptr()},
        };
        if (conv->weights.defined()) {
            args.emplace_back(DNNL_ARG_WEIGHTS, conv->weights_md, conv->weights.data_ptr());
        }
        if (conv->bias.defined()) {
            args.emplace_back(DNNL_ARG_BIAS, conv->bias_md.md, conv->bias.data_ptr());
        }
        at::Tensor residual;
        if (other != nullptr) {
            if (other->sizes() != at::IntArrayRef(conv->output_size) || other->scalar_type() != conv->type) {
                throw std::runtime_error("the residual does not have the convolution's output shape and type");
            }
            residual = other->contiguous(at::MemoryFormat::ChannelsLast);
            args.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, conv->other.md, residual.data_ptr());
        }
        if (conv->scratch_size > 0) {
            args.emplace_back(DNNL_ARG_SCRATCHPAD, conv->scratch_md, scratchpad(conv->scratch_size));
        }
        execute(conv->primitive, args);
        *out = new at::Tensor(std::move(dst));
#else
        throw std::runtime_error(ci_onednn_unavailable());
#endif
    });
}

void ci_onednn_free(void *conv) {
#if CI_ONEDNN_FOUND
    delete static_cast<Primitive *>(conv);
#endif
}

// Max pooling of inputs shaped and typed like `x` (N, C, H, W), as torch.nn.functional.max_pool2d computes it
// (padding never wins; `ceil_mode` rounds the output size up, without windows that start in the padding).
char *ci_onednn_max_pool_new(const at::Tensor *x, const int64_t *kernel, const int64_t *stride,
                             const int64_t *padding, int ceil_mode, void **out) {
    return guarded([&] {
#if CI_ONEDNN_FOUND
        if (const char *why = ci_onednn_unavailable()) throw std::runtime_error(why);
        const Api &a = api();
        if (x->dim() != 4) throw std::runtime_error("max pooling takes N, C, H, W inputs");
        auto pool = std::make_unique<Primitive>();
        dnnl_data_type_t dt = data_type(*x);
        pool->type = x->scalar_type();
        pool->input_size = x->sizes().vec();
        int64_t out_size[2], pad_r[2];
        for (int i = 0; i < 2; i++) {
            int64_t in = pool->input_size[2 + i], span = in + 2 * padding[i] - kernel[i];
            int64_t n = (ceil_mode ? (span + stride[i] - 1) / stride[i] : span / stride[i]) + 1;
            if (ceil_mode && (n - 1) * stride[i] >= in + padding[i]) n--;
            if (span < 0 || n < 1) throw std::runtime_error("the pooling window does not fit the input");
            out_size[i] = n;
            pad_r[i] = (n - 1) * stride[i] + kernel[i] - in - padding[i];
        }
        pool->output_size = {pool->input_size[0], pool->input_size[1], out_size[0], out_size[1]};
        nhwc(pool->src, pool->input_size, dt);
        nhwc(pool->dst, pool->output_size, dt);
        dnnl_primitive_attr_t pattr = nullptr;
        check(a.dnnl_primitive_attr_create(&pattr), "creating attributes");
        std::unique_ptr<dnnl_primitive_attr, decltype(a.dnnl_primitive_attr_destroy)> attr_guard(
            pattr, a.dnnl_primitive_attr_destroy);
        check(a.dnnl_primitive_attr_set_scratchpad_mode(pattr, dnnl_scratchpad_mode_user), "setting the scratchpad");
        int64_t st[2] = {stride[0], stride[1]}, k[2] = {kernel[0], kernel[1]}, dil[2] = {0, 0},
                pad_l[2] = {padding[0], padding[1]};
        check(a.dnnl_pooling_forward_primitive_desc_create(&pool->pd, engine(), dnnl_forward_inference,
                                                           dnnl_pooling_max, pool->src.md, pool->dst.md, st, k, dil,
                                                           pad_l, pad_r, pattr),
              "creating the max pooling");
        check(a.dnnl_primitive_create(&pool->primitive, pool->pd), "creating the max pooling");
        pool->scratch_md = a.dnnl_primitive_desc_query_md(pool->pd, dnnl_query_scratchpad_md, 0);
        pool->scratch_size = a.dnnl_memory_desc_get_size(pool->scratch_md);
        *out = pool.release();
#else
        throw std::runtime_error(ci_onednn_unavailable());
#endif
    });
}

}  // extern "C"
