// limn.hpp: header-only C++17 RAII wrapper over the C ABI in limn.h.
//
//     limn::Model model("cartoon.pt", limn::ModelOptions().device("cuda").precision(LIMN_PRECISION_FP16));
//     limn::Image out = model.run(input);          // throws limn::Error on failure
//
// Failures throw limn::Error carrying the limn_status and the library's message. Thread contract:
// as in limn.h (one Model may be run from many threads at once).
#ifndef LIMN_LIMN_HPP
#define LIMN_LIMN_HPP

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "limn.h"

namespace limn {

class Error : public std::runtime_error {
public:
    Error(limn_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    limn_status status() const noexcept { return status_; }

private:
    limn_status status_;
};

namespace detail {
inline void check(limn_status status) {
    if (status != LIMN_OK) {
        std::string message = limn_last_error();
        if (message.empty()) message = limn_status_string(status);
        throw Error(status, message);
    }
}
// Calls a std::function<bool(done, total)>; false or an exception cancels.
inline int32_t progress_trampoline(int32_t done, int32_t total, void* user) {
    try {
        return (*static_cast<std::function<bool(int32_t, int32_t)>*>(user))(done, total) ? 0 : 1;
    } catch (...) {
        return 1;
    }
}
}  // namespace detail

inline std::string version() { return limn_version_string(); }
inline std::string build_info() { return limn_build_info(); }
inline bool cuda_available() { return limn_cuda_available() != 0; }

inline std::vector<limn_device_info> devices() {
    int32_t count = 0;
    detail::check(limn_device_count(&count));
    std::vector<limn_device_info> out(static_cast<size_t>(count));
    for (int32_t i = 0; i < count; ++i) {
        out[i].struct_size = sizeof(limn_device_info);
        detail::check(limn_device_get_info(i, &out[i]));
    }
    return out;
}

inline std::string resolve_device(const std::string& device) {
    char id[64];
    detail::check(limn_device_resolve(device.c_str(), id, sizeof id));
    return id;
}

inline void set_memory_limit(const std::string& device, uint64_t bytes) {
    detail::check(limn_memory_set_limit(device.c_str(), bytes));
}
inline void release_cached_memory(const std::string& device) {
    detail::check(limn_memory_release_cached(device.c_str()));
}
inline limn_memory_stats memory_stats(const std::string& device) {
    limn_memory_stats s{};
    s.struct_size = sizeof s;
    detail::check(limn_memory_get_stats(device.c_str(), &s));
    return s;
}
inline void reset_peak_memory(const std::string& device) {
    detail::check(limn_memory_reset_peak(device.c_str()));
}

// An image whose pixels the library allocated (limn_image_alloc / limn_model_run_alloc).
class Image {
public:
    Image() = default;
    Image(int32_t width, int32_t height, limn_pixel_format format) {
        limn_image* p = nullptr;
        detail::check(limn_image_alloc(width, height, format, &p));
        ptr_.reset(p);
    }
    explicit Image(limn_image* owned) : ptr_(owned) {}

    const limn_image& view() const { return *ptr_; }
    limn_image& view() { return *ptr_; }
    uint8_t* data() const { return ptr_ ? ptr_->data : nullptr; }
    int32_t width() const { return ptr_ ? ptr_->width : 0; }
    int32_t height() const { return ptr_ ? ptr_->height : 0; }
    size_t stride() const { return ptr_ ? ptr_->stride : 0; }
    limn_pixel_format format() const { return ptr_ ? ptr_->format : LIMN_PIXEL_RGB8; }
    explicit operator bool() const { return ptr_ != nullptr; }

private:
    struct Free {
        void operator()(limn_image* p) const noexcept { limn_image_free(p); }
    };
    std::unique_ptr<limn_image, Free> ptr_;
};

namespace detail {
inline limn_image_load_options load_options(limn_pixel_format format, std::optional<uint64_t> max_pixels,
                                            bool apply_orientation) {
    limn_image_load_options o;
    limn_image_load_options_init(&o);
    o.format = format;
    if (max_pixels) o.max_pixels = *max_pixels;
    o.apply_orientation = apply_orientation ? 1 : 0;
    return o;
}
inline limn_image_save_options save_options(limn_file_format file_format, std::optional<int32_t> jpeg_quality,
                                            const std::vector<uint8_t>& icc_profile) {
    limn_image_save_options o;
    limn_image_save_options_init(&o);
    o.file_format = file_format;
    if (jpeg_quality) o.jpeg_quality = *jpeg_quality;
    o.icc_profile = icc_profile.empty() ? nullptr : icc_profile.data();
    o.icc_profile_size = icc_profile.size();
    return o;
}
inline std::vector<uint8_t> take_buffer(void* data, size_t size) {
    std::unique_ptr<void, void (*)(void*)> owned(data, limn_buffer_free);
    const uint8_t* bytes = static_cast<const uint8_t*>(data);
    return bytes ? std::vector<uint8_t>(bytes, bytes + size) : std::vector<uint8_t>();
}
}  // namespace detail

// Image files (limn_image_load / limn_image_save). format 0: RGB8, or RGBA8 when the file has alpha.
// Unset optional arguments take the library's defaults (limn_image_*_options_init).
inline Image load_image(const std::string& path, limn_pixel_format format = static_cast<limn_pixel_format>(0),
                        std::optional<uint64_t> max_pixels = std::nullopt, bool apply_orientation = true) {
    const limn_image_load_options o = detail::load_options(format, max_pixels, apply_orientation);
    limn_image* p = nullptr;
    detail::check(limn_image_load(path.c_str(), &o, &p));
    return Image(p);
}
// As load_image, from encoded bytes in memory; `name` is what messages call them ("<memory>").
inline Image load_image_from_memory(const void* data, size_t size,
                                    limn_pixel_format format = static_cast<limn_pixel_format>(0),
                                    std::optional<uint64_t> max_pixels = std::nullopt,
                                    bool apply_orientation = true, const std::string& name = "") {
    limn_image_load_options o = detail::load_options(format, max_pixels, apply_orientation);
    if (!name.empty()) o.name = name.c_str();
    limn_image* p = nullptr;
    detail::check(limn_image_load_from_memory(data, size, &o, &p));
    return Image(p);
}
// Encodes an image in memory (file_format must not be AUTO), with an ICC profile if one is given.
inline std::vector<uint8_t> encode_image(const limn_image& image, limn_file_format file_format,
                                         std::optional<int32_t> jpeg_quality = std::nullopt,
                                         const std::vector<uint8_t>& icc_profile = {}) {
    const limn_image_save_options o = detail::save_options(file_format, jpeg_quality, icc_profile);
    void* data = nullptr;
    size_t size = 0;
    detail::check(limn_image_encode(&image, &o, &data, &size));
    return detail::take_buffer(data, size);
}
// Writes bytes (e.g. from encode_image) to a file through a temporary file renamed into place.
inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    detail::check(limn_file_write(path.c_str(), bytes.data(), bytes.size()));
}
inline void save_image(const std::string& path, const limn_image& image,
                       std::optional<int32_t> jpeg_quality = std::nullopt,
                       limn_file_format file_format = LIMN_FILE_FORMAT_AUTO,
                       const std::vector<uint8_t>& icc_profile = {}) {
    const limn_image_save_options o = detail::save_options(file_format, jpeg_quality, icc_profile);
    detail::check(limn_image_save(path.c_str(), &image, &o));
}
// Throws limn::Error unless saving and encoding take this JPEG/WebP quality
// (limn_image_save_options_check).
inline void check_jpeg_quality(int32_t jpeg_quality) {
    const limn_image_save_options o = detail::save_options(LIMN_FILE_FORMAT_AUTO, jpeg_quality, {});
    detail::check(limn_image_save_options_check(&o));
}
// The ICC colour profile embedded in an image file or in encoded bytes; empty if none.
inline std::vector<uint8_t> read_icc_profile(const std::string& path) {
    void* data = nullptr;
    size_t size = 0;
    detail::check(limn_image_read_icc_profile(path.c_str(), &data, &size));
    return detail::take_buffer(data, size);
}
inline std::vector<uint8_t> read_icc_profile_from_memory(const void* encoded, size_t encoded_size) {
    void* data = nullptr;
    size_t size = 0;
    detail::check(limn_image_read_icc_profile_from_memory(encoded, encoded_size, &data, &size));
    return detail::take_buffer(data, size);
}

// Names of limn's enums (limn_name and its tables), as files and the command line spell them.
inline std::string name(limn_name_table table, int32_t value) {
    const char* n = limn_name(table, value);
    return n ? n : "";
}
inline std::string precision_name(limn_precision p) { return name(LIMN_NAMES_PRECISION, p); }
inline std::string model_kind_name(limn_model_kind kind) { return name(LIMN_NAMES_MODEL_KIND, kind); }
// The value a name stands for in `table` ("jpg" too for file formats); none if unknown.
inline std::optional<int32_t> name_value(limn_name_table table, const std::string& n) {
    int32_t value = 0;
    if (limn_name_value(table, n.c_str(), &value) != LIMN_OK) return std::nullopt;
    return value;
}
// Every (name, value) of `table`, in value order, then the other spellings ("jpg").
inline std::vector<std::pair<std::string, int32_t>> names(limn_name_table table) {
    std::vector<std::pair<std::string, int32_t>> out;
    int32_t value = 0;
    for (size_t i = 0; const char* n = limn_names_entry(table, i, &value); ++i) out.emplace_back(n, value);
    return out;
}
// The precision a name ("fp16", ...) stands for; false if none.
inline bool parse_precision(const std::string& n, limn_precision* out) {
    const std::optional<int32_t> value = name_value(LIMN_NAMES_PRECISION, n);
    if (value) *out = static_cast<limn_precision>(*value);
    return value.has_value();
}
// The file a model argument stands for: itself, or a fetched name's file in the model cache
// (limn_model_path); limn::Error(LIMN_ERR_IO) with the fetch command for a name not fetched.
inline std::string model_path(const std::string& source) {
    std::vector<char> out(4096);
    detail::check(limn_model_path(source.c_str(), out.data(), out.size()));
    return out.data();
}

// Chainable model options over limn_model_options.
class ModelOptions {
public:
    ModelOptions() { limn_model_options_init(&o_); }
    ModelOptions& device(std::string d) { device_ = std::move(d); return *this; }
    ModelOptions& precision(limn_precision p) { o_.precision = p; return *this; }
    ModelOptions& expected_kind(limn_model_kind k) { o_.expected_kind = k; return *this; }
    ModelOptions& fp32_fallback(bool on) { o_.fp32_fallback = on ? 1 : 0; return *this; }
    ModelOptions& warmup(bool on) { o_.warmup = on ? 1 : 0; return *this; }
    ModelOptions& channels_last(bool on) { o_.channels_last = on ? 1 : 0; return *this; }
    ModelOptions& cudnn_benchmark(bool on) { o_.cudnn_benchmark = on ? 1 : 0; return *this; }
    ModelOptions& max_pixels(uint64_t n) { o_.max_pixels = n; return *this; }
    ModelOptions& name(std::string n) { name_ = std::move(n); return *this; }
    // 64 hex digits the file must hash to (SHA-256); "" for no check.
    ModelOptions& expected_sha256(std::string hex) { sha256_ = std::move(hex); return *this; }

    // The C struct; valid while this object lives and is not modified.
    const limn_model_options* get() const {
        o_.device = device_.empty() ? nullptr : device_.c_str();
        o_.name = name_.empty() ? nullptr : name_.c_str();
        o_.expected_sha256 = sha256_.empty() ? nullptr : sha256_.c_str();
        return &o_;
    }

private:
    mutable limn_model_options o_;
    std::string device_;
    std::string name_;
    std::string sha256_;
};

// Chainable options for Model::detect_faces over limn_detect_faces_options.
class DetectFacesOptions {
public:
    DetectFacesOptions() { limn_detect_faces_options_init(&o_); }
    explicit DetectFacesOptions(const limn_detect_faces_options& o) : o_(o) {}  // a filled C struct
    DetectFacesOptions& score_threshold(float t) { o_.score_threshold = t; return *this; }
    DetectFacesOptions& nms_iou(float t) { o_.nms_iou = t; return *this; }
    DetectFacesOptions& max_faces(int32_t n) { o_.max_faces = n; return *this; }
    DetectFacesOptions& max_side(int32_t n) { o_.max_side = n; return *this; }
    // Device images (limn.h, "Device images"): "cuda" or "cuda:N", and the caller's cudaStream_t.
    DetectFacesOptions& images_device(std::string device) { images_device_ = std::move(device); return *this; }
    DetectFacesOptions& cuda_stream(void* stream) { o_.cuda_stream = stream; return *this; }
    const limn_detect_faces_options* get() const {
        o_.images_device = images_device_.empty() ? nullptr : images_device_.c_str();
        return &o_;
    }
    // Throws limn::Error naming a value the library would refuse (limn_detect_faces_options_check).
    void check() const { detail::check(limn_detect_faces_options_check(get())); }

private:
    mutable limn_detect_faces_options o_;
    std::string images_device_;
};

// An asynchronous call (Model::submit_*, over limn_*_submit), future-like. Move-only; destroying it
// does not wait (the job goes on; cancel() first to stop it).
class Job {
public:
    Job() = default;
    explicit Job(limn_job* job) : ptr_(job) {}
    bool valid() const { return ptr_ != nullptr; }
    // True once the job has ended and its completion has run.
    bool ready() const { return wait_for(std::chrono::milliseconds(0)); }
    bool wait_for(std::chrono::milliseconds timeout) const {
        limn_status status = LIMN_OK;
        const limn_status s = limn_job_wait(ptr_.get(), static_cast<int64_t>(timeout.count()), &status);
        if (s == LIMN_ERR_TIMEOUT) return false;
        detail::check(s);
        return true;
    }
    // Waits, then throws limn::Error if the job failed or was cancelled.
    void get() const {
        limn_status status = LIMN_OK;
        detail::check(limn_job_wait(ptr_.get(), -1, &status));
        if (status != LIMN_OK) throw Error(status, limn_job_message(ptr_.get()));
    }
    void cancel() const { detail::check(limn_job_cancel(ptr_.get())); }
    limn_job* handle() const { return ptr_.get(); }

private:
    struct Free {
        void operator()(limn_job* job) const { limn_job_free(job); }
    };
    std::unique_ptr<limn_job, Free> ptr_;
};

// Called once when a job ends, on a worker of the library's pool (see limn_job_callback).
using JobDone = std::function<void(limn_status status, const char* message)>;

namespace detail {
// What a submitted call needs until it ends: the options (whose progress function the library
// calls back into) and the caller's completion; freed by the completion.
template <typename Options>
struct JobState {
    Options options;
    JobDone done;

    static void finish(limn_status status, const char* message, void* self) {
        auto* state = static_cast<JobState*>(self);
        if (state->done) {
            try {
                state->done(status, message);
            } catch (...) {  // a completion cannot report to anyone: the worker goes on
            }
        }
        delete state;
    }
};

template <typename Options, typename Submit>
Job submit(const Options& options, JobDone done, Submit&& call) {
    auto* state = new JobState<Options>{options, std::move(done)};
    limn_job_options o;
    limn_job_options_init(&o);
    o.callback = &JobState<Options>::finish;
    o.user_data = state;
    limn_job* job = nullptr;
    const limn_status s = call(state->options, &o, &job);
    if (s != LIMN_OK) {  // no job was made: the completion will not run
        delete state;
        check(s);
    }
    return Job(job);
}
struct NoOptions {};
}  // namespace detail

class Model;

// Where a raw run's images are (limn_run_options; limn.h, "Device images").
class RunOptions {
public:
    RunOptions() { limn_run_options_init(&o_); }
    RunOptions& images_device(std::string device) { images_device_ = std::move(device); return *this; }
    RunOptions& cuda_stream(void* stream) { o_.cuda_stream = stream; return *this; }
    const limn_run_options* get() const {
        o_.images_device = images_device_.empty() ? nullptr : images_device_.c_str();
        return &o_;
    }

private:
    mutable limn_run_options o_;
    std::string images_device_;
};

// Chainable options for Model::cartoonize over limn_cartoonize_options. The progress function
// returns false to cancel; an exception thrown from it cancels too. Keep the object alive and
// unmodified while a call that uses it runs; models set here must outlive those calls.
class CartoonizeOptions {
public:
    using ProgressFn = std::function<bool(int32_t done, int32_t total)>;
    CartoonizeOptions() { limn_cartoonize_options_init(&o_); }
    CartoonizeOptions& strength(float s) { o_.strength = s; return *this; }
    CartoonizeOptions& max_side(int32_t n) { o_.max_side = n; return *this; }
    CartoonizeOptions& tile_size(int32_t n) { o_.tile_size = n; return *this; }
    CartoonizeOptions& memory_budget(uint64_t bytes) { o_.memory_budget = bytes; return *this; }
    CartoonizeOptions& timeout_ms(uint32_t ms) { o_.timeout_ms = ms; return *this; }
    CartoonizeOptions& progress(ProgressFn fn) { progress_ = std::move(fn); return *this; }
    // DCT-Net's compound stylization: each face through `head` (a cartoon model of role "head").
    inline CartoonizeOptions& head_model(const Model& head);
    // Finds the faces with `detector`, unless faces() gives them.
    inline CartoonizeOptions& detector(const Model& detector,
                                       const DetectFacesOptions& options = DetectFacesOptions());
    CartoonizeOptions& faces(std::vector<limn_face> faces) { faces_ = std::move(faces); return *this; }
    CartoonizeOptions& working_size(int32_t n) { o_.working_size = n; return *this; }
    CartoonizeOptions& feather(float f) { o_.feather = f; return *this; }
    // Device images (limn.h, "Device images"): "cuda" or "cuda:N", and the caller's cudaStream_t.
    CartoonizeOptions& images_device(std::string device) { images_device_ = std::move(device); return *this; }
    CartoonizeOptions& cuda_stream(void* stream) { o_.cuda_stream = stream; return *this; }

    const limn_cartoonize_options* get() const {
        o_.images_device = images_device_.empty() ? nullptr : images_device_.c_str();
        o_.progress = progress_ ? &detail::progress_trampoline : nullptr;
        o_.progress_user_data = progress_ ? const_cast<ProgressFn*>(&progress_) : nullptr;
        o_.detect_options = o_.detector ? detect_.get() : nullptr;
        o_.faces = faces_.empty() ? nullptr : faces_.data();
        o_.face_count = faces_.size();
        return &o_;
    }
    // Throws limn::Error naming a value the library would refuse (limn_cartoonize_options_check).
    void check() const { detail::check(limn_cartoonize_options_check(get())); }

private:
    mutable limn_cartoonize_options o_;
    ProgressFn progress_;
    DetectFacesOptions detect_;
    std::vector<limn_face> faces_;
    std::string images_device_;
};

// Chainable options for Model::restore_faces over limn_restore_faces_options. A detector set here
// must outlive the calls that use these options.
class RestoreFacesOptions {
public:
    using ProgressFn = std::function<bool(int32_t done, int32_t total)>;
    RestoreFacesOptions() { limn_restore_faces_options_init(&o_); }
    RestoreFacesOptions& strength(float s) { o_.strength = s; return *this; }
    RestoreFacesOptions& min_face_size(float px) { o_.min_face_size = px; return *this; }
    RestoreFacesOptions& feather(float f) { o_.feather = f; return *this; }
    RestoreFacesOptions& timeout_ms(uint32_t ms) { o_.timeout_ms = ms; return *this; }
    RestoreFacesOptions& progress(ProgressFn fn) { progress_ = std::move(fn); return *this; }
    // Finds the faces with `detector` when the call gives none.
    inline RestoreFacesOptions& detector(const Model& detector,
                                         const DetectFacesOptions& options = DetectFacesOptions());
    // Device images (limn.h, "Device images"): "cuda" or "cuda:N", and the caller's cudaStream_t.
    RestoreFacesOptions& images_device(std::string device) { images_device_ = std::move(device); return *this; }
    RestoreFacesOptions& cuda_stream(void* stream) { o_.cuda_stream = stream; return *this; }

    const limn_restore_faces_options* get() const {
        o_.images_device = images_device_.empty() ? nullptr : images_device_.c_str();
        o_.progress = progress_ ? &detail::progress_trampoline : nullptr;
        o_.progress_user_data = progress_ ? const_cast<ProgressFn*>(&progress_) : nullptr;
        o_.detect_options = o_.detector ? detect_.get() : nullptr;
        return &o_;
    }
    // Throws limn::Error naming a value the library would refuse (limn_restore_faces_options_check).
    void check() const { detail::check(limn_restore_faces_options_check(get())); }

private:
    mutable limn_restore_faces_options o_;
    ProgressFn progress_;
    DetectFacesOptions detect_;
    std::string images_device_;
};

class Model {
public:
    explicit Model(const std::string& path, const ModelOptions& options = ModelOptions()) {
        limn_model* m = nullptr;
        detail::check(limn_model_load(path.c_str(), options.get(), &m));
        ptr_.reset(m);
    }
    static Model from_memory(const void* data, size_t size, const ModelOptions& options = ModelOptions()) {
        limn_model* m = nullptr;
        detail::check(limn_model_load_from_memory(data, size, options.get(), &m));
        return Model(m);
    }

    limn_model_info info() const {
        limn_model_info i{};
        i.struct_size = sizeof i;
        detail::check(limn_model_get_info(get(), &i));
        return i;
    }

    void run(const limn_image& input, limn_image& output) const {
        detail::check(limn_model_run(get(), &input, &output));
    }
    // With options: device images (limn_model_run_with).
    void run(const limn_image& input, limn_image& output, const RunOptions& options) const {
        detail::check(limn_model_run_with(get(), &input, &output, 1, options.get()));
    }
    Image run(const limn_image& input, limn_pixel_format format) const {
        limn_image* out = nullptr;
        detail::check(limn_model_run_alloc(get(), &input, format, &out));
        return Image(out);
    }
    Image run(const limn_image& input) const { return run(input, input.format); }
    void run_batch(const std::vector<limn_image>& inputs, std::vector<limn_image>& outputs) const {
        if (inputs.size() != outputs.size()) {
            throw Error(LIMN_ERR_INVALID_ARGUMENT, "run_batch: inputs and outputs differ in count");
        }
        detail::check(limn_model_run_batch(get(), inputs.data(), outputs.data(), inputs.size()));
    }

    // The whole-photo cartoonize pipeline (limn_cartoonize); returns what it did.
    limn_pipeline_stats cartoonize(const limn_image& input, limn_image& output,
                                   const CartoonizeOptions& options = CartoonizeOptions()) const {
        limn_pipeline_stats stats{};
        stats.struct_size = sizeof stats;
        detail::check(limn_cartoonize(get(), &input, &output, options.get(), &stats));
        return stats;
    }

    // The restore-faces pipeline (limn_restore_faces); returns what it did.
    limn_pipeline_stats restore_faces(const limn_image& input, limn_image& output, const std::vector<limn_face>& faces,
                                      const RestoreFacesOptions& options = RestoreFacesOptions()) const {
        limn_pipeline_stats stats{};
        stats.struct_size = sizeof stats;
        detail::check(limn_restore_faces(get(), &input, &output, faces.data(), faces.size(), options.get(), &stats));
        return stats;
    }

    // Faces found by a face_detect model, best score first (limn_detect_faces).
    std::vector<limn_face> detect_faces(const limn_image& input,
                                        const DetectFacesOptions& options = DetectFacesOptions()) const {
        std::vector<limn_face> faces(16);
        size_t count = 0;
        detail::check(limn_detect_faces(get(), &input, options.get(), faces.data(), faces.size(), &count));
        if (count > faces.size()) {  // more than the first guess: run again with room for all
            faces.resize(count);
            detail::check(limn_detect_faces(get(), &input, options.get(), faces.data(), faces.size(), &count));
        }
        faces.resize(count < faces.size() ? count : faces.size());
        return faces;
    }

    // The asynchronous calls (limn_*_submit): they return at once; `input`, `output` (and `stats`,
    // `faces`, `count`) must stay valid until the job has ended. `done`, if given, is called once
    // on a pool worker when it has, and must not block (see limn.h).
    Job submit_run(const limn_image& input, limn_image& output, JobDone done = {}) const {
        return detail::submit(detail::NoOptions{}, std::move(done), [&](const detail::NoOptions&,
                                                                        const limn_job_options* o, limn_job** j) {
            return limn_model_run_submit(get(), &input, &output, o, j);
        });
    }
    Job submit_run(const limn_image& input, limn_image& output, const RunOptions& options, JobDone done = {}) const {
        return detail::submit(options, std::move(done), [&](const RunOptions& opts, const limn_job_options* o,
                                                            limn_job** j) {
            return limn_model_run_with_submit(get(), &input, &output, 1, opts.get(), o, j);
        });
    }
    Job submit_cartoonize(const limn_image& input, limn_image& output,
                          const CartoonizeOptions& options = CartoonizeOptions(), JobDone done = {},
                          limn_pipeline_stats* stats = nullptr) const {
        if (stats) stats->struct_size = sizeof *stats;
        return detail::submit(options, std::move(done), [&](const CartoonizeOptions& opts,
                                                            const limn_job_options* o, limn_job** j) {
            return limn_cartoonize_submit(get(), &input, &output, opts.get(), stats, o, j);
        });
    }
    Job submit_restore_faces(const limn_image& input, limn_image& output, const std::vector<limn_face>& faces,
                             const RestoreFacesOptions& options = RestoreFacesOptions(), JobDone done = {},
                             limn_pipeline_stats* stats = nullptr) const {
        if (stats) stats->struct_size = sizeof *stats;
        return detail::submit(options, std::move(done), [&](const RestoreFacesOptions& opts,
                                                            const limn_job_options* o, limn_job** j) {
            return limn_restore_faces_submit(get(), &input, &output, faces.data(), faces.size(), opts.get(), stats,
                                             o, j);
        });
    }
    // Writes up to `capacity` faces and the number found into *count.
    Job submit_detect_faces(const limn_image& input, limn_face* faces, size_t capacity, size_t* count,
                            const DetectFacesOptions& options = DetectFacesOptions(), JobDone done = {}) const {
        return detail::submit(options, std::move(done), [&](const DetectFacesOptions& opts,
                                                            const limn_job_options* o, limn_job** j) {
            return limn_detect_faces_submit(get(), &input, opts.get(), faces, capacity, count, o, j);
        });
    }

    // Frees the model (and its device memory) now; later calls throw.
    void close() noexcept { ptr_.reset(); }
    limn_model* get() const {
        if (!ptr_) throw Error(LIMN_ERR_INVALID_ARGUMENT, "model is closed");
        return ptr_.get();
    }

private:
    explicit Model(limn_model* m) : ptr_(m) {}
    struct Free {
        void operator()(limn_model* p) const noexcept { limn_model_free(p); }
    };
    std::unique_ptr<limn_model, Free> ptr_;
};

// A model prepared for a stream of frames of one size (limn_frames): once warm, a frame takes no
// memory from the system. Not copyable or movable (the library keeps pointers into the options).
class Frames {
public:
    Frames(const Model& model, int32_t width, int32_t height, limn_pixel_format format,
           const CartoonizeOptions& options = CartoonizeOptions())
        : options_(options) {
        limn_frames* f = nullptr;
        detail::check(limn_frames_create(model.get(), width, height, format, options_.get(), &f));
        ptr_.reset(f);
    }
    Frames(const Frames&) = delete;
    Frames& operator=(const Frames&) = delete;

    void run(const limn_image& input, limn_image& output) const {
        detail::check(limn_frames_run(ptr_.get(), &input, &output));
    }
    // As a job (see Model::submit_*): `input` and `output` must stay valid until it has ended.
    Job submit(const limn_image& input, limn_image& output, JobDone done = {}) const {
        return detail::submit(detail::NoOptions{}, std::move(done), [&](const detail::NoOptions&,
                                                                        const limn_job_options* o, limn_job** j) {
            return limn_frames_submit(ptr_.get(), &input, &output, o, j);
        });
    }
    limn_frames* get() const { return ptr_.get(); }

private:
    struct Free {
        void operator()(limn_frames* p) const noexcept { limn_frames_free(p); }
    };
    const CartoonizeOptions options_;  // its progress function is called through the frames
    std::unique_ptr<limn_frames, Free> ptr_;
};

inline CartoonizeOptions& CartoonizeOptions::head_model(const Model& head) {
    o_.head_model = head.get();
    return *this;
}

inline CartoonizeOptions& CartoonizeOptions::detector(const Model& detector, const DetectFacesOptions& options) {
    o_.detector = detector.get();
    detect_ = options;
    return *this;
}

inline RestoreFacesOptions& RestoreFacesOptions::detector(const Model& detector,
                                                          const DetectFacesOptions& options) {
    o_.detector = detector.get();
    detect_ = options;
    return *this;
}

}  // namespace limn

#endif  // LIMN_LIMN_HPP
