#include "model.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

#include "error.h"
#include "image.h"
#include "memory.h"
#include "model_names.h"
#include "network.h"
#include "precision.h"
#include "sha256.h"
#include "tiling.h"

namespace limn::core {
namespace {

c10::Device torch_device(const Device& d) {
    return d.is_cuda() ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(d.index))
                       : c10::Device(c10::kCPU);
}

std::string shape_text(const at::Tensor& t) {
    std::ostringstream s;
    s << t.sizes();
    return s.str();
}

bool mentions_dtype_support(const std::string& message) {
    return message.find("not implemented for") != std::string::npos ||
           message.find("Half") != std::string::npos || message.find("BFloat16") != std::string::npos;
}

// One checked() call on this thread: the network it runs in and whether every output so far was
// finite, as a tensor on the device (no host synchronisation until the end). Calls nest (a
// pipeline may run a detector inside); forward() finds the one of its model.
struct Pass {
    const Model::Impl* model = nullptr;
    bool fp32 = false;    // rerunning with the fp32 network
    at::Tensor finite;    // bool scalar on the device; undefined: nothing ran yet
    Pass* outer = nullptr;
    bool unchecked = false;  // memory probes: only the bytes matter, not the values
};

thread_local Pass* current_pass = nullptr;

// Makes `pass` the innermost of this thread's passes while alive.
class PassScope {
public:
    explicit PassScope(Pass& pass) : outer_(current_pass) {
        pass.outer = outer_;
        current_pass = &pass;
    }
    ~PassScope() { current_pass = outer_; }
    PassScope(const PassScope&) = delete;
    PassScope& operator=(const PassScope&) = delete;

private:
    Pass* outer_;
};

Pass* pass_of(const Model::Impl* model) {
    for (Pass* p = current_pass; p; p = p->outer) {
        if (p->model == model) return p;
    }
    return nullptr;
}

}  // namespace

struct Model::Impl {
    std::string origin;
    ModelMetadata meta;
    Device device;
    limn_precision precision = LIMN_PRECISION_FP32;
    at::ScalarType dtype = at::kFloat;
    bool channels_last = false;  // the layout the network takes its input in
    bool fp32_fallback = false;
    ConvSettings conv;
    std::string precision_note;  // why AUTO did not give the device's usual precision, or why slow
    double min_psnr = 0;         // > 0: the self-test must come this close to its fp32 output (dB)
    uint64_t max_pixels = 0;
    std::pair<int64_t, int64_t> min_size{1, 1};
    std::shared_ptr<CpuArena> arena;  // the CPU: activation memory kept between runs (or null)
    std::unique_ptr<Network> net;     // prepared: on the device, in dtype
    std::unique_ptr<Network> source;  // CPU fp32 original, kept only for the fp32 fallback
    mutable std::once_flag fp32_once;
    mutable std::once_flag profile_once;
    mutable MemoryProfile profile;
    mutable std::unique_ptr<Network> fp32_net;

    at::Tensor run_network(const Network& n, at::ScalarType type, const at::Tensor& rgb) const {
        if (rgb.dim() == 4 && (rgb.size(2) < min_size.first || rgb.size(3) < min_size.second)) {
            // Compiled code does not check its input sizes: never hand it a smaller one. The
            // pipelines pad up to this size; a raw run of a smaller image ends here.
            fail(LIMN_ERR_SIZE_RULE, "image size " + std::to_string(rgb.size(3)) + "x" +
                                         std::to_string(rgb.size(2)) + " is below the smallest input of model '" +
                                         origin + "', a compiled package that takes at least " +
                                         std::to_string(min_size.second) + "x" + std::to_string(min_size.first) +
                                         " (the pipelines pad smaller pictures)");
        }
        const CpuArenaScope scope(arena);
        at::Tensor x = rgb.to(type);
        x = x.contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
        at::Tensor y = n.forward(x);
        if (!output_shape_ok(y, x)) {
            fail(LIMN_ERR_INVALID_MODEL,
                 "model '" + origin + "' returned a " + shape_text(y) + " tensor for a " + shape_text(x) +
                     (meta.kind == LIMN_MODEL_KIND_FACE_DETECT
                          ? " input; a face_detect model must return [N, P, 15] detections"
                          : " input; a limn model must return the input's shape"));
        }
        return y.to(at::kFloat);
    }

    // Image models return the input's shape; detectors [N, P, 15]: box, score, 5 landmarks.
    bool output_shape_ok(const at::Tensor& y, const at::Tensor& x) const {
        if (meta.kind != LIMN_MODEL_KIND_FACE_DETECT) return y.sizes() == x.sizes();
        return y.dim() == 3 && y.size(0) == x.size(0) && y.size(2) == kDetectionColumns;
    }

    const Network& fp32_network() const {
        std::call_once(fp32_once, [this] {
            fp32_net = source->prepare(torch_device(device), at::kFloat, channels_last, conv);
            synchronize(device);  // the weights are copied before another thread's stream uses them
        });
        return *fp32_net;
    }

    [[noreturn]] void fail_non_finite(bool after_fp32) const {
        if (after_fp32) {
            fail(LIMN_ERR_NON_FINITE, "model '" + origin + "' produced non-finite values (NaN or Inf) in " +
                                          precision_name(precision) + " and again in fp32");
        }
        fail(LIMN_ERR_NON_FINITE,
             "model '" + origin + "' produced non-finite values (NaN or Inf) in " +
                 precision_name(precision) + " on " + device.id() +
                 (dtype != at::kFloat ? "; load it in fp32 or allow the fp32 fallback" : ""));
    }

    // Inside checked(): the finiteness of y joins the pass's flag on the device. Outside (the
    // load-time self-test): checked at once.
    at::Tensor forward(const at::Tensor& rgb) const {
        c10::InferenceMode guard;
        Pass* pass = pass_of(this);
        if (pass) {
            at::Tensor y = pass->fp32 ? run_network(fp32_network(), at::kFloat, rgb) : run_network(*net, dtype, rgb);
            if (pass->unchecked || call_images().queued()) return y;  // nothing will look at it
            const at::Tensor ok = at::isfinite(y).all();
            pass->finite = pass->finite.defined() ? pass->finite.logical_and(ok) : ok;
            return y;
        }
        at::Tensor y = run_network(*net, dtype, rgb);
        if (!at::isfinite(y).all().item<bool>()) fail_non_finite(false);
        return y;
    }

    at::Tensor checked(const std::function<at::Tensor()>& body) const {
        Pass pass;
        pass.model = this;
        const PassScope scope(pass);
        at::Tensor result = body();
        // Device images on the caller's stream: the call returns once its work is queued, and a
        // look at the flag would wait for the device (limn.h: "Device images").
        if (call_images().queued()) return result;
        // The one host synchronisation of the check; the results leave the device next anyway.
        if (!pass.finite.defined() || pass.finite.item<bool>()) return result;
        if (!(fp32_fallback && dtype != at::kFloat)) fail_non_finite(false);
        pass.fp32 = true;
        pass.finite = at::Tensor();
        result = body();
        if (pass.finite.defined() && !pass.finite.item<bool>()) fail_non_finite(true);
        return result;
    }

    void selftest_or_warmup() {
        at::Tensor input, expected;
        if (meta.has_selftest) {
            input = net->selftest_input();
            expected = net->selftest_output();
            if (input.dim() != 4 || input.size(0) != 1 || input.size(1) != 3 ||
                !output_shape_ok(expected, input) || !input.is_floating_point() ||
                !expected.is_floating_point()) {
                fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "': the self-test tensors must be "
                                             "float [1,3,H,W] and the model's output for it; found " +
                                             shape_text(input) + " and " + shape_text(expected));
            }
        } else {
            const int64_t side = std::max<int64_t>({64, min_size.first, min_size.second});
            const int64_t h = meta.fixed_height > 0 ? meta.fixed_height
                                                    : ((side + meta.size_multiple - 1) / meta.size_multiple) *
                                                          meta.size_multiple;
            const int64_t w = meta.fixed_width > 0 ? meta.fixed_width : h;
            // A smooth ramp rather than zeros: zeros can hide broken kernels.
            input = at::linspace(0.0, 1.0, h * w * 3).reshape({1, 3, h, w});
        }
        const at::Tensor x = input.to(torch_device(device), at::kFloat);
        at::Tensor y;
        try {
            // Two runs: the first pays one-time costs (kernel selection, allocator growth, cuDNN
            // plans), the second proves the steady state.
            y = checked([&] { return forward(x); });
            y = checked([&] { return forward(x); });
        } catch (const Failure&) {
            throw;
        } catch (const std::exception& e) {
            // Errors from inside the TorchScript graph arrive as std::runtime_error, LibTorch's
            // own as c10::Error.
            if (is_out_of_memory(e)) throw;
            const auto* c = dynamic_cast<const c10::Error*>(&e);
            const std::string msg = error_summary(c ? c->what_without_backtrace() : e.what());
            if (dtype != at::kFloat && mentions_dtype_support(msg)) {
                fail(LIMN_ERR_UNSUPPORTED, "precision " + std::string(precision_name(precision)) +
                                               " is not supported on " + device.id() + " for model '" +
                                               origin + "': " + msg);
            }
            fail(LIMN_ERR_INVALID_MODEL,
                 "model '" + origin + "' failed its warm-up run on " + device.id() + ": " + msg);
        }
        if (!meta.has_selftest) {
            if (min_psnr > 0) {
                fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "' has no self-test to measure " +
                                                 precision_name(precision) + " against fp32 with");
            }
            return;
        }
        at::Tensor diff = (y.cpu() - expected.to(at::kFloat)).abs();
        if (diff.numel() == 0) return;
        if (min_psnr > 0) check_fidelity(diff);
        if (meta.kind == LIMN_MODEL_KIND_FACE_DETECT) {
            // Coordinates are pixels: compare them as fractions of the image side, like scores.
            const double w = double(input.size(3)), h = double(input.size(2));
            std::vector<double> scale(kDetectionColumns, 1.0);
            for (int64_t c : {0, 2, 5, 7, 9, 11, 13}) scale[c] = w;
            for (int64_t c : {1, 3, 6, 8, 10, 12, 14}) scale[c] = h;
            diff = diff / at::tensor(scale, at::kDouble).to(at::kFloat);
        }
        const double max_err = diff.max().item<double>();
        const double mean_err = diff.mean().item<double>();
        // fp32 differs from the exporter's CPU run only by summation order; TF32 and the reduced
        // precisions by rounding. Either way a broken model or kernel is far outside.
        const bool reduced = dtype != at::kFloat;
        const double max_ok = reduced ? 0.25 : (precision == LIMN_PRECISION_TF32 ? 1e-2 : 1e-3);
        const double mean_ok = reduced ? 0.02 : max_ok;
        if (max_err > max_ok || mean_err > mean_ok) {
            std::ostringstream s;
            s << "model '" << origin << "' failed its self-test on " << device.id() << " in "
              << precision_name(precision) << ": max abs error " << max_err << " (allowed " << max_ok
              << "), mean " << mean_err << " (allowed " << mean_ok << ")";
            fail(LIMN_ERR_INVALID_MODEL, s.str());
        }
    }

    // An image model's self-test output in a reduced precision against its fp32 one (values in
    // [0, 1]): at least min_psnr dB, or AUTO does not take the reduced precision.
    void check_fidelity(const at::Tensor& diff) const {
        const double mse = diff.to(at::kDouble).square().mean().item<double>();
        const double psnr = mse > 0 ? 10.0 * std::log10(1.0 / mse) : 1e9;
        if (psnr >= min_psnr) return;
        std::ostringstream s;
        s.precision(3);
        s << "model '" << origin << "' in " << precision_name(precision) << " is " << psnr
          << " dB from its fp32 self-test output (auto needs " << min_psnr << " dB)";
        fail(LIMN_ERR_INVALID_MODEL, s.str());
    }
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() {
    // Calls queued on a caller's stream may still read the weights (limn.h, "Device images"):
    // they are freed once those calls have run, or a new allocation could take their memory.
    if (impl_) wait_for_queued_calls(impl_->device);
}

namespace {

std::unique_ptr<Model::Impl> prepare_impl(std::unique_ptr<Network> net, std::string origin,
                                          const ModelOptions& options, const Device& device,
                                          limn_precision precision) {
    auto impl = std::make_unique<Model::Impl>();
    impl->origin = std::move(origin);
    impl->meta = parse_metadata(net->metadata(), impl->origin);
    check_kind(impl->meta, options.expected_kind, impl->origin);
    impl->device = device;
    const bool cpu = !device.is_cuda();
    if (cpu) impl->arena = make_cpu_arena();
    impl->precision = precision;
    impl->dtype = dtype_of(precision);
    impl->fp32_fallback = resolve_fp32_fallback(options.fp32_fallback, options.precision) &&
                          impl->dtype != at::kFloat;
    if (options.precision == LIMN_PRECISION_AUTO && cpu && impl->meta.kind == LIMN_MODEL_KIND_FACE_DETECT &&
        !net->compiled_for()) {
        // A detector's scores decide which faces exist at all: AUTO keeps it in fp32 on the CPU,
        // where it is cheap (tens of milliseconds a photo) and bf16 could move a face across the
        // threshold.
        impl->precision = precision = LIMN_PRECISION_FP32;
        impl->dtype = at::kFloat;
    }
    // AUTO chose a reduced precision: if it fails the load-time self-test, load in fp32 instead.
    // On the CPU (bf16) the self-test must also come within 45 dB of its fp32 output.
    const bool auto_reduced = options.precision == LIMN_PRECISION_AUTO && impl->dtype != at::kFloat &&
                              !net->compiled_for();
    if (auto_reduced && cpu) impl->min_psnr = kAutoMinPsnr;
    if (impl->fp32_fallback && net->compiled_for()) {
        // A package holds code for one precision only.
        if (options.fp32_fallback == 1) {
            fail(LIMN_ERR_UNSUPPORTED, "model '" + impl->origin + "' is a package compiled for " +
                                           precision_name(precision) +
                                           " only: fp32_fallback needs the TorchScript file");
        }
        impl->fp32_fallback = false;
    }
    // Channels-last measured faster on both the CPU (oneDNN) and CUDA (BENCHMARKS.md); a compiled
    // package takes the layout it was exported for.
    impl->channels_last = net->fixed_channels_last().value_or(options.channels_last != 0);
    impl->max_pixels = options.max_pixels;
    // cuDNN benchmark pays off where shapes repeat: by default, fixed-size models. It is this
    // model's setting only (stated in its graph), never the process's.
    impl->conv.cudnn_benchmark = options.cudnn_benchmark < 0 ? impl->meta.fixed_width > 0
                                                             : options.cudnn_benchmark != 0;
    // fp32 means IEEE fp32; TF32 convolutions only when asked for by name.
    impl->conv.allow_tf32 = precision == LIMN_PRECISION_TF32;
    impl->min_size = net->min_size();
    impl->net = net->prepare(torch_device(device), impl->dtype, impl->channels_last, impl->conv);
    if (impl->fp32_fallback || auto_reduced) impl->source = std::move(net);
    if (options.warmup) {
        try {
            impl->selftest_or_warmup();
        } catch (const Failure& f) {
            if (!auto_reduced) throw;
            // A wrong (or non-finite, or unsupported) result in fp16/bf16: the same network in
            // fp32, said in limn_model_info.precision_note. A model broken in fp32 fails there.
            impl->precision_note = std::string("precision auto chose fp32: ") + precision_name(precision) +
                                   " failed at load (" + f.what() + ")";
            impl->precision = LIMN_PRECISION_FP32;
            impl->dtype = at::kFloat;
            impl->fp32_fallback = false;
            impl->min_psnr = 0;
            impl->net = impl->source->prepare(torch_device(device), at::kFloat, impl->channels_last, impl->conv);
            impl->selftest_or_warmup();
        }
    }
    if (!impl->fp32_fallback) impl->source.reset();
    if (impl->precision_note.empty()) impl->precision_note = slow_precision_note(impl->precision, describe_device(device));
    synchronize(device);  // weights in place before any thread's stream uses them
    return impl;
}

struct Resolved {
    Device device;
    limn_precision precision;
};

Resolved resolve_options(const ModelOptions& options) {
    if (options.expected_kind < LIMN_MODEL_KIND_ANY || options.expected_kind > LIMN_MODEL_KIND_FACE_DETECT) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid expected_kind " +
                                            std::to_string(static_cast<int>(options.expected_kind)));
    }
    if (options.channels_last < -1 || options.channels_last > 1) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid channels_last " + std::to_string(options.channels_last) +
                                            ": expected 0, 1 or -1 (default)");
    }
    if (options.cudnn_benchmark < -1 || options.cudnn_benchmark > 1) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid cudnn_benchmark " +
                                            std::to_string(options.cudnn_benchmark) +
                                            ": expected 0, 1 or -1 (default)");
    }
    resolve_fp32_fallback(options.fp32_fallback, options.precision);  // validates the value
    Resolved r;
    r.device = resolve_device(options.device.c_str());
    r.precision = resolve_precision(options.precision, describe_device(r.device));
    return r;
}

// A compiled package fixes the device kind and precision: "auto" and AUTO take its own, any other
// is refused here, with a message, before the package is opened.
void adapt_to_package(const Network& net, const ModelOptions& options, const std::string& origin,
                      Resolved& r) {
    const std::optional<CompiledFor> c = net.compiled_for();
    if (!c) return;
    if (parse_device(options.device).kind == DeviceRequest::Kind::Auto) {
        if (c->device == LIMN_DEVICE_CPU) {
            r.device = Device{};
        } else {
            try {
                r.device = resolve_device("cuda");
            } catch (const Failure& f) {
                fail(f.status(), "model '" + origin + "' is a package compiled for cuda: " + f.what());
            }
        }
    }
    const limn_device_type kind = r.device.type;
    if (kind != c->device) {
        const char* built = c->device == LIMN_DEVICE_CUDA ? "cuda" : "cpu";
        fail(LIMN_ERR_UNSUPPORTED, "model '" + origin + "' is a package compiled for " + built +
                                       "; it cannot run on " + r.device.id() + " (export one with --format pt2 "
                                       "--device " + (kind == LIMN_DEVICE_CUDA ? "cuda" : "cpu") +
                                       ", or use the TorchScript file, which runs anywhere)");
    }
    if (options.precision == LIMN_PRECISION_AUTO) {
        r.precision = resolve_precision(c->precision, describe_device(r.device));
    } else if (r.precision != c->precision) {
        fail(LIMN_ERR_UNSUPPORTED, "model '" + origin + "' is a package compiled for " +
                                       precision_name(c->precision) + "; it cannot run in " +
                                       precision_name(r.precision) + " (ask for precision " +
                                       precision_name(c->precision) + " or auto)");
    }
}

void check_sha256(const std::string& expected, const std::string& actual, const std::string& origin) {
    std::string want = expected;
    for (char& ch : want) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (want != actual) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "' has SHA-256 " + actual + ", expected " + want +
                                         ": it is not the file you meant to load");
    }
}

void check_sha256_option(const std::string& expected) {
    if (expected.empty()) return;
    const bool hex = expected.size() == 64 &&
                     std::all_of(expected.begin(), expected.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; });
    if (!hex) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid expected_sha256 '" + expected.substr(0, 80) +
                                            "': expected 64 hexadecimal digits");
    }
}

}  // namespace

std::unique_ptr<Model> Model::load_file(const std::string& path, const ModelOptions& options) {
    Resolved r = resolve_options(options);
    check_sha256_option(options.expected_sha256);
    // Hash the bytes first: nothing of a file that is not the expected one is parsed or run.
    if (!options.expected_sha256.empty()) check_sha256(options.expected_sha256, sha256_file_hex(path), path);
    auto net = load_network_file(path);
    adapt_to_package(*net, options, path, r);
    return std::unique_ptr<Model>(new Model(prepare_impl(std::move(net), path, options, r.device, r.precision)));
}

std::unique_ptr<Model> Model::load_source(const std::string& source, const ModelOptions& options) {
    const bool on_cpu = !is_model_name(source) ? false : !resolve_device(options.device.c_str()).is_cuda();
    const std::vector<std::string> files = model_files(source, on_cpu, options.precision);
    for (size_t i = 0;; ++i) {
        try {
            return load_file(files[i], options);
        } catch (const Failure& e) {
            // A name's package this CPU (or this torch) cannot run: its TorchScript file next.
            const bool next = e.status() == LIMN_ERR_UNSUPPORTED || e.status() == LIMN_ERR_INVALID_MODEL;
            if (!next || i + 1 == files.size()) throw;
        }
    }
}

std::unique_ptr<Model> Model::load_memory(const void* data, size_t size, const ModelOptions& options) {
    Resolved r = resolve_options(options);
    check_sha256_option(options.expected_sha256);
    const std::string origin = options.name.empty() ? "<memory>" : options.name;
    if (!options.expected_sha256.empty()) check_sha256(options.expected_sha256, sha256_hex(data, size), origin);
    auto net = load_network_memory(data, size, origin);
    adapt_to_package(*net, options, origin, r);
    return std::unique_ptr<Model>(
        new Model(prepare_impl(std::move(net), origin, options, r.device, r.precision)));
}

const ModelMetadata& Model::metadata() const { return impl_->meta; }
const Device& Model::device() const { return impl_->device; }
c10::Device Model::tensor_device() const { return torch_device(impl_->device); }
limn_precision Model::precision() const { return impl_->precision; }
const std::string& Model::origin() const { return impl_->origin; }
const char* Model::format() const { return impl_->net->format(); }
uint64_t Model::max_pixels() const { return impl_->max_pixels; }
int64_t Model::min_height() const { return impl_->min_size.first; }
int64_t Model::min_width() const { return impl_->min_size.second; }
bool Model::input_channels_last() const { return impl_->channels_last; }

at::Tensor Model::forward(const at::Tensor& rgb) const { return impl_->forward(rgb); }
at::Tensor Model::checked(const std::function<at::Tensor()>& body) const { return impl_->checked(body); }
const std::string& Model::precision_note() const { return impl_->precision_note; }

MemoryProfile Model::memory_profile() const {
    std::call_once(impl_->profile_once, [this] {
        const ModelMetadata& meta = impl_->meta;
        const auto opts = at::TensorOptions().dtype(at::kFloat).device(torch_device(impl_->device));
        c10::InferenceMode guard;
        const auto peak_at = [&](int64_t h, int64_t w) {
            const at::Tensor x = at::rand({1, 3, h, w}, opts);
            Pass probe;
            probe.model = impl_.get();
            probe.unchecked = true;  // a non-finite probe (fp16 overflow) still measures the bytes
            const PassScope scope(probe);
            return static_cast<double>(peak_allocated_during([&] { impl_->forward(x); }));
        };
        if (meta.fixed_width > 0) {
            impl_->profile = MemoryProfile{peak_at(meta.fixed_height, meta.fixed_width), 0.0};
            return;
        }
        const int64_t m = meta.size_multiple;
        const int64_t floor = std::max<int64_t>({64, impl_->min_size.first, impl_->min_size.second});
        const int64_t small = round_up(floor, m), large = round_up(2 * floor, m);
        const double p_small = peak_at(small, small), p_large = peak_at(large, large);
        const double per_pixel = std::max(0.0, (p_large - p_small) / double(large * large - small * small));
        impl_->profile = MemoryProfile{std::max(0.0, p_small - per_pixel * double(small * small)), per_pixel};
    });
    return impl_->profile;
}

NamedImages Model::check_run(const limn_image* inputs, const limn_image* outputs, size_t count) const {
    if (count == 0) fail(LIMN_ERR_INVALID_ARGUMENT, "image count is 0");
    if (!inputs) fail(LIMN_ERR_INVALID_ARGUMENT, "input images pointer is NULL");
    if (!outputs) fail(LIMN_ERR_INVALID_ARGUMENT, "output images pointer is NULL");
    const ModelMetadata& meta = impl_->meta;
    if (meta.kind == LIMN_MODEL_KIND_FACE_DETECT) {
        fail(LIMN_ERR_WRONG_MODEL_KIND, "model '" + impl_->origin +
                                            "' is a face_detect model; a raw run needs an image-to-image "
                                            "model (cartoon or face_restore)");
    }
    NamedImages named;
    for (size_t i = 0; i < count; ++i) {
        const std::string in_name = count == 1 ? "input" : "input[" + std::to_string(i) + "]";
        const std::string out_name = count == 1 ? "output" : "output[" + std::to_string(i) + "]";
        check_image_pair(inputs[i], outputs[i], in_name, out_name, impl_->max_pixels);
        if (inputs[i].width != inputs[0].width || inputs[i].height != inputs[0].height ||
            inputs[i].format != inputs[0].format) {
            fail(LIMN_ERR_INVALID_ARGUMENT, in_name + " is " + std::to_string(inputs[i].width) + "x" +
                                                std::to_string(inputs[i].height) + " " +
                                                format_name(inputs[i].format) +
                                                "; every image of a batch must have input[0]'s size "
                                                "and format");
        }
        named.emplace_back(&inputs[i], in_name);
        named.emplace_back(&outputs[i], out_name);
    }
    check_size_rule(meta, inputs[0].width, inputs[0].height);
    return named;
}

void Model::run(const limn_image* inputs, limn_image* outputs, size_t count, const ImageMemory& memory) const {
    const ImagesScope images(memory, impl_->device, impl_->origin, check_run(inputs, outputs, count));

    c10::InferenceMode guard;
    const StreamScope stream(impl_->device);
    const at::Tensor pixels = images_to_device(inputs, count, torch_device(impl_->device));
    const at::Tensor x = to_network_input(pixels, inputs[0].format, impl_->channels_last);
    const at::Tensor y = impl_->checked([&] { return impl_->forward(x); });
    write_images(y, pixels, inputs[0].format, outputs, count);
}

}  // namespace limn::core
