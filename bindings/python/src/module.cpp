// limn._limn: the Python extension over the C++ wrapper (limn.hpp) of the C ABI. It never sees
// LibTorch: what an engine links is what Python calls. The friendly API (exceptions, dataclasses,
// string options) is in limn/__init__.py; this module converts numpy arrays to limn_image views,
// releases the GIL around library work and turns limn::Error into the package's exceptions.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "limn/limn.hpp"

namespace py = pybind11;

namespace {

// ---- Errors ----------------------------------------------------------------------------------

// The exception class for each limn_status (by value, from the library's status table), set once
// by limn/__init__.py (kept for the process's life: the translator may run during interpreter
// shutdown).
std::vector<PyObject*> g_error_classes;

void set_error_classes(const std::vector<py::object>& classes) {
    if (classes.size() != limn::names(LIMN_NAMES_STATUS).size()) {
        throw py::value_error("expected one class per limn_status");
    }
    for (PyObject* old : g_error_classes) Py_XDECREF(old);
    g_error_classes.clear();
    for (const py::object& c : classes) {
        Py_INCREF(c.ptr());
        g_error_classes.push_back(c.ptr());
    }
}

PyObject* error_class(limn_status status) {
    const size_t s = static_cast<size_t>(status);
    return s > 0 && s < g_error_classes.size() ? g_error_classes[s] : PyExc_RuntimeError;
}

// Decoded defensively: limn's messages are valid UTF-8, but a caller's own text may not be.
py::str error_text(const char* message) {
    PyObject* text = PyUnicode_DecodeUTF8(message, static_cast<Py_ssize_t>(std::strlen(message)), "backslashreplace");
    if (!text) {
        PyErr_Clear();
        return py::str("(an error message that could not be decoded)");
    }
    return py::reinterpret_steal<py::str>(text);
}

void raise_status(limn_status status, const char* message) {
    PyErr_SetObject(error_class(status), error_text(message).ptr());
}

// The exception a failed job hands to its Python completion (not raised).
py::object status_error(limn_status status, const char* message) {
    return py::reinterpret_borrow<py::object>(error_class(status))(error_text(message));
}

[[noreturn]] void fail(limn_status status, const std::string& message) { throw limn::Error(status, message); }

// ---- Images ----------------------------------------------------------------------------------

// A numpy array seen as a limn_image: the caller's buffer when its layout allows (rows of packed
// pixels, any row stride), else a packed copy. `keep` holds whichever array the view points into.
struct ImageArg {
    limn_image image{};
    py::array keep;
    bool copied = false;
};

std::string shape_text(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// A PIL image in a mode limn can take as RGB or RGBA: converted (CMYK, YCbCr, HSV, LAB, grayscale,
// palette, RGBX, premultiplied alpha); other modes raise TypeError naming the mode. Anything else as it is.
py::object pil_as_rgb(const py::handle& obj, const char* what) {
    if (!py::hasattr(obj, "mode") || !py::hasattr(obj, "convert") || !py::hasattr(obj, "getbands")) {
        return py::reinterpret_borrow<py::object>(obj);
    }
    const std::string mode = py::str(obj.attr("mode"));
    if (mode == "RGB" || mode == "RGBA") return py::reinterpret_borrow<py::object>(obj);
    if (mode == "CMYK" || mode == "YCbCr" || mode == "HSV" || mode == "LAB" || mode == "L" || mode == "1" ||
        mode == "RGBX") {
        return obj.attr("convert")("RGB");
    }
    // Pillow converts premultiplied "La" to nothing but "LA".
    if (mode == "La") return obj.attr("convert")("LA").attr("convert")("RGBA");
    if (mode == "LA" || mode == "RGBa" || mode == "PA") return obj.attr("convert")("RGBA");
    if (mode == "P") {
        const bool alpha = py::bool_(obj.attr("info").attr("__contains__")("transparency"));
        return obj.attr("convert")(alpha ? "RGBA" : "RGB");
    }
    throw py::type_error(std::string(what) + " is a PIL image in mode '" + mode +
                         "', which limn does not take; convert it first, e.g. image.convert('RGB') (for 16-bit "
                         "or float modes scale the values to 0..255 first)");
}

// How to turn an array of `dtype` into limn's uint8 pixels.
std::string dtype_hint(const py::dtype& dtype) {
    const char kind = dtype.kind();
    if (kind == 'f') {
        return "; expected uint8: for values in 0..1 use (np.clip(x, 0, 1) * 255).round().astype(np.uint8), "
               "for 0..255 np.clip(x, 0, 255).round().astype(np.uint8)";
    }
    if (kind == 'u' && dtype.itemsize() == 2) {
        return "; expected uint8: for 16-bit pixels use (x >> 8).astype(np.uint8) (processing is 8-bit)";
    }
    if (kind == 'b') return "; expected uint8: for a mask use x.astype(np.uint8) * 255";
    return "; expected uint8 pixels (0..255), height x width x 3 or 4";
}

ImageArg image_arg(const py::handle& given, const char* what) {
    const py::object obj = pil_as_rgb(given, what);
    if (obj.is_none()) throw py::type_error(std::string(what) + " is None; expected a numpy uint8 array");
    const bool arrayish = py::isinstance<py::array>(obj) || py::hasattr(obj, "__array__") ||
                          py::hasattr(obj, "__array_interface__");
    const auto not_an_array = [&] {
        return py::type_error(std::string(what) + " must be a numpy array (uint8, height x width x 3 or 4), not " +
                              std::string(py::str(obj.get_type().attr("__name__"))));
    };
    if (!arrayish) throw not_an_array();
    py::array a = py::array::ensure(obj);  // null (with an error set) if it cannot convert
    if (!a) {
        PyErr_Clear();
        throw not_an_array();
    }
    if (!a.dtype().is(py::dtype::of<uint8_t>())) {
        throw py::type_error(std::string(what) + " has dtype " + std::string(py::str(a.dtype())) +
                             dtype_hint(a.dtype()));
    }
    if (a.ndim() != 3 || (a.shape(2) != 3 && a.shape(2) != 4)) {
        throw py::value_error(std::string(what) + " has shape " + shape_text(a) +
                              "; expected (height, width, 3) for RGB or (height, width, 4) for RGBA" +
                              (a.ndim() == 2 ? " (for grayscale use np.stack([g, g, g], axis=-1))" : ""));
    }
    const py::ssize_t h = a.shape(0), w = a.shape(1), c = a.shape(2);
    if (h < 1 || w < 1) throw py::value_error(std::string(what) + " is empty: shape " + shape_text(a));
    if (h > std::numeric_limits<int32_t>::max() || w > std::numeric_limits<int32_t>::max()) {
        throw py::value_error(std::string(what) + " is too large: shape " + shape_text(a));
    }
    ImageArg out;
    const bool packed_rows = a.strides(2) == 1 && a.strides(1) == c && a.strides(0) >= w * c;
    if (packed_rows) {
        out.keep = a;
    } else {
        out.keep = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(a);
        if (!out.keep) throw py::error_already_set();
        out.copied = true;
    }
    out.image.data = static_cast<uint8_t*>(const_cast<void*>(out.keep.data()));
    out.image.width = static_cast<int32_t>(w);
    out.image.height = static_cast<int32_t>(h);
    out.image.stride = static_cast<size_t>(out.keep.strides(0));
    out.image.format = c == 4 ? LIMN_PIXEL_RGBA8 : LIMN_PIXEL_RGB8;
    return out;
}

// A new array of `like`'s size and channels, and its limn_image view.
std::pair<py::array_t<uint8_t>, limn_image> new_image(const limn_image& like) {
    const int32_t c = limn_pixel_format_channels(like.format);
    py::array_t<uint8_t> a({static_cast<py::ssize_t>(like.height), static_cast<py::ssize_t>(like.width),
                            static_cast<py::ssize_t>(c)});
    limn_image v{a.mutable_data(), like.width, like.height, static_cast<size_t>(a.strides(0)), like.format};
    return {a, v};
}

// An image the library allocated (RGB8/RGBA8), copied into a new numpy array.
py::array_t<uint8_t> to_array(const limn::Image& img) {
    const int32_t c = limn_pixel_format_channels(img.format());
    py::array_t<uint8_t> a({static_cast<py::ssize_t>(img.height()), static_cast<py::ssize_t>(img.width()),
                            static_cast<py::ssize_t>(c)});
    const size_t row = static_cast<size_t>(img.width()) * c;
    for (int32_t y = 0; y < img.height(); ++y) {
        std::memcpy(a.mutable_data(y), img.data() + y * img.stride(), row);
    }
    return a;
}

py::dict describe_image(const py::handle& obj) {
    const ImageArg arg = image_arg(obj, "image");
    py::dict d;
    d["width"] = arg.image.width;
    d["height"] = arg.image.height;
    d["stride"] = arg.image.stride;
    d["channels"] = limn_pixel_format_channels(arg.image.format);
    d["copied"] = arg.copied;
    return d;
}

// The detection options of detect_faces, and of the pipelines that detect their own faces.
// A C options struct with the library's defaults.
template <typename T>
T options_init(limn_status (*init_sized)(T*, size_t)) {
    T o{};
    limn::detail::check(init_sized(&o, sizeof o));
    return o;
}

// ---- Progress callbacks ---------------------------------------------------------------------

// A Python callable progress(done, total): a false result (not None) cancels; an exception cancels
// and is re-raised to the caller in place of the cancellation.
struct Progress {
    py::object fn;
    std::exception_ptr error;

    static int32_t call(int32_t done, int32_t total, void* user) {
        auto* self = static_cast<Progress*>(user);
        py::gil_scoped_acquire gil;
        try {
            const py::object r = self->fn(done, total);
            if (r.is_none()) return 0;
            const int truth = PyObject_IsTrue(r.ptr());
            if (truth < 0) throw py::error_already_set();
            return truth ? 0 : 1;
        } catch (...) {
            self->error = std::current_exception();
            return 1;
        }
    }
};

std::unique_ptr<Progress> progress_arg(const py::object& fn) {
    if (fn.is_none()) return nullptr;
    if (!PyCallable_Check(fn.ptr())) throw py::type_error("progress must be callable as progress(done, total)");
    auto p = std::make_unique<Progress>();
    p->fn = fn;
    return p;
}

// Runs `work` without the GIL; an exception raised by the progress callback wins over the
// cancellation it caused.
template <typename F>
void without_gil(const Progress* progress, F&& work) {
    try {
        py::gil_scoped_release nogil;
        work();
    } catch (const limn::Error&) {
        if (progress && progress->error) std::rethrow_exception(progress->error);
        throw;
    }
}

py::dict stats_dict(const limn_pipeline_stats& s) {
    py::dict d;
    d["tile_size"] = s.tile_size;
    d["tiles"] = s.tiles;
    d["oom_retries"] = s.oom_retries;
    d["width"] = s.width;
    d["height"] = s.height;
    d["faces"] = s.faces;
    d["faces_found"] = s.faces_found;
    d["faces_skipped"] = s.faces_skipped;
    d["seconds"] = s.seconds;
    return d;
}

// Faces as float32 [F, 15]: x0, y0, x1, y1, score, then (x, y) of the 5 landmarks.
constexpr py::ssize_t kFaceColumns = 15;

py::array_t<float> faces_to_array(const std::vector<limn_face>& faces) {
    py::array_t<float> a({static_cast<py::ssize_t>(faces.size()), kFaceColumns});
    for (size_t i = 0; i < faces.size(); ++i) {
        float* row = a.mutable_data(static_cast<py::ssize_t>(i));
        std::memcpy(row, faces[i].box, sizeof faces[i].box);
        row[4] = faces[i].score;
        std::memcpy(row + 5, faces[i].landmarks, sizeof faces[i].landmarks);
    }
    return a;
}

std::vector<limn_face> faces_from_array(const py::handle& obj) {
    const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(obj);
    if (!a || a.ndim() != 2 || a.shape(1) != kFaceColumns) {
        PyErr_Clear();
        throw py::value_error("faces must be a float array of shape (faces, 15)");
    }
    std::vector<limn_face> faces(static_cast<size_t>(a.shape(0)));
    for (size_t i = 0; i < faces.size(); ++i) {
        const float* row = a.data(static_cast<py::ssize_t>(i));
        std::memcpy(faces[i].box, row, sizeof faces[i].box);
        faces[i].score = row[4];
        std::memcpy(faces[i].landmarks, row + 5, sizeof faces[i].landmarks);
    }
    return faces;
}

// ---- Model -----------------------------------------------------------------------------------

// ---- Calls and jobs ---------------------------------------------------------------------------

// The most faces one detection returns here (the detector keeps at most 5000 candidates).
constexpr size_t kMaxFaces = 5000;

// One call of a model: the handles it uses, its arrays and options (which the library reads
// through pointers until the call returns, or until a submitted job ends), how to call the library
// (job options NULL: synchronously) and what builds the Python result. It owns Python objects, so
// it is destroyed with the GIL held.
struct Call {
    explicit Call(std::shared_ptr<limn::Model> m) : model(std::move(m)) { stats.struct_size = sizeof stats; }
    std::shared_ptr<limn::Model> model;
    std::vector<std::shared_ptr<limn::Model>> others;  // a head model, a detector
    ImageArg in;
    std::pair<py::array_t<uint8_t>, limn_image> out;
    std::vector<limn_face> faces;
    size_t face_count = 0;
    limn_cartoonize_options cartoonize{};
    limn_restore_faces_options restore{};
    limn_detect_faces_options detect{};
    limn_pipeline_stats stats{};
    std::unique_ptr<Progress> progress;
    std::function<limn_status(Call&, const limn_job_options*, limn_job**)> invoke;
    std::function<py::object(Call&)> result;
    py::object done;  // a submitted call's done(result, error)
};

bool python_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

// A submitted call's end, on a pool worker: done(result, None) or done(None, exception), with the
// GIL taken. An exception done raises is reported as unraisable (no one is there to catch it).
void finish_call(limn_status status, const char* message, void* user) {
    if (!Py_IsInitialized() || python_finalizing()) return;  // too late for Python: the call is left
    py::gil_scoped_acquire gil;
    std::unique_ptr<Call> call(static_cast<Call*>(user));
    try {
        py::object result = py::none(), error = py::none();
        if (status == LIMN_OK) {
            result = call->result(*call);
        } else if (call->progress && call->progress->error) {  // the progress callback's own exception
            try {
                std::rethrow_exception(call->progress->error);
            } catch (py::error_already_set& e) {
                error = e.value();
            } catch (...) {
                error = status_error(status, message);
            }
        } else {
            error = status_error(status, message);
        }
        call->done(result, error);
    } catch (py::error_already_set& e) {
        e.discard_as_unraisable("limn: a job's completion");
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        PyErr_WriteUnraisable(nullptr);
    }
}

// A submitted call (limn_job), as _limn.Job; the package's Future waits on its completion.
class PyJob {
public:
    explicit PyJob(limn_job* job) : job_(job, Free()) {}
    void cancel() const { limn::detail::check(limn_job_cancel(job_.get())); }

private:
    struct Free {
        void operator()(limn_job* job) const { limn_job_free(job); }
    };
    std::shared_ptr<limn_job> job_;
};

// Runs a prepared call: at once when `done` is None (the GIL released while the library works;
// returns the result), else as a job whose done(result, error) runs on a pool worker (returns a
// Job). The submit itself holds the GIL, so the completion cannot run before it has returned.
py::object start(std::unique_ptr<Call> call, const py::object& done) {
    if (done.is_none()) {
        without_gil(call->progress.get(), [&] { limn::detail::check(call->invoke(*call, nullptr, nullptr)); });
        return call->result(*call);
    }
    if (!PyCallable_Check(done.ptr())) throw py::type_error("done must be callable as done(result, error)");
    call->done = done;
    limn_job_options jo;
    limn::detail::check(limn_job_options_init(&jo));
    jo.callback = &finish_call;
    jo.user_data = call.get();
    limn_job* job = nullptr;
    limn::detail::check(call->invoke(*call, &jo, &job));
    call->model.reset();  // the job holds the models now: closing one cancels it
    call->others.clear();
    call.release();  // finish_call frees it
    return py::cast(PyJob(job));
}

// A model handle shared by the calls in flight: close() drops the handle's reference, so the model
// (and its device memory) is freed at once, or when the last running call returns.
class PyModel {
public:
    PyModel(const py::object& source, const std::string& device, int precision, int expected_kind,
            int fp32_fallback, bool warmup, int channels_last, int cudnn_benchmark, uint64_t max_pixels,
            const std::string& name, const std::string& expected_sha256) {
        limn::ModelOptions options;
        options.device(device)
            .precision(static_cast<limn_precision>(precision))
            .expected_kind(static_cast<limn_model_kind>(expected_kind))
            .warmup(warmup)
            .max_pixels(max_pixels);
        if (!name.empty()) options.name(name);
        if (!expected_sha256.empty()) options.expected_sha256(expected_sha256);
        if (fp32_fallback >= 0) options.fp32_fallback(fp32_fallback != 0);
        if (channels_last >= 0) options.channels_last(channels_last != 0);
        if (cudnn_benchmark >= 0) options.cudnn_benchmark(cudnn_benchmark != 0);
        if (PyObject_CheckBuffer(source.ptr())) {
            const py::buffer_info bytes = py::reinterpret_borrow<py::buffer>(source).request();
            const size_t size = static_cast<size_t>(bytes.size * bytes.itemsize);
            origin_ = name.empty() ? "<memory>" : name;
            py::gil_scoped_release nogil;
            model_ = std::make_shared<limn::Model>(limn::Model::from_memory(bytes.ptr, size, options));
        } else {
            const std::string path = py::str(source);
            origin_ = path;
            py::gil_scoped_release nogil;
            model_ = std::make_shared<limn::Model>(path, options);
        }
    }

    std::shared_ptr<limn::Model> acquire() const {
        if (!model_) fail(LIMN_ERR_INVALID_ARGUMENT, "model '" + origin_ + "' is closed");
        return model_;
    }
    void close() {
        std::shared_ptr<limn::Model> model;
        model.swap(model_);
        py::gil_scoped_release nogil;  // a CUDA model's free waits for calls queued on callers' streams
        model.reset();
    }
    bool closed() const { return !model_; }
    const std::string& origin() const { return origin_; }

    py::dict info() const {
        const limn_model_info i = acquire()->info();
        py::dict d;
        d["kind"] = static_cast<int>(i.kind);
        d["format_version"] = i.format_version;
        d["name"] = std::string(i.name);
        d["device"] = std::string(i.device);
        d["precision"] = static_cast<int>(i.precision);
        d["size_multiple"] = i.size_multiple;
        d["fixed_width"] = i.fixed_width;
        d["fixed_height"] = i.fixed_height;
        d["tile_margin"] = i.tile_margin;
        py::list tmpl;
        if (i.has_face_template) {
            for (float v : i.face_template) tmpl.append(v);
        }
        d["face_template"] = tmpl;
        d["source"] = std::string(i.source);
        d["license"] = std::string(i.license);
        d["file_format"] = std::string(i.format);
        d["precision_note"] = std::string(i.precision_note);
        d["role"] = std::string(i.role);
        d["crop_size"] = i.crop_size;
        return d;
    }

    py::object run(const py::handle& image) const { return start(prepare_run(image), py::none()); }
    py::object run_submit(const py::handle& image, const py::object& done) const {
        return start(prepare_run(image), done);
    }

    py::list run_batch(const py::sequence& images) const {
        const auto model = acquire();
        std::vector<ImageArg> args;
        std::vector<limn_image> inputs, outputs;
        py::list result;
        for (size_t i = 0; i < images.size(); ++i) {
            args.push_back(image_arg(images[i], ("images[" + std::to_string(i) + "]").c_str()));
            inputs.push_back(args.back().image);
            auto out = new_image(args.back().image);
            result.append(out.first);
            outputs.push_back(out.second);
        }
        if (inputs.empty()) throw py::value_error("images is empty");
        without_gil(nullptr, [&] { model->run_batch(inputs, outputs); });
        return result;
    }

    // `options` (the C struct, its plain fields set by the package) gets the models, faces and
    // progress here, which the struct holds only as pointers. Returns (image, stats).
    py::object cartoonize(const py::handle& image, const limn_cartoonize_options& options, const py::object& progress,
                          const PyModel* head_model, const py::object& faces, const PyModel* detector,
                          const limn_detect_faces_options& detect) const {
        return start(prepare_cartoonize(image, options, progress, head_model, faces, detector, detect), py::none());
    }
    py::object cartoonize_submit(const py::handle& image, const limn_cartoonize_options& options,
                                 const py::object& progress, const PyModel* head_model, const py::object& faces,
                                 const PyModel* detector, const limn_detect_faces_options& detect,
                                 const py::object& done) const {
        return start(prepare_cartoonize(image, options, progress, head_model, faces, detector, detect), done);
    }

    // The faces as float32 [F, 15] (see faces_to_array).
    py::object detect_faces(const py::handle& image, const limn_detect_faces_options& options) const {
        return start(prepare_detect_faces(image, options), py::none());
    }
    py::object detect_faces_submit(const py::handle& image, const limn_detect_faces_options& options,
                                   const py::object& done) const {
        return start(prepare_detect_faces(image, options), done);
    }

    // Returns (image, stats).
    py::object restore_faces(const py::handle& image, const py::object& faces, const PyModel* detector,
                             const limn_detect_faces_options& detect, const limn_restore_faces_options& options,
                             const py::object& progress) const {
        return start(prepare_restore_faces(image, faces, detector, detect, options, progress), py::none());
    }
    py::object restore_faces_submit(const py::handle& image, const py::object& faces, const PyModel* detector,
                                    const limn_detect_faces_options& detect, const limn_restore_faces_options& options,
                                    const py::object& progress, const py::object& done) const {
        return start(prepare_restore_faces(image, faces, detector, detect, options, progress), done);
    }

private:
    // What both pipelines' options hold as pointers into the call: the detector with its options,
    // and the progress callback.
    template <typename Options>
    static void wire(Call& c, Options& o, const PyModel* detector) {
        o.detector = detector ? detector->acquire()->get() : nullptr;
        o.detect_options = detector ? &c.detect : nullptr;
        if (c.progress) {
            o.progress = &Progress::call;
            o.progress_user_data = c.progress.get();
        }
    }

    // One call's arguments as the library takes them, made with the GIL held, and what builds its
    // result; the same for a synchronous call and a submitted one.
    std::unique_ptr<Call> prepare_run(const py::handle& image) const {
        auto c = std::make_unique<Call>(acquire());
        c->in = image_arg(image, "image");
        c->out = new_image(c->in.image);
        c->invoke = [](Call& c, const limn_job_options* jo, limn_job** job) {
            return jo ? limn_model_run_submit(c.model->get(), &c.in.image, &c.out.second, jo, job)
                      : limn_model_run(c.model->get(), &c.in.image, &c.out.second);
        };
        c->result = [](Call& c) -> py::object { return c.out.first; };
        return c;
    }

    std::unique_ptr<Call> prepare_cartoonize(const py::handle& image, const limn_cartoonize_options& options,
                                             const py::object& progress, const PyModel* head_model,
                                             const py::object& faces, const PyModel* detector,
                                             const limn_detect_faces_options& detect) const {
        auto c = std::make_unique<Call>(acquire());
        if (head_model) c->others.push_back(head_model->acquire());
        if (detector) c->others.push_back(detector->acquire());
        c->in = image_arg(image, "image");
        c->out = new_image(c->in.image);
        c->progress = progress_arg(progress);
        if (!faces.is_none()) c->faces = faces_from_array(faces);
        c->detect = detect;
        c->cartoonize = options;
        limn_cartoonize_options& o = c->cartoonize;
        o.head_model = head_model ? head_model->acquire()->get() : nullptr;
        o.faces = c->faces.empty() ? nullptr : c->faces.data();
        o.face_count = c->faces.size();
        wire(*c, o, detector);
        c->invoke = [](Call& c, const limn_job_options* jo, limn_job** job) {
            return jo ? limn_cartoonize_submit(c.model->get(), &c.in.image, &c.out.second, &c.cartoonize, &c.stats,
                                               jo, job)
                      : limn_cartoonize(c.model->get(), &c.in.image, &c.out.second, &c.cartoonize, &c.stats);
        };
        c->result = [](Call& c) -> py::object { return py::make_tuple(c.out.first, stats_dict(c.stats)); };
        return c;
    }

    std::unique_ptr<Call> prepare_detect_faces(const py::handle& image,
                                               const limn_detect_faces_options& options) const {
        auto c = std::make_unique<Call>(acquire());
        c->in = image_arg(image, "image");
        c->detect = options;
        c->faces.resize(kMaxFaces);
        c->invoke = [](Call& c, const limn_job_options* jo, limn_job** job) {
            return jo ? limn_detect_faces_submit(c.model->get(), &c.in.image, &c.detect, c.faces.data(),
                                                 c.faces.size(), &c.face_count, jo, job)
                      : limn_detect_faces(c.model->get(), &c.in.image, &c.detect, c.faces.data(), c.faces.size(),
                                          &c.face_count);
        };
        c->result = [](Call& c) -> py::object {
            c.faces.resize(std::min(c.face_count, c.faces.size()));
            return faces_to_array(c.faces);
        };
        return c;
    }

    std::unique_ptr<Call> prepare_restore_faces(const py::handle& image, const py::object& faces,
                                                const PyModel* detector, const limn_detect_faces_options& detect,
                                                const limn_restore_faces_options& options,
                                                const py::object& progress) const {
        auto c = std::make_unique<Call>(acquire());
        if (detector) c->others.push_back(detector->acquire());
        c->in = image_arg(image, "image");
        if (!faces.is_none()) c->faces = faces_from_array(faces);
        c->out = new_image(c->in.image);
        c->progress = progress_arg(progress);
        c->detect = detect;
        c->restore = options;
        wire(*c, c->restore, detector);
        c->invoke = [](Call& c, const limn_job_options* jo, limn_job** job) {
            return jo ? limn_restore_faces_submit(c.model->get(), &c.in.image, &c.out.second, c.faces.data(),
                                                  c.faces.size(), &c.restore, &c.stats, jo, job)
                      : limn_restore_faces(c.model->get(), &c.in.image, &c.out.second, c.faces.data(),
                                           c.faces.size(), &c.restore, &c.stats);
        };
        c->result = [](Call& c) -> py::object { return py::make_tuple(c.out.first, stats_dict(c.stats)); };
        return c;
    }

private:
    std::shared_ptr<limn::Model> model_;
    std::string origin_;
};

// ---- Devices, memory, image files ------------------------------------------------------------

py::list devices() {
    std::vector<limn_device_info> found;
    {
        py::gil_scoped_release nogil;
        found = limn::devices();
    }
    py::list out;
    for (const limn_device_info& d : found) {
        py::dict e;
        e["type"] = d.type == LIMN_DEVICE_CUDA ? "cuda" : "cpu";
        e["index"] = d.index;
        e["id"] = std::string(d.id);
        e["name"] = std::string(d.name);
        e["total_memory"] = d.total_memory;
        e["free_memory"] = d.free_memory;
        e["compute_capability"] = d.compute_capability;
        e["multiprocessors"] = d.multiprocessors;
        e["native_precisions"] = std::string(d.native_precisions);
        e["auto_precision"] = std::string(d.auto_precision);
        out.append(e);
    }
    return out;
}

py::dict memory_stats(const std::string& device) {
    const limn_memory_stats s = limn::memory_stats(device);
    py::dict d;
    d["allocated"] = s.allocated;
    d["reserved"] = s.reserved;
    d["peak_allocated"] = s.peak_allocated;
    d["peak_reserved"] = s.peak_reserved;
    d["limit"] = s.limit;
    d["device_total"] = s.device_total;
    d["device_free"] = s.device_free;
    d["cached"] = s.cached;
    d["allocations"] = s.allocations;
    return d;
}

// An image file given as encoded bytes (any buffer) or as a path: from_memory(data, size) or
// from_path(path), with the GIL released.
template <typename Memory, typename Path>
auto from_file_source(const py::object& source, Memory&& from_memory, Path&& from_path) {
    if (PyObject_CheckBuffer(source.ptr())) {
        const py::buffer_info bytes = py::reinterpret_borrow<py::buffer>(source).request();
        const size_t size = static_cast<size_t>(bytes.size * bytes.itemsize);
        py::gil_scoped_release nogil;
        return from_memory(bytes.ptr, size);
    }
    const std::string path = py::str(source);
    py::gil_scoped_release nogil;
    return from_path(path);
}

py::array_t<uint8_t> load_image(const py::object& source, int format, bool apply_orientation,
                                uint64_t max_pixels) {
    const auto fmt = static_cast<limn_pixel_format>(format);
    const limn::Image img = from_file_source(
        source,
        [&](const void* data, size_t size) {
            return limn::load_image_from_memory(data, size, fmt, max_pixels, apply_orientation);
        },
        [&](const std::string& path) { return limn::load_image(path, fmt, max_pixels, apply_orientation); });
    return to_array(img);
}

std::vector<uint8_t> bytes_arg(const py::object& value) {
    if (value.is_none()) return {};
    const std::string s = py::bytes(value);
    return std::vector<uint8_t>(s.begin(), s.end());
}

void save_image(const std::string& path, const py::handle& image, int file_format, int quality,
                const py::object& icc_profile) {
    const ImageArg in = image_arg(image, "image");
    const std::vector<uint8_t> icc = bytes_arg(icc_profile);
    py::gil_scoped_release nogil;
    limn::save_image(path, in.image, quality, static_cast<limn_file_format>(file_format), icc);
}

void write_file(const std::string& path, const py::object& data) {
    const std::vector<uint8_t> bytes = bytes_arg(data);
    py::gil_scoped_release nogil;
    limn::write_file(path, bytes);
}

py::bytes encode_image(const py::handle& image, int file_format, int quality, const py::object& icc_profile) {
    const ImageArg in = image_arg(image, "image");
    const std::vector<uint8_t> icc = bytes_arg(icc_profile);
    std::vector<uint8_t> data;
    {
        py::gil_scoped_release nogil;
        data = limn::encode_image(in.image, static_cast<limn_file_format>(file_format), quality, icc);
    }
    return py::bytes(reinterpret_cast<const char*>(data.data()), data.size());
}

// The profile embedded in a file (a path) or in encoded bytes (a buffer); None without one.
py::object read_icc_profile(const py::object& source) {
    const std::vector<uint8_t> profile = from_file_source(
        source, [](const void* data, size_t size) { return limn::read_icc_profile_from_memory(data, size); },
        [](const std::string& path) { return limn::read_icc_profile(path); });
    if (profile.empty()) return py::none();
    return py::bytes(reinterpret_cast<const char*>(profile.data()), profile.size());
}

// The defaults of the C options structs that are not bound as classes below (image files, model
// loading), as their init functions set them: the Python signatures take theirs from here and from
// those classes, so each default is written once, in the library.
py::dict defaults() {
    py::dict d;
    limn_image_load_options load;
    limn_image_load_options_init(&load);
    d["max_pixels"] = load.max_pixels;
    limn_image_save_options save;
    limn_image_save_options_init(&save);
    d["quality"] = save.jpeg_quality;
    limn_model_options mo;
    limn_model_options_init(&mo);
    d["model_max_pixels"] = mo.max_pixels;
    return d;
}

// The library's name tables: {"precision": {"auto": 0, ...}, "status": {...}, ...}.
py::dict names() {
    py::dict out;
    for (const auto& [table, id] : limn::names(LIMN_NAMES_TABLES)) {
        py::dict entries;
        for (const auto& [name, value] : limn::names(static_cast<limn_name_table>(id))) entries[py::str(name)] = value;
        out[py::str(table)] = entries;
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_limn, m) {
    m.doc() = "Low-level bindings of the limn C ABI; use the `limn` package instead.";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const limn::Error& e) {
            raise_status(e.status(), e.what());
        }
    });
    m.def("_set_error_classes", &set_error_classes, py::arg("classes"));
    m.def("version", &limn::version);
    m.def("build_info", &limn::build_info);
    m.def("cuda_available", &limn::cuda_available);
    m.def("devices", &devices);
    m.def("resolve_device", &limn::resolve_device, py::arg("device"));
    m.def("set_memory_limit", &limn::set_memory_limit, py::arg("device"), py::arg("bytes"));
    m.def("release_cached_memory", &limn::release_cached_memory, py::arg("device"));
    m.def("reset_peak_memory", &limn::reset_peak_memory, py::arg("device"));
    m.def("memory_stats", &memory_stats, py::arg("device"));
    m.def("load_image", &load_image, py::arg("source"), py::arg("format"), py::arg("apply_orientation"),
          py::arg("max_pixels"));
    m.def("save_image", &save_image, py::arg("path"), py::arg("image"), py::arg("file_format"),
          py::arg("quality"), py::arg("icc_profile").none(true));
    m.def("encode_image", &encode_image, py::arg("image"), py::arg("file_format"), py::arg("quality"),
          py::arg("icc_profile").none(true));
    m.def("read_icc_profile", &read_icc_profile, py::arg("source"));
    m.def("write_file", &write_file, py::arg("path"), py::arg("data"));
    m.def("defaults", &defaults);
    m.def("names", &names);
    m.def("model_path", &limn::model_path, py::arg("source"));
    m.def("describe_image", &describe_image, py::arg("image"));

    // The pipelines' C options structs as Python objects made with the library's defaults (their
    // *_options_init); each number field limn.h lists (LIMN_*_OPTIONS_NUMBERS) is an attribute of
    // the same name, and `_fields` names them in order. The package sets them from its keywords.
#define LIMN_PY_FIELD(field) cls.def_readwrite(#field, &Options::field);
#define LIMN_PY_FIELD_NAME(field) #field,
#define LIMN_PY_OPTIONS(Type, python_name, NUMBERS)                                   \
    {                                                                                 \
        using Options = Type;                                                         \
        py::class_<Options> cls(m, python_name);                                      \
        cls.def(py::init([] { return options_init<Options>(Type##_init_sized); }));   \
        NUMBERS(LIMN_PY_FIELD)                                                        \
        static const char* const fields[] = {NUMBERS(LIMN_PY_FIELD_NAME)};            \
        py::tuple names(std::size(fields));                                           \
        for (size_t i = 0; i < std::size(fields); ++i) names[i] = py::str(fields[i]); \
        cls.attr("_fields") = names;                                                  \
    }
    LIMN_PY_OPTIONS(limn_cartoonize_options, "CartoonizeOptions", LIMN_CARTOONIZE_OPTIONS_NUMBERS)
    LIMN_PY_OPTIONS(limn_detect_faces_options, "DetectFacesOptions", LIMN_DETECT_FACES_OPTIONS_NUMBERS)
    LIMN_PY_OPTIONS(limn_restore_faces_options, "RestoreFacesOptions", LIMN_RESTORE_FACES_OPTIONS_NUMBERS)
#undef LIMN_PY_OPTIONS
#undef LIMN_PY_FIELD
#undef LIMN_PY_FIELD_NAME

    py::class_<PyJob>(m, "Job")
        .def("cancel", &PyJob::cancel);
    m.def("jobs_start", [](int32_t workers) { limn::detail::check(limn_jobs_start(workers)); }, py::arg("workers"));
    m.def(
        "jobs_shutdown",
        [] {
            py::gil_scoped_release nogil;  // the jobs' completions take the GIL
            limn::detail::check(limn_jobs_shutdown());
        });

    py::class_<PyModel>(m, "Model")
        .def(py::init<const py::object&, const std::string&, int, int, int, bool, int, int, uint64_t,
                      const std::string&, const std::string&>(),
             py::arg("source"), py::arg("device"), py::arg("precision"), py::arg("expected_kind"),
             py::arg("fp32_fallback"), py::arg("warmup"), py::arg("channels_last"), py::arg("cudnn_benchmark"),
             py::arg("max_pixels"), py::arg("name"), py::arg("expected_sha256"))
        .def("info", &PyModel::info)
        .def("run", &PyModel::run, py::arg("image"))
        .def("run_batch", &PyModel::run_batch, py::arg("images"))
        .def("cartoonize", &PyModel::cartoonize, py::arg("image"), py::arg("options"), py::arg("progress"),
             py::arg("head_model").none(true), py::arg("faces"), py::arg("detector").none(true),
             py::arg("detect_options"))
        .def("detect_faces", &PyModel::detect_faces, py::arg("image"), py::arg("options"))
        .def("restore_faces", &PyModel::restore_faces, py::arg("image"), py::arg("faces"),
             py::arg("detector").none(true), py::arg("detect_options"), py::arg("options"), py::arg("progress"))
        // The same calls submitted as jobs: each returns a Job at once and ends with done(result, error).
        .def("run_submit", &PyModel::run_submit, py::arg("image"), py::arg("done"))
        .def("cartoonize_submit", &PyModel::cartoonize_submit, py::arg("image"), py::arg("options"),
             py::arg("progress"), py::arg("head_model").none(true), py::arg("faces"),
             py::arg("detector").none(true), py::arg("detect_options"), py::arg("done"))
        .def("detect_faces_submit", &PyModel::detect_faces_submit, py::arg("image"), py::arg("options"),
             py::arg("done"))
        .def("restore_faces_submit", &PyModel::restore_faces_submit, py::arg("image"), py::arg("faces"),
             py::arg("detector").none(true), py::arg("detect_options"), py::arg("options"), py::arg("progress"),
             py::arg("done"))
        .def("close", &PyModel::close)
        .def_property_readonly("closed", &PyModel::closed)
        .def_property_readonly("origin", &PyModel::origin);
}
