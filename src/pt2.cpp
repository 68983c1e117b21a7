// The compiled model format: a PT2 archive made by torch.export + AOTInductor (models/limn_models/
// pt2.py), run by LibTorch's AOTIModelPackageLoader, with the limn metadata and self-test in
// extra/limn.json (models/FORMAT.md).
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/headeronly/version.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#if LIMN_WITH_CUDA
#include <ATen/Context.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "cpu_features.h"
#include "error.h"
#include "file_io.h"
#include "json.h"
#include "names.h"
#include "network.h"

namespace limn::core {
namespace {

constexpr const char* kMetadataRecord = "extra/limn.json";
constexpr size_t kMaxMetadataBytes = size_t(1) << 30;

std::string first_line(const std::exception& e) {
    const auto* c = dynamic_cast<const c10::Error*>(&e);
    return error_summary(c ? c->what_without_backtrace() : e.what());
}

// A private copy (mode 0600) of a package that was handed over in memory, in $TMPDIR:
// AOTIModelPackageLoader reads a path. Removed when the last owner lets go.
std::shared_ptr<TempFile> temp_copy(const void* data, size_t size, const std::string& origin) {
    const char* dir = std::getenv("TMPDIR");
    const std::string folder = dir && *dir ? dir : "/tmp";
    auto temp = std::make_shared<TempFile>(
        folder, "model '" + origin + "': cannot write a temporary copy of the compiled package in " + folder, 0600,
        ".pt2");
    temp->write(data, size);
    temp->close();
    return temp;
}

// What compiling fixed, read from limn.json.
struct PackageInfo {
    limn_device_type device = LIMN_DEVICE_CPU;
    limn_precision precision = LIMN_PRECISION_FP32;
    bool channels_last_input = false;
    int64_t min_height = 1, min_width = 1;
    std::string torch_version;
    std::vector<std::string> cpu_features;
};

#if LIMN_WITH_CUDA
// Compiled CUDA code calls LibTorch's convolution, which reads the cuDNN benchmark flag and the
// CUDA convolution precision from the process-wide context (a TorchScript graph states them per
// node instead). While a package runs, the context holds its model's settings; the host's are
// restored when the last such run ends. Runs that want other settings wait for those to end.
class ConvContextScope {
public:
    explicit ConvContextScope(const ConvSettings& want) {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return active_ == 0 || (current_.cudnn_benchmark == want.cudnn_benchmark &&
                                                          current_.allow_tf32 == want.allow_tf32); });
        if (active_ == 0) {
            auto& ctx = at::globalContext();
            const bool bench = ctx.benchmarkCuDNN();
            const at::Float32Precision conv = ctx.float32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV);
            ctx.setBenchmarkCuDNN(want.cudnn_benchmark);
            ctx.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV,
                                    want.allow_tf32 ? at::Float32Precision::TF32 : at::Float32Precision::IEEE);
            saved_bench_ = bench;
            saved_conv_ = conv;
            current_ = want;
        }
        ++active_;  // only once the settings are in place
    }
    ~ConvContextScope() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--active_ == 0) {
            auto& ctx = at::globalContext();
            ctx.setBenchmarkCuDNN(saved_bench_);
            ctx.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV, saved_conv_);
            changed_.notify_all();
        }
    }
    ConvContextScope(const ConvContextScope&) = delete;
    ConvContextScope& operator=(const ConvContextScope&) = delete;

private:
    static inline std::mutex mutex_;
    static inline std::condition_variable changed_;
    static inline int active_ = 0;
    static inline ConvSettings current_;
    static inline bool saved_bench_ = false;
    static inline at::Float32Precision saved_conv_ = at::Float32Precision::NONE;
};
#endif

class Pt2Network final : public Network {
public:
    // An unprepared package: its metadata, and where its bytes are.
    Pt2Network(std::string path, std::shared_ptr<TempFile> temp, std::string origin, const std::string& json)
        : path_(std::move(path)), temp_(std::move(temp)), origin_(std::move(origin)) {
        JsonValue doc;
        try {
            doc = parse_json(json);
        } catch (const std::invalid_argument& e) {
            bad(std::string(kMetadataRecord) + " is not valid JSON: " + e.what());
        }
        if (doc.type != JsonValue::Type::Object) bad(std::string(kMetadataRecord) + " is not a JSON object");
        for (const auto& [name, value] : doc.object) {
            if (name.rfind("limn_", 0) != 0) continue;
            raw_[name] = convert(name, value);
        }
        read_package_info(doc);
    }

    const RawMetadata& metadata() const override { return raw_; }
    at::Tensor selftest_input() const override { return selftest_in_; }
    at::Tensor selftest_output() const override { return selftest_out_; }
    const char* format() const override { return "pt2"; }
    std::optional<CompiledFor> compiled_for() const override {
        return CompiledFor{info_.device, info_.precision};
    }
    std::pair<int64_t, int64_t> min_size() const override { return {info_.min_height, info_.min_width}; }
    std::optional<bool> fixed_channels_last() const override { return info_.channels_last_input; }

    std::unique_ptr<Network> prepare(const c10::Device& device, c10::ScalarType dtype,
                                     bool /*channels_last: the package's layout is fixed*/,
                                     const ConvSettings& conv) const override {
        // The model refuses another device kind or precision with a message (compiled_for());
        // reaching here with one is a bug, not a user error.
        if ((device.is_cuda() ? LIMN_DEVICE_CUDA : LIMN_DEVICE_CPU) != info_.device ||
            dtype != dtype_of(info_.precision)) {
            fail(LIMN_ERR_INTERNAL, "model '" + origin_ + "': a package prepared for another device or "
                                                        "precision than it was compiled for");
        }
        check_torch_version();
        if (info_.device == LIMN_DEVICE_CPU) check_cpu();
        std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
        try {
            loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
                path_, "model", /*run_single_threaded=*/false, /*num_runners=*/1,
                device.is_cuda() ? device.index() : c10::DeviceIndex(-1));
        } catch (const std::exception& e) {
            bad("cannot load the compiled package: " + first_line(e));
        }
        return std::unique_ptr<Network>(new Pt2Network(*this, std::move(loader), conv));
    }

    at::Tensor forward(const at::Tensor& x) const override {
        if (!loader_) fail(LIMN_ERR_INTERNAL, "model '" + origin_ + "': forward() on an unprepared package");
        // The compiled code reads the input in the layout it was exported with, unchecked.
        at::Tensor in = x.contiguous(info_.channels_last_input ? at::MemoryFormat::ChannelsLast
                                                               : at::MemoryFormat::Contiguous);
        std::vector<at::Tensor> out;
#if LIMN_WITH_CUDA
        if (in.is_cuda()) {
            const ConvContextScope flags(conv_);
            // The caller's current stream (limn gives each calling thread its own).
            out = loader_->run({in}, c10::cuda::getCurrentCUDAStream(in.device().index()).stream());
        } else {
            out = loader_->run({in});
        }
#else
        out = loader_->run({in});
#endif
        if (out.size() != 1) {
            bad("the compiled model returned " + std::to_string(out.size()) + " tensors, expected 1");
        }
        return out[0];
    }

private:
    Pt2Network(const Pt2Network& from, std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader,
               const ConvSettings& conv)
        : path_(from.path_),
          origin_(from.origin_),
          raw_(from.raw_),
          selftest_in_(from.selftest_in_),
          selftest_out_(from.selftest_out_),
          info_(from.info_),
          loader_(std::move(loader)),
          conv_(conv) {}

    [[noreturn]] void bad(const std::string& what) const {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin_ + "': " + what);
    }

    MetaValue convert(const std::string& name, const JsonValue& v) {
        switch (v.type) {
            case JsonValue::Type::Number:
                if (v.is_integer) return v.integer;
                return v.number;
            case JsonValue::Type::String: return v.string;
            case JsonValue::Type::Array: {
                std::vector<double> numbers;
                for (const JsonValue& item : v.array) {
                    if (item.type != JsonValue::Type::Number) return std::monostate{};
                    numbers.push_back(item.number);
                }
                return numbers;
            }
            case JsonValue::Type::Object: {
                at::Tensor t = tensor(name, v);
                if (name == "limn_selftest_input" && t.numel() > 0) selftest_in_ = t;
                if (name == "limn_selftest_output" && t.numel() > 0) selftest_out_ = t;
                return TensorPresence{t.numel() > 0};
            }
            default: return std::monostate{};
        }
    }

    // {"dtype": "float32", "shape": [...], "data": base64 of little-endian floats}.
    at::Tensor tensor(const std::string& name, const JsonValue& v) const {
        const JsonValue* dtype = v.find("dtype");
        const JsonValue* shape = v.find("shape");
        const JsonValue* data = v.find("data");
        if (!dtype || dtype->type != JsonValue::Type::String || dtype->string != "float32" || !shape ||
            shape->type != JsonValue::Type::Array || !data || data->type != JsonValue::Type::String) {
            bad("metadata '" + name + "' must be a float32 tensor: {\"dtype\": \"float32\", \"shape\": [...], "
                "\"data\": base64}");
        }
        std::vector<int64_t> sizes;
        int64_t count = 1;
        for (const JsonValue& d : shape->array) {
            if (d.type != JsonValue::Type::Number || !d.is_integer || d.integer < 0 || d.integer > (int64_t(1) << 31)) {
                bad("metadata '" + name + "' has an invalid shape");
            }
            sizes.push_back(d.integer);
            if (__builtin_mul_overflow(count, d.integer, &count) || count > (int64_t(1) << 31)) {
                bad("metadata '" + name + "' is too large");
            }
        }
        std::string bytes;
        try {
            bytes = decode_base64(data->string);
        } catch (const std::invalid_argument& e) {
            bad("metadata '" + name + "': " + e.what());
        }
        if (bytes.size() != static_cast<size_t>(count) * 4) {
            bad("metadata '" + name + "' holds " + std::to_string(bytes.size()) + " bytes for " +
                std::to_string(count) + " floats");
        }
        static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "limn packages store little-endian floats");
        return at::from_blob(bytes.data(), sizes, at::TensorOptions().dtype(at::kFloat)).clone();
    }

    void read_package_info(const JsonValue& doc) {
        const auto text = [&](const char* key) -> std::string {
            const JsonValue* v = doc.find(key);
            if (!v || v->type != JsonValue::Type::String) {
                bad(std::string("metadata '") + key + "' is missing or not a string; is this a package "
                                                     "written by limn_models.export --format pt2?");
            }
            return v->string;
        };
        const std::string device = text("limn_package_device");
        if (device == "cpu") info_.device = LIMN_DEVICE_CPU;
        else if (device == "cuda") info_.device = LIMN_DEVICE_CUDA;
        else bad("unknown package device '" + device + "' (expected cpu or cuda)");
        const std::string precision = text("limn_package_precision");
        const std::optional<int32_t> p = value_of(LIMN_NAMES_PRECISION, precision);
        if (!p || *p == LIMN_PRECISION_AUTO || *p == LIMN_PRECISION_TF32) {
            bad("unknown package precision '" + precision + "' (expected fp32, fp16 or bf16)");
        }
        info_.precision = static_cast<limn_precision>(*p);
        const std::string layout = text("limn_package_input_layout");
        if (layout == "channels_last") info_.channels_last_input = true;
        else if (layout != "contiguous") bad("unknown package input layout '" + layout + "'");
        info_.torch_version = text("limn_package_torch_version");
        const auto side = [&](const char* key) -> int64_t {
            const JsonValue* v = doc.find(key);
            if (!v) return 1;
            if (v->type != JsonValue::Type::Number || !v->is_integer || v->integer < 1 || v->integer > 65536) {
                bad(std::string("metadata '") + key + "' must be an integer from 1 to 65536");
            }
            return v->integer;
        };
        info_.min_height = side("limn_package_min_height");
        info_.min_width = side("limn_package_min_width");
        std::istringstream features(text("limn_package_cpu_features"));
        for (std::string f; features >> f;) info_.cpu_features.push_back(f);
    }

    void check_torch_version() const {
        const std::string ours = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR);
        const std::string& theirs = info_.torch_version;
        if (theirs != ours && theirs.rfind(ours + ".", 0) != 0) {
            fail(LIMN_ERR_UNSUPPORTED, "model '" + origin_ + "' was compiled with torch " + theirs +
                                           "; this limn runs LibTorch " + ours +
                                           ": export the package again with torch " + ours);
        }
    }

    void check_cpu() const {
        const std::vector<std::string> missing = missing_cpu_features(info_.cpu_features);
        if (missing.empty()) return;
        std::string list;
        for (const std::string& m : missing) list += (list.empty() ? "" : " ") + m;
        fail(LIMN_ERR_UNSUPPORTED,
             "model '" + origin_ + "' was compiled for a CPU with instructions this CPU lacks (" + list +
                 "): compiled packages are native code for the machine that exported them; export it on "
                 "this machine (--format pt2) or use the TorchScript file");
    }

    std::string path_;
    std::shared_ptr<TempFile> temp_;  // only for packages loaded from memory, until prepared
    std::string origin_;
    RawMetadata raw_;
    at::Tensor selftest_in_, selftest_out_;
    PackageInfo info_;
    std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;  // run() is thread-safe
    ConvSettings conv_;
};

std::string read_metadata_record(caffe2::serialize::PyTorchStreamReader& reader, const std::string& origin) {
    if (!reader.hasRecord(kMetadataRecord)) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "' is a compiled .pt2 package without limn metadata (" +
                                         kMetadataRecord + "); write packages with python -m limn_models.export "
                                         "--format pt2");
    }
    size_t size = 0;
    at::DataPtr data;
    std::tie(data, size) = reader.getRecord(kMetadataRecord);
    if (size > kMaxMetadataBytes) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "': " + kMetadataRecord + " is too large");
    }
    return std::string(static_cast<const char*>(data.get()), size);
}

}  // namespace

bool is_pt2_archive(caffe2::serialize::PyTorchStreamReader& reader) {
    if (reader.hasRecord(kMetadataRecord)) return true;
    for (const std::string& name : reader.getAllRecords()) {
        if (name.rfind("data/aotinductor/", 0) == 0) return true;
    }
    return false;
}

std::unique_ptr<Network> load_pt2(caffe2::serialize::PyTorchStreamReader& reader, const std::string& path,
                                  const std::string& origin) {
    return std::make_unique<Pt2Network>(path, nullptr, origin, read_metadata_record(reader, origin));
}

std::unique_ptr<Network> load_pt2_memory(caffe2::serialize::PyTorchStreamReader& reader, const void* data,
                                         size_t size, const std::string& origin) {
    const std::string json = read_metadata_record(reader, origin);
    auto temp = temp_copy(data, size, origin);
    return std::make_unique<Pt2Network>(temp->path(), temp, origin, json);
}

}  // namespace limn::core
