// The only boundary: every extern "C" function of limn.h lives here, is noexcept, and turns every
// exception into a limn_status plus a thread-local message. Out-parameters are written only on
// success.
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "cartoonize.h"
#include "detect_faces.h"
#include "device.h"
#include "restore_faces.h"
#include "error.h"
#include "faces.h"
#include "frames.h"
#include "file_io.h"
#include "icc.h"
#include "image.h"
#include "image_io.h"
#include "jobs.h"
#include "limn/limn.h"
#include "memory.h"
#include "metadata.h"
#include "model.h"
#include "model_names.h"
#include "names.h"
#include "pixels.h"
#include "precision.h"

struct limn_model {
    std::shared_ptr<limn::core::Model> impl;  // shared with the jobs that use it
};

namespace {

thread_local std::string last_error;

limn_status set_error(limn_status status, std::string message) noexcept {
    try {
        last_error = limn::core::valid_utf8(message);
    } catch (...) {
        last_error.clear();
    }
    return status;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// guarded() for calls that run no LibTorch work (submitting and the job handles): failures are
// Failures (or out of host memory), and no CPU tensor scope is set up, so an engine's thread is
// back at once.
template <typename F>
limn_status guarded_light(F&& body) noexcept {
    try {
        body();
        last_error.clear();
        return LIMN_OK;
    } catch (const limn::core::Failure& e) {
        return set_error(e.status(), e.what());
    } catch (const std::bad_alloc&) {
        return set_error(LIMN_ERR_OUT_OF_MEMORY, "out of host memory");
    } catch (const std::exception& e) {  // e.g. std::system_error: a worker thread could not start
        return set_error(LIMN_ERR_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
        return set_error(LIMN_ERR_INTERNAL, "internal error: unknown exception");
    }
}

template <typename F>
limn_status guarded(F&& body) noexcept {
    try {
        const limn::core::CpuTensorScope counted;  // CPU tensors of this call, for limn_memory_get_stats
        body();
        last_error.clear();
        return LIMN_OK;
    } catch (const limn::core::Failure& e) {
        return set_error(e.status(), e.what());
    } catch (const std::exception& e) {
        std::string detail;
        if (limn::core::is_out_of_memory(e, &detail)) {
            // The failed call's tensors are back in the allocator's cache, which the next call
            // reuses; before raising, the allocator already returned the device's unused blocks.
            return set_error(LIMN_ERR_OUT_OF_MEMORY, "out of memory: " + detail);
        }
        if (const auto* c = dynamic_cast<const c10::Error*>(&e)) {
            return set_error(LIMN_ERR_INTERNAL, "LibTorch error: " + limn::core::error_summary(c->what_without_backtrace()));
        }
        return set_error(LIMN_ERR_INTERNAL, "internal error: " + limn::core::error_summary(e.what()));
    } catch (...) {
        return set_error(LIMN_ERR_INTERNAL, "internal error: unknown exception");
    }
}

void require(const void* p, const char* what) {
    if (!p) limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
}

// Growable structs: struct_size is the caller's sizeof, the bytes it knows about. A struct of a
// newer limn.h is larger than ours; no struct will outgrow this bound, so a larger size is garbage.
constexpr size_t kMaxStructSize = 4096;

void check_struct_size(size_t size, const char* what) {
    if (size < sizeof(size_t) || size > kMaxStructSize) {
        limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, std::string(what) + "->struct_size is " +
                                                        std::to_string(size) +
                                                        "; set it to sizeof the struct");
    }
}

template <typename T>
void require_struct_size(const T* s, const char* what) {
    require(s, what);
    check_struct_size(s->struct_size, what);
}

// A growable options struct from the caller: defaults, overlaid with the bytes the caller knows.
// Fields past ours (a newer limn.h) must be 0: a request this library cannot honour is refused.
template <typename T>
T read_options(const T* in, void (*defaults)(T&)) {
    T o{};
    defaults(o);
    if (in) {
        require_struct_size(in, "options");
        // A size that ends inside a field would tear it (half a pointer from the caller, half from
        // the defaults); every version's sizeof is a multiple of the struct's alignment.
        if (in->struct_size % alignof(T) != 0) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "options->struct_size is " + std::to_string(in->struct_size) +
                                                      ", not the size of any version of the struct; set it "
                                                      "with the init function");
        }
        std::memcpy(&o, in, std::min(in->struct_size, sizeof(o)));
        const auto* bytes = reinterpret_cast<const unsigned char*>(in);
        if (std::any_of(bytes + sizeof(T), bytes + std::max(in->struct_size, sizeof(T)),
                        [](unsigned char b) { return b != 0; })) {
            limn::core::fail(LIMN_ERR_UNSUPPORTED,
                             "options set fields that limn " LIMN_VERSION_STRING " does not know "
                             "(struct_size " + std::to_string(in->struct_size) + ", this library's " +
                                 std::to_string(sizeof(T)) + "); use a limn.h of this version");
        }
    }
    return o;
}

// Writes a struct the library fills: the caller's struct_size bytes, zeros past ours.
template <typename T>
void copy_out(const T& full, T* out, size_t caller_size) {
    std::memcpy(out, &full, std::min(caller_size, sizeof(T)));
    if (caller_size > sizeof(T)) std::memset(reinterpret_cast<unsigned char*>(out) + sizeof(T), 0, caller_size - sizeof(T));
    out->struct_size = caller_size;
}

// The defaults of each options struct, taken from the core's option types where they have one.
void defaults(limn_image_load_options& o) {
    const limn::core::LoadOptions d;
    o.format = d.format;
    o.apply_orientation = d.apply_orientation ? 1 : 0;
    o.max_pixels = d.max_pixels;
    o.name = nullptr;
}

void defaults(limn_image_save_options& o) {
    const limn::core::SaveOptions d;
    o.file_format = d.file_format;
    o.jpeg_quality = d.jpeg_quality;
    o.icc_profile = nullptr;
    o.icc_profile_size = 0;
}

void defaults(limn_model_options& o) {
    const limn::core::ModelOptions d;
    o.device = "auto";
    o.precision = d.precision;
    o.expected_kind = d.expected_kind;
    o.fp32_fallback = d.fp32_fallback;
    o.warmup = d.warmup ? 1 : 0;
    o.channels_last = d.channels_last;
    o.cudnn_benchmark = d.cudnn_benchmark;
    o.max_pixels = d.max_pixels;
    o.name = nullptr;
    o.expected_sha256 = nullptr;
}

// The fields a pipeline's C options struct and its core struct share by name and type: the number
// fields limn.h lists (LIMN_*_OPTIONS_NUMBERS, so a new number option is named there only, see
// CONTRIBUTING.md) and the callbacks and face arrays here. The C defaults are copied from the core
// struct's, and the caller's values back into a core struct, from these lists; fields that need
// converting (handles, nested options) are copied by hand below.
#define LIMN_CARTOONIZE_FIELDS(X) LIMN_CARTOONIZE_OPTIONS_NUMBERS(X) X(progress) X(progress_user_data) \
    X(faces) X(face_count)
#define LIMN_RESTORE_FACES_FIELDS(X) LIMN_RESTORE_FACES_OPTIONS_NUMBERS(X) X(progress) X(progress_user_data)
#define LIMN_DETECT_FACES_FIELDS(X) LIMN_DETECT_FACES_OPTIONS_NUMBERS(X)
#define LIMN_FROM_CORE(field) c.field = core.field;
#define LIMN_TO_CORE(field) core.field = c.field;

void defaults(limn_cartoonize_options& c) {
    const limn::core::CartoonizeOptions core;
    LIMN_CARTOONIZE_FIELDS(LIMN_FROM_CORE)
}

void defaults(limn_detect_faces_options& c) {
    const limn::core::DetectFacesOptions core;
    LIMN_DETECT_FACES_FIELDS(LIMN_FROM_CORE)
}

void defaults(limn_restore_faces_options& c) {
    const limn::core::RestoreFacesOptions core;
    LIMN_RESTORE_FACES_FIELDS(LIMN_FROM_CORE)
}

void defaults(limn_run_options&) {}  // host memory, limn's streams: all zero

// limn_<struct>_init_sized: defaults into the caller's struct_size bytes.
template <typename T>
limn_status init_sized(T* options, size_t struct_size, void (*defaults)(T&)) noexcept {
    return guarded([&] {
        require(options, "options");
        check_struct_size(struct_size, "options");
        T full{};
        defaults(full);
        copy_out(full, options, struct_size);
    });
}

using limn::core::known_enum;
using limn::core::raw_enum;

// An enum value from C that must be one of first..last (limn::core::known_enum), else
// INVALID_ARGUMENT naming `what`.
template <typename E>
E checked_enum(const E& value, int32_t first, int32_t last, const std::string& what) {
    if (const std::optional<E> known = known_enum(value, first, last)) return *known;
    limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "invalid " + what + " " + std::to_string(raw_enum(value)) +
                                                    " (expected " + std::to_string(first) + " to " +
                                                    std::to_string(last) + ")");
}

limn_pixel_format pixel_format_arg(const limn_pixel_format& format, const char* what) {
    return checked_enum(format, LIMN_PIXEL_RGB8, LIMN_PIXEL_RGBA32F, what);
}

template <size_t N>
void copy_text(char (&dst)[N], const std::string& src) {
    const size_t n = src.size() < N - 1 ? src.size() : N - 1;
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

limn::core::Device device_arg(const char* device) {
    require(device, "device");
    return limn::core::resolve_device(device);
}

limn::core::ModelOptions model_options(const limn_model_options* in) {
    const limn_model_options o = read_options(in, defaults);
    limn::core::ModelOptions m;
    m.device = o.device ? o.device : "auto";
    m.precision = checked_enum(o.precision, LIMN_PRECISION_AUTO, LIMN_PRECISION_TF32, "options->precision");
    m.expected_kind = checked_enum(o.expected_kind, LIMN_MODEL_KIND_ANY, LIMN_MODEL_KIND_FACE_DETECT,
                                   "options->expected_kind");
    m.fp32_fallback = o.fp32_fallback;
    if (o.warmup != 0 && o.warmup != 1) {
        limn::core::fail(LIMN_ERR_INVALID_ARGUMENT,
                   "invalid warmup " + std::to_string(o.warmup) + ": expected 0 or 1");
    }
    m.warmup = o.warmup == 1;
    m.channels_last = o.channels_last;
    m.cudnn_benchmark = o.cudnn_benchmark;
    m.max_pixels = o.max_pixels;
    if (o.name) m.name = o.name;
    if (o.expected_sha256) m.expected_sha256 = o.expected_sha256;
    return m;
}

limn::core::DetectFacesOptions detect_faces_options(const limn_detect_faces_options* in) {
    const limn_detect_faces_options c = read_options(in, defaults);
    limn::core::DetectFacesOptions core;
    LIMN_DETECT_FACES_FIELDS(LIMN_TO_CORE)
    core.memory = limn::core::parse_image_memory(c.images_device, c.cuda_stream, "options->images_device");
    return core;
}

// The detect_options of another call: where the images are is that call's to say.
limn::core::DetectFacesOptions nested_detect_options(const limn_detect_faces_options* in) {
    const limn::core::DetectFacesOptions o = detect_faces_options(in);
    if (o.memory.on_device() || o.memory.cuda_stream) {
        limn::core::fail(LIMN_ERR_INVALID_ARGUMENT,
                         "options->detect_options sets images_device or cuda_stream; inside another call's "
                         "options they must be unset (that call's own images_device and cuda_stream apply)");
    }
    return o;
}

limn::core::CartoonizeOptions cartoonize_options(const limn_cartoonize_options* in) {
    const limn_cartoonize_options c = read_options(in, defaults);
    limn::core::CartoonizeOptions core;
    LIMN_CARTOONIZE_FIELDS(LIMN_TO_CORE)
    core.head_model = c.head_model ? c.head_model->impl.get() : nullptr;
    core.detector = c.detector ? c.detector->impl.get() : nullptr;
    core.detect = nested_detect_options(c.detect_options);
    core.memory = limn::core::parse_image_memory(c.images_device, c.cuda_stream, "options->images_device");
    return core;
}

limn::core::RestoreFacesOptions restore_faces_options(const limn_restore_faces_options* in) {
    const limn_restore_faces_options c = read_options(in, defaults);
    limn::core::RestoreFacesOptions core;
    LIMN_RESTORE_FACES_FIELDS(LIMN_TO_CORE)
    core.detector = c.detector ? c.detector->impl.get() : nullptr;
    core.detect = nested_detect_options(c.detect_options);
    core.memory = limn::core::parse_image_memory(c.images_device, c.cuda_stream, "options->images_device");
    return core;
}

limn::core::ImageMemory run_options(const limn_run_options* in) {
    const limn_run_options c = read_options(in, defaults);
    return limn::core::parse_image_memory(c.images_device, c.cuda_stream, "options->images_device");
}

void write_stats(const limn::core::PipelineStats& s, limn_pipeline_stats* out) {
    if (!out) return;
    limn_pipeline_stats full{};
    full.tile_size = s.tile_size;
    full.tiles = s.tiles;
    full.oom_retries = s.oom_retries;
    full.width = s.width;
    full.height = s.height;
    full.faces = s.faces;
    full.seconds = s.seconds;
    full.faces_found = s.faces_found;
    full.faces_skipped = s.faces_skipped;
    copy_out(full, out, out->struct_size);
}

limn::core::LoadOptions load_options(const limn_image_load_options* in) {
    const limn_image_load_options o = read_options(in, defaults);
    if (o.apply_orientation != 0 && o.apply_orientation != 1) {
        limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "invalid options->apply_orientation " +
                                                  std::to_string(o.apply_orientation) + ": expected 0 or 1");
    }
    limn::core::LoadOptions m;
    m.format = raw_enum(o.format) == 0 ? o.format : pixel_format_arg(o.format, "options->format");
    m.apply_orientation = o.apply_orientation == 1;
    m.max_pixels = o.max_pixels;
    return m;
}

limn::core::SaveOptions save_options(const limn_image_save_options* in) {
    const limn_image_save_options o = read_options(in, defaults);
    limn::core::SaveOptions m;
    m.file_format = checked_enum(o.file_format, LIMN_FILE_FORMAT_AUTO, LIMN_FILE_FORMAT_WEBP, "options->file_format");
    m.jpeg_quality = o.jpeg_quality;
    if (o.icc_profile_size > 0) {
        require(o.icc_profile, "options->icc_profile");
        if (o.icc_profile_size > limn::core::kMaxIccProfileBytes) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "options->icc_profile_size " + std::to_string(o.icc_profile_size) +
                                                            " is over the 16,000,000 bytes an ICC profile may have");
        }
        const auto* p = static_cast<const uint8_t*>(o.icc_profile);
        m.icc_profile.assign(p, p + o.icc_profile_size);
    }
    return m;
}

// Hands `bytes` to the caller as a malloc'd buffer (limn_buffer_free); NULL and 0 when empty.
void give_buffer(const std::vector<uint8_t>& bytes, void** data, size_t* size) {
    if (bytes.empty()) {
        *data = nullptr;
        *size = 0;
        return;
    }
    void* buffer = std::malloc(bytes.size());
    if (!buffer) throw std::bad_alloc();
    std::memcpy(buffer, bytes.data(), bytes.size());
    *data = buffer;
    *size = bytes.size();
}

limn::core::Model& model_arg(limn_model* model) {
    require(model, "model");
    return *model->impl;
}

// The model of a synchronous call, refused on a pool worker (in a job's callback), where waiting
// for the call could take the worker the call itself needs.
limn::core::Model& blocking_model_arg(limn_model* model, const char* call) {
    if (limn::core::JobPool::on_worker()) {
        limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, std::string(call) +
                                                        " from a job's callback would block a worker of the job "
                                                        "pool; submit a job instead (limn_*_submit)");
    }
    return model_arg(model);
}

// `table` when it is one of limn_name_table's values (read without loading an invalid enum).
std::optional<limn_name_table> known_table(const limn_name_table& table) {
    return known_enum(table, LIMN_NAMES_TABLES, LIMN_NAMES_PIXEL_FORMAT);
}

}  // namespace

extern "C" {

uint32_t limn_version_number(void) { return LIMN_VERSION_NUMBER; }

const char* limn_version_string(void) { return LIMN_VERSION_STRING; }

const char* limn_build_info(void) {
    static const std::string info = [] {
        try {
            return limn::core::build_info();
        } catch (const std::exception& e) {
            return std::string("limn ") + LIMN_VERSION_STRING + "\n(build info unavailable: " +
                   first_line(e.what()) + ")";
        }
    }();
    return info.c_str();
}

const char* limn_status_string(limn_status status) {
    const char* text = limn::core::text_of(LIMN_NAMES_STATUS, raw_enum(status));
    return text ? text : "unknown status";
}

const char* limn_last_error(void) { return last_error.c_str(); }

int32_t limn_cuda_available(void) {
    try {
        return limn::core::cuda_device_count() > 0 ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

limn_status limn_device_count(int32_t* out_count) {
    return guarded([&] {
        require(out_count, "out_count");
        *out_count = 1 + limn::core::cuda_device_count();
    });
}

limn_status limn_device_get_info(int32_t index, limn_device_info* out) {
    return guarded([&] {
        require_struct_size(out, "out");
        const int count = 1 + limn::core::cuda_device_count();
        if (index < 0 || index >= count) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "device index " + std::to_string(index) +
                                                      " is out of range (0 to " +
                                                      std::to_string(count - 1) + ")");
        }
        const limn::core::Device dev = index == 0 ? limn::core::Device{} : limn::core::Device{LIMN_DEVICE_CUDA, index - 1};
        const limn::core::DeviceDescription d = limn::core::describe_device(dev);
        limn_device_info full{};
        full.struct_size = sizeof(full);
        full.type = dev.type;
        full.index = dev.index;
        copy_text(full.id, dev.id());
        copy_text(full.name, d.name);
        full.total_memory = d.total_memory;
        full.free_memory = d.free_memory;
        full.compute_capability = d.compute_capability;
        full.multiprocessors = d.multiprocessors;
        copy_text(full.native_precisions, limn::core::native_precision_list(d));
        copy_text(full.auto_precision, limn::core::precision_name(limn::core::resolve_precision(LIMN_PRECISION_AUTO, d)));
        copy_out(full, out, out->struct_size);
    });
}

limn_status limn_device_resolve(const char* device, char* out, size_t out_size) {
    return guarded([&] {
        require(out, "out");
        const std::string id = device_arg(device).id();
        if (out_size < id.size() + 1) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "out_size " + std::to_string(out_size) +
                                                      " is too small for '" + id + "'");
        }
        std::memcpy(out, id.c_str(), id.size() + 1);
    });
}

limn_status limn_memory_set_limit(const char* device, uint64_t bytes) {
    return guarded([&] { limn::core::set_memory_limit(device_arg(device), bytes); });
}

limn_status limn_memory_release_cached(const char* device) {
    return guarded([&] { limn::core::release_cached_memory(device_arg(device)); });
}

limn_status limn_memory_get_stats(const char* device, limn_memory_stats* out) {
    return guarded([&] {
        require_struct_size(out, "out");
        const limn::core::MemoryStats s = limn::core::memory_stats(device_arg(device));
        limn_memory_stats full{};
        full.struct_size = sizeof(full);
        full.allocated = s.allocated;
        full.reserved = s.reserved;
        full.peak_allocated = s.peak_allocated;
        full.peak_reserved = s.peak_reserved;
        full.limit = s.limit;
        full.device_total = s.device_total;
        full.device_free = s.device_free;
        full.cached = s.cached;
        full.allocations = s.allocations;
        copy_out(full, out, out->struct_size);
    });
}

limn_status limn_memory_reset_peak(const char* device) {
    return guarded([&] { limn::core::reset_peak_memory(device_arg(device)); });
}

int32_t limn_pixel_format_channels(limn_pixel_format format) {
    const auto known = limn::core::known_pixel_format(format);
    return known ? limn::core::channels_of(*known) : 0;
}

int32_t limn_pixel_format_bytes_per_pixel(limn_pixel_format format) {
    const auto known = limn::core::known_pixel_format(format);
    return known ? limn::core::bytes_per_pixel(*known) : 0;
}

const char* limn_precision_name(limn_precision precision) {
    return limn::core::name_of(LIMN_NAMES_PRECISION, raw_enum(precision));
}

const char* limn_model_kind_name(limn_model_kind kind) { return limn::core::name_of(LIMN_NAMES_MODEL_KIND, raw_enum(kind)); }

const char* limn_name(limn_name_table table, int32_t value) {
    const auto known = known_table(table);
    return known ? limn::core::name_of(*known, value) : nullptr;
}

limn_status limn_name_value(limn_name_table table, const char* name, int32_t* value) {
    return guarded([&] {
        require(name, "name");
        require(value, "value");
        const auto known = known_table(table);
        if (!known || *known == LIMN_NAMES_TABLES) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "unknown name table " + std::to_string(raw_enum(table)));
        }
        const auto found = limn::core::value_of(*known, name);
        if (!found) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "unknown " + std::string(limn::core::name_of(LIMN_NAMES_TABLES, *known)) +
                                                          " '" + limn::core::valid_utf8(name) + "' (expected " +
                                                          limn::core::name_list(*known) + ")");
        }
        *value = *found;
    });
}

const char* limn_names_entry(limn_name_table table, size_t index, int32_t* value) {
    const auto known = known_table(table);
    return known ? limn::core::name_at(*known, index, value) : nullptr;
}

limn_status limn_model_path(const char* source, char* out, size_t out_size) {
    return guarded([&] {
        require(source, "source");
        require(out, "out");
        const std::string path = limn::core::model_path(source);
        if (path.size() + 1 > out_size) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "the path of model '" + std::string(source) + "' is " +
                                                          std::to_string(path.size()) + " bytes; out_size " +
                                                          std::to_string(out_size) + " holds at most " +
                                                          std::to_string(out_size ? out_size - 1 : 0));
        }
        std::memcpy(out, path.c_str(), path.size() + 1);
    });
}

limn_status limn_image_alloc(int32_t width, int32_t height, limn_pixel_format format, limn_image** out) {
    return guarded([&] {
        require(out, "out");
        *out = limn::core::allocate_image(width, height, pixel_format_arg(format, "format")).release();
    });
}

void limn_image_free(limn_image* image) { std::free(image); }

limn_status limn_image_load_options_init_sized(limn_image_load_options* options, size_t struct_size) {
    return init_sized(options, struct_size, defaults);
}

limn_status limn_image_load(const char* path, const limn_image_load_options* options, limn_image** out) {
    return guarded([&] {
        require(path, "path");
        require(out, "out");
        *out = limn::core::load_image_file(path, load_options(options)).release();
    });
}

limn_status limn_image_load_from_memory(const void* data, size_t size,
                                        const limn_image_load_options* options, limn_image** out) {
    return guarded([&] {
        require(data, "data");
        require(out, "out");
        const limn_image_load_options o = read_options(options, defaults);
        *out = limn::core::load_image_memory(data, size, o.name ? o.name : "<memory>", load_options(options)).release();
    });
}

limn_status limn_image_save_options_init_sized(limn_image_save_options* options, size_t struct_size) {
    return init_sized(options, struct_size, defaults);
}

limn_status limn_image_save_options_check(const limn_image_save_options* options) {
    return guarded([&] {
        require(options, "options");
        const auto o = save_options(options);
        limn::core::check_save_options(o);
    });
}

limn_status limn_file_write(const char* path, const void* data, size_t size) {
    return guarded([&] {
        require(path, "path");
        if (size > 0) require(data, "data");
        if (!*path) limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "cannot write to an empty path");
        limn::core::write_file_atomic(path, data, size, std::string("cannot write '") + path + "'");
    });
}

limn_status limn_image_save(const char* path, const limn_image* image,
                            const limn_image_save_options* options) {
    return guarded([&] {
        require(path, "path");
        limn::core::check_image(image, "image", 0);
        limn::core::save_image_file(path, *image, save_options(options));
    });
}

limn_status limn_image_encode(const limn_image* image, const limn_image_save_options* options,
                              void** data, size_t* size) {
    return guarded([&] {
        require(data, "data");
        require(size, "size");
        limn::core::check_image(image, "image", 0);
        const limn::core::SaveOptions o = save_options(options);
        if (o.file_format == LIMN_FILE_FORMAT_AUTO) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "limn_image_encode needs options->file_format; AUTO "
                                                  "only works with a path");
        }
        give_buffer(limn::core::encode_image(*image, o), data, size);
    });
}

limn_status limn_image_read_icc_profile(const char* path, void** profile, size_t* profile_size) {
    return guarded([&] {
        require(path, "path");
        require(profile, "profile");
        require(profile_size, "profile_size");
        give_buffer(limn::core::read_icc_profile_file(path), profile, profile_size);
    });
}

limn_status limn_image_read_icc_profile_from_memory(const void* data, size_t size, void** profile,
                                                    size_t* profile_size) {
    return guarded([&] {
        require(data, "data");
        require(profile, "profile");
        require(profile_size, "profile_size");
        give_buffer(limn::core::find_icc_profile(static_cast<const uint8_t*>(data), size), profile, profile_size);
    });
}

void limn_buffer_free(void* data) { std::free(data); }

limn_status limn_model_options_init_sized(limn_model_options* options, size_t struct_size) {
    return init_sized(options, struct_size, defaults);
}

limn_status limn_model_load(const char* path, const limn_model_options* options, limn_model** out) {
    return guarded([&] {
        require(path, "path");
        require(out, "out");
        const limn::core::ModelOptions o = model_options(options);
        auto handle = std::make_unique<limn_model>();
        handle->impl = limn::core::Model::load_source(path, o);
        *out = handle.release();
    });
}

limn_status limn_model_load_from_memory(const void* data, size_t size, const limn_model_options* options,
                                        limn_model** out) {
    return guarded([&] {
        require(data, "data");
        require(out, "out");
        const limn::core::ModelOptions o = model_options(options);
        auto handle = std::make_unique<limn_model>();
        handle->impl = limn::core::Model::load_memory(data, size, o);
        *out = handle.release();
    });
}

void limn_model_free(limn_model* model) {
    try {
        const limn::core::CpuTensorScope counted;  // the weights leave limn's CPU tensor count
        // Its jobs end as cancelled; a running one holds the model until it has stopped.
        if (model) limn::core::JobPool::instance().cancel_uses(model->impl.get());
        delete model;
    } catch (...) {
    }
}

limn_status limn_model_get_info(const limn_model* model, limn_model_info* out) {
    return guarded([&] {
        require(model, "model");
        require_struct_size(out, "out");
        const limn::core::Model& m = *model->impl;
        const limn::core::ModelMetadata& meta = m.metadata();
        limn_model_info full{};
        full.struct_size = sizeof(full);
        full.kind = meta.kind;
        full.format_version = meta.format_version;
        copy_text(full.name, meta.name);
        copy_text(full.device, m.device().id());
        full.precision = m.precision();
        full.size_multiple = meta.size_multiple;
        full.fixed_width = meta.fixed_width;
        full.fixed_height = meta.fixed_height;
        full.tile_margin = meta.tile_margin;
        full.has_face_template = meta.face_template.size() == 10 ? 1 : 0;
        for (size_t i = 0; i < meta.face_template.size() && i < 10; ++i) {
            full.face_template[i] = meta.face_template[i];
        }
        copy_text(full.source, meta.source);
        copy_text(full.license, meta.license);
        copy_text(full.format, m.format());
        full.min_width = static_cast<int32_t>(m.min_width());
        full.min_height = static_cast<int32_t>(m.min_height());
        copy_text(full.precision_note, m.precision_note());
        copy_text(full.role, meta.role);
        full.crop_size = meta.crop_size;
        full.min_tile_size = limn::core::smallest_tile_size(m);
        copy_out(full, out, out->struct_size);
    });
}

limn_status limn_model_run(limn_model* model, const limn_image* input, limn_image* output) {
    return guarded([&] {
        limn::core::Model& m = blocking_model_arg(model, "limn_model_run");
        require(input, "input");
        require(output, "output");
        m.run(input, output, 1);
    });
}

limn_status limn_model_run_alloc(limn_model* model, const limn_image* input, limn_pixel_format format,
                                 limn_image** out) {
    return guarded([&] {
        limn::core::Model& m = blocking_model_arg(model, "limn_model_run_alloc");
        require(input, "input");
        require(out, "out");
        limn::core::check_image(input, "input", m.max_pixels());
        limn::core::OwnedImage result =
            limn::core::allocate_image(input->width, input->height, pixel_format_arg(format, "format"));
        m.run(input, result.get(), 1);
        *out = result.release();
    });
}

limn_status limn_model_run_batch(limn_model* model, const limn_image* inputs, limn_image* outputs,
                                 size_t count) {
    return guarded([&] {
        limn::core::Model& m = blocking_model_arg(model, "limn_model_run_batch");
        require(inputs, "inputs");
        require(outputs, "outputs");
        m.run(inputs, outputs, count);
    });
}

limn_status limn_run_options_init_sized(limn_run_options* options, size_t struct_size) {
    return init_sized(options, struct_size, defaults);
}

limn_status limn_model_run_with(limn_model* model, const limn_image* inputs, limn_image* outputs, size_t count,
                                const limn_run_options* options) {
    return guarded([&] {
        limn::core::Model& m = blocking_model_arg(model, "limn_model_run_with");
        require(inputs, "inputs");
        require(outputs, "outputs");
        m.run(inputs, outputs, count, run_options(options));
    });
}

limn_status limn_cartoonize_options_init_sized(limn_cartoonize_options* options, size_t struct_size) {
    return init_sized(options, struct_size, defaults);
}

limn_status limn_cartoonize_options_check(const limn_cartoonize_options* options) {
    return guarded([&] {
        require(options, "options");
        const auto o = cartoonize_options(options);
        limn::core::check_options(o);
        if (o.detector) limn::core::check_options(o.detect);
    });
}

limn_status limn_cartoonize(limn_model* model, const limn_image* input, limn_image* output,
                            const limn_cartoonize_options* options, limn_pipeline_stats* stats) {
    return guarded([&] {
        limn::core::Model& m = blocking_model_arg(model, "limn_cartoonize");
        require(input, "input");
        require(output, "output");
        if (stats) require_struct_size(stats, "stats");
        limn::core::PipelineStats s;
        limn::core::cartoonize(m, *input, *output, cartoonize_options(options), &s);
        write_stats(s, stats);
    });
}

limn_status limn_detect_faces_options_init_sized(limn_detect_faces_options* options, size_t struct_size) {
    return init_sized(options, struct_size, defaults);
}

limn_status limn_detect_faces_options_check(const limn_detect_faces_options* options) {
    return guarded([&] {
        require(options, "options");
        const auto o = detect_faces_options(options);
        limn::core::check_options(o);
    });
}

limn_status limn_detect_faces(limn_model* detector, const limn_image* input,
                              const limn_detect_faces_options* options, limn_face* faces, size_t capacity,
                              size_t* out_count) {
    return guarded([&] {
        limn::core::Model& m = blocking_model_arg(detector, "limn_detect_faces");
        require(input, "input");
        require(out_count, "out_count");
        if (capacity > 0) require(faces, "faces");
        const std::vector<limn_face> found = limn::core::detect_faces(m, *input, detect_faces_options(options));
        std::copy_n(found.begin(), std::min(found.size(), capacity), faces);
        *out_count = found.size();
    });
}

limn_status limn_restore_faces_options_init_sized(limn_restore_faces_options* options, size_t struct_size) {
    return init_sized(options, struct_size, defaults);
}

limn_status limn_restore_faces_options_check(const limn_restore_faces_options* options) {
    return guarded([&] {
        require(options, "options");
        const auto o = restore_faces_options(options);
        limn::core::check_options(o);
        if (o.detector) limn::core::check_options(o.detect);
    });
}

limn_status limn_restore_faces(limn_model* model, const limn_image* input, limn_image* output,
                               const limn_face* faces, size_t face_count,
                               const limn_restore_faces_options* options, limn_pipeline_stats* stats) {
    return guarded([&] {
        limn::core::Model& m = blocking_model_arg(model, "limn_restore_faces");
        require(input, "input");
        require(output, "output");
        if (stats) require_struct_size(stats, "stats");
        limn::core::PipelineStats s;
        limn::core::restore_faces(m, *input, *output, faces, face_count, restore_faces_options(options), &s);
        write_stats(s, stats);
    });
}

}  // extern "C"

// ---- Asynchronous jobs -------------------------------------------------------------------------

struct limn_job {
    std::shared_ptr<limn::core::Job> impl;
};

namespace {

using limn::core::Job;
using limn::core::JobPool;

void defaults(limn_job_options& o) {
    o.callback = nullptr;
    o.user_data = nullptr;
}

std::shared_ptr<const void> model_ref(const limn_model* model) { return model ? model->impl : nullptr; }

// A pipeline's progress during a job: a cancelled job stops at the next step, else the caller's
// callback decides.
struct JobProgress {
    const Job* job = nullptr;
    limn_progress_callback callback = nullptr;
    void* user_data = nullptr;

    static int32_t call(int32_t done, int32_t total, void* self) {
        const auto* p = static_cast<const JobProgress*>(self);
        if (p->job->cancelled()) return 1;
        return p->callback ? p->callback(done, total, p->user_data) : 0;
    }
};

// Queues `work` (which runs the call in guarded(), so a job's failures read as the synchronous
// call's) and hands the caller its job.
template <typename Work>
void submit(const limn_job_options* job_options, std::vector<std::shared_ptr<const void>> uses, Work work,
            limn_job** out) {
    require(out, "out");
    const limn_job_options o = read_options(job_options, defaults);
    Job::Done done;
    if (o.callback) {
        done = [callback = o.callback, user_data = o.user_data](limn_status status, const char* message) {
            callback(status, message, user_data);
        };
    }
    auto handle = std::make_unique<limn_job>();
    handle->impl = std::make_shared<Job>(
        [work = std::move(work)](const Job& job) mutable {
            const limn_status status = guarded([&] { work(job); });
            if (status != LIMN_OK) limn::core::fail(status, last_error);
        },
        std::move(done), std::move(uses));
    JobPool::instance().submit(handle->impl);
    *out = handle.release();
}

limn_image image_copy(const limn_image* image, const char* what) {
    require(image, what);
    return *image;
}

// The input and output of a submitted call, checked now against the model (the job reads the
// descriptions later; the pixels must live until it has ended).
std::pair<limn_image, limn_image> job_images(const limn_image* input, limn_image* output,
                                             const limn::core::Model& m) {
    const limn_image in = image_copy(input, "input");
    const limn_image result = image_copy(output, "output");
    limn::core::check_image_pair(in, result, "input", "output", m.max_pixels());
    return {in, result};
}

// A job's images: the caller's stream becomes an event recorded on it now, at submit, which the
// job's work waits for on limn's stream (limn.h, "Device images").
// The images are checked against the model now, as the call would (the job checks them again).
limn::core::ImageMemory job_memory(limn::core::ImageMemory memory, const limn::core::Model& m,
                                   const limn::core::NamedImages& images) {
    limn::core::check_image_memory(memory, m.device(), m.origin(), images);
    if (!memory.cuda_stream) return memory;
    memory.ready = limn::core::record_ready_event(m.device(), memory.cuda_stream);
    memory.cuda_stream = nullptr;
    return memory;
}

// A pipeline's options for a job over `in` and `result`, checked now as the call checks them, with
// the place of its images (job_memory).
// `detects`: the job will run o.detector (no faces given), which reads the input where it is, on
// its own device.
template <typename Options>
Options job_options_checked(Options o, const limn::core::Model& m, const limn_image& in, const limn_image& result,
                            bool detects) {
    limn::core::check_options(o);
    if (o.detector) limn::core::check_options(o.detect);
    if (o.detector && detects) {
        limn::core::check_image_memory(o.memory, o.detector->device(), o.detector->origin(), {{&in, "input"}});
    }
    o.memory = job_memory(o.memory, m, {{&in, "input"}, {&result, "output"}});
    return o;
}

// A pipeline's options for one job: `progress` (which must outlive the run) goes in front of the
// caller's callback, so that a cancel stops the pipeline at its next step.
template <typename Options>
Options with_cancel(const Job& job, Options o, JobProgress& progress) {
    progress = JobProgress{&job, o.progress, o.progress_user_data};
    o.progress = &JobProgress::call;
    o.progress_user_data = &progress;
    return o;
}

// A raw run of `count` images as a job: checked now as the run checks them, the descriptions copied
// (the caller's arrays may go at once; the pixels must stay), with the place of the images.
void submit_run(const std::shared_ptr<limn::core::Model>& m, const limn_image* inputs, limn_image* outputs,
                size_t count, const limn_run_options* options, const limn_job_options* job_options, limn_job** out) {
    const limn::core::ImageMemory memory = job_memory(run_options(options), *m, m->check_run(inputs, outputs, count));
    std::vector<limn_image> in(inputs, inputs + count), result(outputs, outputs + count);
    submit(job_options, {m},
           [m, in = std::move(in), result = std::move(result), memory](const Job&) mutable {
               m->run(in.data(), result.data(), in.size(), memory);
           },
           out);
}

}  // namespace

extern "C" {

limn_status limn_job_options_init_sized(limn_job_options* options, size_t struct_size) {
    return init_sized(options, struct_size, defaults);
}

limn_status limn_jobs_start(int32_t workers) {
    return guarded([&] { JobPool::instance().start(workers); });
}

limn_status limn_jobs_shutdown(void) {
    return guarded([&] { JobPool::instance().shutdown(); });
}

limn_status limn_model_run_submit(limn_model* model, const limn_image* input, limn_image* output,
                                  const limn_job_options* job_options, limn_job** out) {
    return guarded_light([&] {
        model_arg(model);
        require(input, "input");
        require(output, "output");
        submit_run(model->impl, input, output, 1, nullptr, job_options, out);
    });
}

limn_status limn_model_run_with_submit(limn_model* model, const limn_image* inputs, limn_image* outputs, size_t count,
                                       const limn_run_options* options, const limn_job_options* job_options,
                                       limn_job** out) {
    return guarded_light([&] {
        model_arg(model);
        require(inputs, "inputs");
        require(outputs, "outputs");
        submit_run(model->impl, inputs, outputs, count, options, job_options, out);
    });
}

limn_status limn_cartoonize_submit(limn_model* model, const limn_image* input, limn_image* output,
                                   const limn_cartoonize_options* options, limn_pipeline_stats* stats,
                                   const limn_job_options* job_options, limn_job** out) {
    return guarded_light([&] {
        model_arg(model);
        const std::shared_ptr<limn::core::Model> m = model->impl;
        auto [in, result] = job_images(input, output, *m);
        if (stats) require_struct_size(stats, "stats");
        const limn::core::CartoonizeOptions given = cartoonize_options(options);
        const limn::core::CartoonizeOptions o =
            job_options_checked(given, *m, in, result, given.head_model && given.face_count == 0);
        std::vector<limn_face> faces(o.faces, o.faces + o.face_count);  // the caller's may go at once
        std::vector<std::shared_ptr<const void>> uses{m};
        if (options && options->head_model) uses.push_back(model_ref(options->head_model));
        if (options && options->detector) uses.push_back(model_ref(options->detector));
        submit(job_options, uses,
               [m, in = in, result = result, o, faces, stats](const Job& job) mutable {
                   JobProgress progress;
                   limn::core::CartoonizeOptions run = with_cancel(job, o, progress);
                   run.faces = faces.empty() ? nullptr : faces.data();
                   limn::core::PipelineStats s;
                   limn::core::cartoonize(*m, in, result, run, &s);
                   write_stats(s, stats);
               },
               out);
    });
}

limn_status limn_detect_faces_submit(limn_model* detector, const limn_image* input,
                                     const limn_detect_faces_options* options, limn_face* faces, size_t capacity,
                                     size_t* out_count, const limn_job_options* job_options, limn_job** out) {
    return guarded_light([&] {
        model_arg(detector);
        const limn_image in = image_copy(input, "input");
        require(out_count, "out_count");
        if (capacity > 0) require(faces, "faces");
        limn::core::DetectFacesOptions o = detect_faces_options(options);
        limn::core::check_options(o);
        const std::shared_ptr<limn::core::Model> m = detector->impl;
        limn::core::check_image(&in, "input", m->max_pixels());
        o.memory = job_memory(o.memory, *m, {{&in, "input"}});
        submit(job_options, {m},
               [m, in, o, faces, capacity, out_count](const Job&) {
                   const std::vector<limn_face> found = limn::core::detect_faces(*m, in, o);
                   std::copy_n(found.begin(), std::min(found.size(), capacity), faces);
                   *out_count = found.size();
               },
               out);
    });
}

limn_status limn_restore_faces_submit(limn_model* model, const limn_image* input, limn_image* output,
                                      const limn_face* faces, size_t face_count,
                                      const limn_restore_faces_options* options, limn_pipeline_stats* stats,
                                      const limn_job_options* job_options, limn_job** out) {
    return guarded_light([&] {
        model_arg(model);
        const std::shared_ptr<limn::core::Model> m = model->impl;
        auto [in, result] = job_images(input, output, *m);
        if (stats) require_struct_size(stats, "stats");
        limn::core::check_faces(faces, face_count);
        const limn::core::RestoreFacesOptions o =
            job_options_checked(restore_faces_options(options), *m, in, result, face_count == 0);
        const std::vector<limn_face> given(faces, faces + face_count);
        std::vector<std::shared_ptr<const void>> uses{m};
        if (options && options->detector) uses.push_back(model_ref(options->detector));
        submit(job_options, uses,
               [m, in = in, result = result, o, given, stats](const Job& job) mutable {
                   JobProgress progress;
                   const limn::core::RestoreFacesOptions run = with_cancel(job, o, progress);
                   limn::core::PipelineStats s;
                   limn::core::restore_faces(*m, in, result, given.empty() ? nullptr : given.data(), given.size(),
                                             run, &s);
                   write_stats(s, stats);
               },
               out);
    });
}

limn_status limn_job_wait(limn_job* job, int64_t timeout_ms, limn_status* job_status) {
    bool ended = false;
    const limn_status s = guarded_light([&] {
        require(job, "job");
        require(job_status, "job_status");
        if (timeout_ms != 0 && JobPool::on_worker()) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT,
                             "limn_job_wait from a job's callback would block a worker of the job pool (the job "
                             "waited for may need it); poll with timeout_ms 0 or wait on a thread of your own");
        }
        ended = job->impl->wait(timeout_ms);
        if (ended) *job_status = job->impl->status();
    });
    if (s != LIMN_OK || ended) return s;
    // Not an exception: an engine polls every frame, and throwing through LibTorch's many shared
    // objects costs tens of microseconds.
    return set_error(LIMN_ERR_TIMEOUT, "the job has not ended after " + std::to_string(timeout_ms) + " ms");
}

const char* limn_job_message(const limn_job* job) {
    return job && job->impl->finished() ? job->impl->message().c_str() : "";
}

limn_status limn_job_cancel(limn_job* job) {
    return guarded_light([&] {
        require(job, "job");
        job->impl->cancel();
    });
}

void limn_job_free(limn_job* job) { delete job; }

}  // extern "C"

// ---- Frames ------------------------------------------------------------------------------------

struct limn_frames {
    std::shared_ptr<limn::core::FrameStream> impl;
};

extern "C" {

limn_status limn_frames_create(limn_model* model, int32_t width, int32_t height, limn_pixel_format format,
                               const limn_cartoonize_options* options, limn_frames** out) {
    return guarded([&] {
        model_arg(model);
        require(out, "out");
        if (model->impl->metadata().kind != LIMN_MODEL_KIND_CARTOON) {
            limn::core::fail(LIMN_ERR_WRONG_MODEL_KIND, "limn_frames_create needs a cartoon model");
        }
        const limn_pixel_format f = pixel_format_arg(format, "format");
        std::vector<std::shared_ptr<const void>> keep;
        if (options && options->head_model) keep.push_back(model_ref(options->head_model));
        if (options && options->detector) keep.push_back(model_ref(options->detector));
        auto handle = std::make_unique<limn_frames>();
        handle->impl = std::make_shared<limn::core::FrameStream>(model->impl, width, height, f,
                                                                 cartoonize_options(options), std::move(keep));
        *out = handle.release();
    });
}

limn_status limn_frames_run(limn_frames* frames, const limn_image* input, limn_image* output) {
    return guarded([&] {
        require(frames, "frames");
        if (JobPool::on_worker()) {
            limn::core::fail(LIMN_ERR_INVALID_ARGUMENT, "limn_frames_run from a job's callback would block a worker "
                                                        "of the job pool; submit it instead (limn_frames_submit)");
        }
        require(input, "input");
        require(output, "output");
        frames->impl->run(*input, *output, nullptr);
    });
}

limn_status limn_frames_submit(limn_frames* frames, const limn_image* input, limn_image* output,
                               const limn_job_options* job_options, limn_job** out) {
    return guarded_light([&] {
        require(frames, "frames");
        const std::shared_ptr<limn::core::FrameStream> stream = frames->impl;
        auto [in, result] = job_images(input, output, stream->model());
        const limn::core::ImageMemory memory =
            job_memory(stream->options().memory, stream->model(), {{&in, "input"}, {&result, "output"}});
        std::vector<std::shared_ptr<const void>> uses = stream->uses();
        uses.push_back(stream);
        submit(job_options, std::move(uses),
               [stream, in = in, result = result, memory](const Job& job) mutable {
                   JobProgress progress{&job, stream->options().progress, stream->options().progress_user_data};
                   stream->run(in, result, nullptr, &JobProgress::call, &progress, &memory);
               },
               out);
    });
}

void limn_frames_free(limn_frames* frames) {
    try {
        if (frames) limn::core::JobPool::instance().cancel_uses(frames->impl.get());
        delete frames;
    } catch (...) {
    }
}

}  // extern "C"
