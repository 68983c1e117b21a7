// libFuzzer target: the argument space of the C API (limn.h only, against liblimn.so), as a careless
// or hostile caller fills it: options structs of random bytes with a random struct_size, enum
// values out of range, NULLs, odd image descriptions (sizes <= 0, short or overflowing strides,
// unknown or misaligned float formats), faces anywhere, device strings of any kind, progress
// callbacks that cancel, tiny memory limits, passed to every entry point against the tiny fixture
// models ($LIMN_TEST_FIXTURES; without it the model calls get NULL models). Each call must succeed
// or return a status with a message, leaving its out-parameters untouched; crashes, hangs and
// sanitizer reports are bugs.
//
// The harness keeps the contract a C caller cannot be checked on: every pointer points at memory
// of the size its description says (an image's data holds (height - 1) * stride + width * bytes
// per pixel bytes, unless that span exceeds PTRDIFF_MAX, which limn must refuse), and strings are
// NUL-terminated. Pointer fields inside options structs are set to valid values or NULL after the
// random fill (and cuda_stream, which limn cannot check without CUDA, to a non-stream only with
// the fixtures' CPU models, which refuse any stream first). Only the public API and struct_size
// are used, so the harness stays source-compatible as options grow.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "limn/limn.h"

namespace {

// Reads the fuzz input front to back; zeros once it runs out.
class Input {
public:
    Input(const uint8_t* data, size_t size) : p_(data), n_(size) {}
    bool empty() const { return n_ == 0; }
    uint8_t byte() {
        if (n_ == 0) return 0;
        --n_;
        return *p_++;
    }
    void fill(void* out, size_t size) {
        auto* o = static_cast<uint8_t*>(out);
        for (size_t i = 0; i < size; ++i) o[i] = byte();
    }
    template <typename T>
    T get() {
        T v;
        fill(&v, sizeof v);
        return v;
    }
    size_t below(size_t k) { return k ? get<uint16_t>() % k : 0; }
    bool flag() { return byte() & 1; }

private:
    const uint8_t* p_;
    size_t n_;
};

struct Models {
    limn_model* cartoon = nullptr;
    limn_model* face = nullptr;
    limn_model* detect = nullptr;
    limn_model* head = nullptr;
    std::string small_file;  // bytes of a small model, for limn_model_load_from_memory
};

Models& models() {
    static Models m;
    return m;
}

std::string& scratch_dir() {
    static std::string dir;
    return dir;
}

limn_model* load_fixture(const std::string& dir, const char* name) {
    limn_model_options o;
    limn_model_options_init(&o);
    o.device = "cpu";
    o.precision = LIMN_PRECISION_FP32;
    limn_model* m = nullptr;
    if (limn_model_load((dir + "/" + name).c_str(), &o, &m) != LIMN_OK) return nullptr;
    return m;
}

// A model to pass: one of the fixtures (maybe of the wrong kind) or NULL.
limn_model* pick_model(Input& in) {
    Models& m = models();
    limn_model* all[] = {m.cartoon, m.face, m.detect, m.head, nullptr};
    return all[in.below(5)];
}

// The struct_size a caller might set: the right one, none, too small, partial, or larger.
size_t pick_struct_size(Input& in, size_t right) {
    switch (in.below(8)) {
        case 0: return 0;
        case 1: return in.below(sizeof(size_t) + 1);
        case 2: return in.below(right + 1);
        case 3: return right + 1 + in.below(64);
        case 4: return in.get<size_t>();
        default: return right;
    }
}

// A caller's struct, with room past it: a struct_size larger than ours (a newer limn.h) is then
// the caller's truth, and the library reads and zeroes those bytes. The room starts zeroed.
template <typename T>
struct Padded {
    T s;
    uint8_t room[4096];
};

// Random bytes, a random struct_size, then the fields that must be pointers made valid or NULL.
template <typename T>
void fuzz_struct(Input& in, T& s) {
    in.fill(&s, sizeof s);
    s.struct_size = pick_struct_size(in, sizeof s);
}

// Starts from the defaults now and then, so that deeper paths are reached with valid options.
template <typename T, typename Init>
void fuzz_options(Input& in, T& s, Init init) {
    if (in.below(3) == 0) {
        init(&s);
        // A field or two changed.
        const size_t k = in.below(3);
        for (size_t i = 0; i < k; ++i) {
            const size_t at = sizeof(size_t) + in.below(sizeof s - sizeof(size_t));
            reinterpret_cast<uint8_t*>(&s)[at] = in.byte();
        }
    } else {
        fuzz_struct(in, s);
    }
}

const char* pick_device(Input& in, std::string& storage) {
    static const char* const fixed[] = {
        nullptr, "cpu", "auto", "cuda", "cuda:0", "cuda:7", "", "cpu:0", "CPU", "cuda:-1", "cuda:99999999999999999999",
        "gpu", " cpu"};
    const size_t k = in.below(sizeof fixed / sizeof *fixed + 1);
    if (k < sizeof fixed / sizeof *fixed) return fixed[k];
    storage.clear();
    for (size_t n = in.below(12); n > 0; --n) storage += static_cast<char>(in.byte() | 1);
    return storage.c_str();
}

// Where a pipeline's images are: a device string as pick_device gives, and now and then a stream.
// The stream is not one (no CUDA here); the fixtures' models are on the CPU, so it is refused
// before any use.
template <typename Options>
void place_images(Input& in, Options& o, std::string& storage) {
    o.images_device = pick_device(in, storage);
    o.cuda_stream = in.below(8) == 0 ? reinterpret_cast<void*>(uintptr_t{0x10}) : nullptr;
}

int32_t g_cancel_after = -1;
int32_t g_progress_calls = 0;
int32_t progress(int32_t done, int32_t total, void* /*user_data: any pointer*/) {
    if (done < 0 || total < 0 || done > total) __builtin_trap();
    ++g_progress_calls;
    return g_cancel_after >= 0 && g_progress_calls > g_cancel_after;
}

// An image description and the memory it describes (the harness's side of the contract).
struct Picture {
    limn_image image{};
    std::vector<uint8_t> memory;
};

int32_t pick_side(Input& in) {
    switch (in.below(8)) {
        case 0: return -static_cast<int32_t>(in.below(3));  // 0, -1, -2
        case 1: return in.get<int32_t>();                   // anything; memory clamps it below
        default: return 1 + static_cast<int32_t>(in.below(40));
    }
}

void make_picture(Input& in, Picture& p) {
    limn_image& im = p.image;
    im.format = in.below(8) == 0 ? static_cast<limn_pixel_format>(in.get<int32_t>())
                                 : static_cast<limn_pixel_format>(1 + in.below(6));
    im.width = pick_side(in);
    im.height = pick_side(in);
    const int32_t bpp = limn_pixel_format_bytes_per_pixel(im.format);
    const bool described = bpp > 0 && im.width > 0 && im.height > 0;
    // Real memory only for sizes a test can afford; larger descriptions get smaller.
    if (described && static_cast<int64_t>(im.width) * im.height > 64 * 64) {
        im.width = 1 + im.width % 64;
        im.height = 1 + im.height % 64;
    }
    const size_t row = described ? static_cast<size_t>(im.width) * bpp : 0;
    bool overflowing = false;
    switch (in.below(10)) {
        case 0: im.stride = row ? row - 1 - in.below(row) : 0; break;  // too short
        case 1: im.stride = row + 1 + in.below(7); break;              // odd padding
        case 2:  // rows spanning more than PTRDIFF_MAX bytes (with 3 or more rows): no such memory
            im.stride = (SIZE_MAX >> in.below(2)) - in.below(16);
            overflowing = true;
            break;
        default: im.stride = row + 4 * in.below(3); break;
    }
    if (overflowing && im.height < 3) im.height = 3 + static_cast<int32_t>(in.below(3));
    size_t bytes = 64;
    if (described && im.stride >= row && !overflowing) bytes = (im.height - 1) * im.stride + row;
    p.memory.assign(bytes + 4, 0);
    for (size_t i = 0; i < p.memory.size() && !in.empty(); i += 1 + in.below(97)) p.memory[i] = in.byte();
    switch (in.below(12)) {
        case 0: im.data = nullptr; break;
        case 1: im.data = p.memory.data() + 1; break;  // misaligned (data and stride, for floats)
        default: im.data = p.memory.data(); break;
    }
    // Float pixels hold what the caller wrote: NaN, Inf and out-of-range values included.
}

// A face anywhere: landmarks from the input bytes (NaN, Inf, huge) or near the picture.
void make_faces(Input& in, std::vector<limn_face>& faces, size_t count) {
    faces.resize(count);
    for (limn_face& f : faces) {
        if (in.flag()) {
            in.fill(&f, sizeof f);
        } else {
            const float cx = static_cast<float>(in.below(48)), cy = static_cast<float>(in.below(48));
            const float s = 1.0f + static_cast<float>(in.below(32));
            const float pts[10] = {-0.4f, -0.3f, 0.4f, -0.3f, 0.0f, 0.1f, -0.3f, 0.4f, 0.3f, 0.4f};
            for (int k = 0; k < 10; ++k) f.landmarks[k] = (k % 2 ? cy : cx) + pts[k] * s;
            f.score = 1.0f;
        }
    }
}

// A known status, and a message with every failure. LIMN_FUZZ_VERBOSE=1 prints each call.
void check_status(const char* call, limn_status st) {
    if (static_cast<int>(st) < 0 || static_cast<int>(st) > LIMN_ERR_INVALID_IMAGE) __builtin_trap();
    if (st != LIMN_OK && !*limn_last_error()) __builtin_trap();
    static const bool verbose = std::getenv("LIMN_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "  %s: %s: %.100s\n", call, limn_status_string(st), limn_last_error());
}

void call_pipeline(Input& in) {
    Picture src, dst;
    make_picture(in, src);
    const bool in_place = in.below(4) == 0;
    if (!in_place) make_picture(in, dst);
    limn_image* output = in_place ? &src.image : &dst.image;
    Padded<limn_pipeline_stats> stats_room{};
    limn_pipeline_stats& stats = stats_room.s;
    fuzz_struct(in, stats);
    limn_pipeline_stats* stats_arg = in.below(4) == 0 ? nullptr : &stats;
    limn_model* model = pick_model(in);
    std::vector<limn_face> faces;
    make_faces(in, faces, in.below(4));
    Padded<limn_detect_faces_options> detect_room{};
    limn_detect_faces_options& detect = detect_room.s;
    fuzz_options(in, detect, limn_detect_faces_options_init);
    std::string place, detect_place;
    place_images(in, detect, detect_place);
    g_cancel_after = in.below(4) == 0 ? static_cast<int32_t>(in.below(4)) : -1;
    g_progress_calls = 0;
    switch (in.below(3)) {
        case 0: {
            Padded<limn_cartoonize_options> o_room{};
            limn_cartoonize_options& o = o_room.s;
            fuzz_options(in, o, limn_cartoonize_options_init);
            place_images(in, o, place);
            o.progress = in.flag() ? progress : nullptr;
            o.head_model = in.below(3) == 0 ? pick_model(in) : nullptr;
            o.detector = in.below(3) == 0 ? pick_model(in) : nullptr;
            o.detect_options = in.flag() ? &detect : nullptr;
            o.faces = faces.empty() || in.below(4) == 0 ? nullptr : faces.data();
            o.face_count = o.faces ? faces.size() : (in.flag() ? in.below(3) : 0);  // a count with NULL
            // Keep the work small: the tile size and timeout as fuzzed, but no 1-pixel tiles on the
            // fixtures' 64 px (each tile is one network run).
            if (o.tile_size > 0 && o.tile_size < 8) o.tile_size = 8;
            check_status("limn_cartoonize",
                         limn_cartoonize(model, &src.image, output, in.below(6) ? &o : nullptr, stats_arg));
            break;
        }
        case 1: {
            Padded<limn_restore_faces_options> o_room{};
            limn_restore_faces_options& o = o_room.s;
            fuzz_options(in, o, limn_restore_faces_options_init);
            place_images(in, o, place);
            o.progress = in.flag() ? progress : nullptr;
            o.detector = in.below(3) == 0 ? pick_model(in) : nullptr;
            o.detect_options = in.flag() ? &detect : nullptr;
            const limn_face* f = faces.empty() || in.below(4) == 0 ? nullptr : faces.data();
            const size_t count = f ? faces.size() : (in.flag() ? in.below(3) : 0);
            check_status("limn_restore_faces", limn_restore_faces(model, &src.image, output, f, count,
                                                                  in.below(6) ? &o : nullptr, stats_arg));
            break;
        }
        default: {
            std::vector<limn_face> found(in.below(5));
            size_t count = 12345;
            const size_t capacity = found.size();
            const limn_status st = limn_detect_faces(model, &src.image, in.below(6) ? &detect : nullptr,
                                                     found.empty() ? nullptr : found.data(), capacity,
                                                     in.below(8) ? &count : nullptr);
            check_status("limn_detect_faces", st);
            if (st != LIMN_OK && count != 12345) __builtin_trap();
            break;
        }
    }
}

void call_run(Input& in) {
    Picture src, dst;
    make_picture(in, src);
    make_picture(in, dst);
    limn_model* model = pick_model(in);
    switch (in.below(3)) {
        case 0:
            check_status("limn_model_run", limn_model_run(model, &src.image, in.flag() ? &src.image : &dst.image));
            break;
        case 1: {
            limn_image* sentinel = reinterpret_cast<limn_image*>(&src);
            limn_image* out = sentinel;
            const auto format =
                static_cast<limn_pixel_format>(in.below(4) == 0 ? in.get<int32_t>() : 1 + in.below(6));
            const limn_status st = limn_model_run_alloc(model, &src.image, format, in.below(8) ? &out : nullptr);
            check_status("limn_model_run_alloc", st);
            if (st == LIMN_OK) {
                limn_image_free(out);
            } else if (out != sentinel) {
                __builtin_trap();
            }
            break;
        }
        default: {
            const size_t count = in.below(4);
            std::vector<Picture> ins(count), outs(count);
            std::vector<limn_image> a(count), b(count);
            for (size_t i = 0; i < count; ++i) {
                make_picture(in, ins[i]);
                make_picture(in, outs[i]);
                a[i] = ins[i].image;
                b[i] = outs[i].image;
            }
            if (in.flag()) {
                check_status("limn_model_run_batch", limn_model_run_batch(model, count ? a.data() : nullptr,
                                                                          count ? b.data() : nullptr, count));
            } else {  // the same with run options: where the images are
                Padded<limn_run_options> o_room{};
                limn_run_options& o = o_room.s;
                fuzz_options(in, o, limn_run_options_init);
                std::string place;
                place_images(in, o, place);
                check_status("limn_model_run_with",
                             limn_model_run_with(model, count ? a.data() : nullptr, count ? b.data() : nullptr, count,
                                                 in.below(6) ? &o : nullptr));
            }
            break;
        }
    }
}

void call_image_files(Input& in) {
    Picture src;
    make_picture(in, src);
    Padded<limn_image_save_options> o_room{};
    limn_image_save_options& o = o_room.s;
    fuzz_options(in, o, limn_image_save_options_init);
    // The ICC profile is a pointer: NULL, or bytes of the input (any size up to theirs, or a size
    // without bytes, which must be refused), when struct_size reaches it.
    static std::vector<uint8_t> icc;
    if (o.struct_size >= offsetof(limn_image_save_options, icc_profile_size) + sizeof(size_t)) {
        icc.assign(in.below(600), 0);
        for (uint8_t& b : icc) b = in.byte();
        switch (in.below(4)) {
            case 0: o.icc_profile = nullptr; o.icc_profile_size = 0; break;
            case 1: o.icc_profile = nullptr; o.icc_profile_size = 1 + in.below(100); break;
            default: o.icc_profile = icc.data(); o.icc_profile_size = in.below(icc.size() + 1); break;
        }
    }
    static const char* const ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".tga", ".webp", ".PNG", "", ".tif", ".x"};
    switch (in.below(3)) {
        case 0: {
            const std::string path = scratch_dir() + "/out" + ext[in.below(10)];
            check_status("limn_image_save", limn_image_save(in.below(16) ? path.c_str() : nullptr, &src.image,
                                                            in.flag() ? &o : nullptr));
            ::unlink(path.c_str());
            break;
        }
        case 1: {
            void* sentinel = &src;
            void* data = sentinel;
            size_t size = 777;
            const limn_status st = limn_image_encode(&src.image, in.below(8) ? &o : nullptr,
                                                     in.below(8) ? &data : nullptr, in.below(8) ? &size : nullptr);
            check_status("limn_image_encode", st);
            if (st == LIMN_OK) {
                limn_image_load_options lo;
                limn_image_load_options_init(&lo);
                limn_image* back = nullptr;
                if (limn_image_load_from_memory(data, size, &lo, &back) != LIMN_OK) __builtin_trap();
                limn_image_free(back);
                limn_buffer_free(data);
            } else if (data != sentinel || size != 777) {
                __builtin_trap();
            }
            break;
        }
        default: {
            Padded<limn_image_load_options> lo_room{};
            limn_image_load_options& lo = lo_room.s;
            fuzz_options(in, lo, limn_image_load_options_init);
            lo.name = in.flag() ? "fuzzed bytes" : nullptr;  // a string or NULL, not the random fill
            if (lo.struct_size >= sizeof lo && (lo.max_pixels == 0 || lo.max_pixels > (1u << 20))) {
                lo.max_pixels = 1u << 20;  // the decoders themselves are fuzz_image_load's
            }
            std::vector<uint8_t> bytes(in.below(256));
            in.fill(bytes.data(), bytes.size());
            limn_image* out = reinterpret_cast<limn_image*>(&src);
            const limn_status st = limn_image_load_from_memory(bytes.empty() && in.flag() ? nullptr : bytes.data(),
                                                               bytes.size(), in.below(6) ? &lo : nullptr, &out);
            check_status("limn_image_load_from_memory", st);
            if (st == LIMN_OK) {
                limn_image_free(out);
            } else if (out != reinterpret_cast<limn_image*>(&src)) {
                __builtin_trap();
            }
            break;
        }
    }
}

void call_model_load(Input& in) {
    Padded<limn_model_options> o_room{};
    limn_model_options& o = o_room.s;
    fuzz_options(in, o, limn_model_options_init);
    std::string device, name, digest;
    o.device = pick_device(in, device);
    o.name = in.flag() ? nullptr : (name = std::string(in.below(8), 'n'), name.c_str());
    switch (in.below(4)) {
        case 0:
            digest = std::string(64, 'a');
            o.expected_sha256 = digest.c_str();
            break;
        case 1:
            digest = std::string(in.below(70), '0');
            o.expected_sha256 = digest.c_str();
            break;
        default: o.expected_sha256 = nullptr; break;
    }
    const std::string& file = models().small_file;
    // The whole file, a prefix of it, or none.
    const size_t size = in.below(4) == 0 ? in.below(file.size() + 1) : file.size();
    limn_model* sentinel = reinterpret_cast<limn_model*>(&o);
    limn_model* out = sentinel;
    const limn_status st = limn_model_load_from_memory(file.empty() && in.flag() ? nullptr : file.data(), size,
                                                       in.below(8) ? &o : nullptr, in.below(16) ? &out : nullptr);
    check_status("limn_model_load_from_memory", st);
    if (st == LIMN_OK) {
        limn_model_free(out);
    } else if (out != sentinel) {
        __builtin_trap();
    }
}

void call_devices_and_memory(Input& in) {
    std::string storage;
    const char* device = pick_device(in, storage);
    switch (in.below(8)) {
        case 0: {
            // Any limit, then none again: the pipelines' tile sizes follow the CPU's budget.
            check_status("limn_memory_set_limit",
                         limn_memory_set_limit(device, in.get<uint64_t>() >> in.below(64)));
            if (limn_memory_set_limit("cpu", 0) != LIMN_OK) __builtin_trap();  // removing a cap cannot fail
            break;
        }
        case 1: check_status("limn_memory_release_cached", limn_memory_release_cached(device)); break;
        case 2: check_status("limn_memory_reset_peak", limn_memory_reset_peak(device)); break;
        case 3: {
            Padded<limn_memory_stats> s_room{};
            limn_memory_stats& s = s_room.s;
            fuzz_struct(in, s);
            check_status("limn_memory_get_stats", limn_memory_get_stats(device, in.below(8) ? &s : nullptr));
            break;
        }
        case 4: {
            Padded<limn_device_info> info_room{};
            limn_device_info& info = info_room.s;
            fuzz_struct(in, info);
            check_status("limn_device_get_info",
                         limn_device_get_info(in.get<int32_t>() % 4, in.below(8) ? &info : nullptr));
            break;
        }
        case 5: {
            char out[40];
            std::memset(out, 'x', sizeof out);
            const size_t size = in.below(sizeof out + 1);
            check_status("limn_device_resolve", limn_device_resolve(device, in.below(8) ? out : nullptr, size));
            break;
        }
        case 6: {
            int32_t count = -1;
            check_status("limn_device_count", limn_device_count(in.flag() ? &count : nullptr));
            break;
        }
        default: {
            Padded<limn_model_info> info_room{};
            limn_model_info& info = info_room.s;
            fuzz_struct(in, info);
            check_status("limn_model_get_info",
                         limn_model_get_info(pick_model(in), in.below(8) ? &info : nullptr));
            break;
        }
    }
}

void call_pure(Input& in) {
    const auto status = static_cast<limn_status>(in.get<int32_t>());
    if (!limn_status_string(status)) __builtin_trap();
    const auto format = static_cast<limn_pixel_format>(in.get<int32_t>());
    const int32_t c = limn_pixel_format_channels(format), b = limn_pixel_format_bytes_per_pixel(format);
    if ((c == 0) != (b == 0)) __builtin_trap();
    limn_image* img = nullptr;
    const int32_t w = static_cast<int32_t>(in.below(4) == 0 ? in.get<int32_t>() : in.below(70) - 2);
    const int32_t h = static_cast<int32_t>(in.below(4) == 0 ? in.get<int32_t>() : in.below(70) - 2);
    // Sizes the test can afford, or sizes that are not.
    if (w <= 0 || h <= 0 || static_cast<int64_t>(w) * h <= (1 << 16)) {
        const limn_status st = limn_image_alloc(w, h, format, in.below(16) ? &img : nullptr);
        check_status("limn_image_alloc", st);
        limn_image_free(img);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    char dir[] = "/tmp/limn-fuzz-c-api-XXXXXX";
    if (::mkdtemp(dir)) scratch_dir() = dir;
    const char* fixtures = std::getenv("LIMN_TEST_FIXTURES");
    if (!fixtures || !*fixtures) return 0;
    Models& m = models();
    m.cartoon = load_fixture(fixtures, "tiny_unet.pt");
    m.face = load_fixture(fixtures, "tiny_face.pt");
    m.detect = load_fixture(fixtures, "tiny_detect.pt");
    m.head = load_fixture(fixtures, "tiny_head.pt");
    std::ifstream f(std::string(fixtures) + "/identity.pt", std::ios::binary);
    m.small_file.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(data, size);
    for (int calls = 0; calls < 4 && !in.empty(); ++calls) {
        switch (in.below(16)) {
            case 0:
            case 1:
            case 2:
            case 3: call_pipeline(in); break;
            case 4:
            case 5:
            case 6: call_run(in); break;
            case 7:
            case 8:
            case 9: call_image_files(in); break;
            case 10: call_model_load(in); break;
            case 11:
            case 12: call_devices_and_memory(in); break;
            default: call_pure(in); break;
        }
    }
    return 0;
}
