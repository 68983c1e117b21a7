#include "image_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <optional>
#include <system_error>

#include "error.h"
#include "exif.h"
#include "file_io.h"
#include "icc.h"
#include "names.h"

#if LIMN_WITH_WEBP
#include <webp/decode.h>
#include <webp/encode.h>
#endif
#if LIMN_WITH_TIFF
#include <tiffio.h>
#endif

// ---- stb ----------------------------------------------------------------------------------------
// Compiled here only and with internal linkage (STB_*_STATIC), so liblimn.so never exports stb
// symbols that could clash with the copy an engine links. The decoder allocates through
// capped_malloc/capped_realloc: a malformed file (a deflate bomb in a PNG of a few pixels) must not
// make it allocate more than its header's size calls for.

namespace {

// Largest single allocation the decoder may make on this thread; SIZE_MAX outside a decode.
thread_local size_t t_allocation_cap = SIZE_MAX;
thread_local bool t_allocation_refused = false;  // a request over the cap
thread_local bool t_out_of_memory = false;       // the system allocator said no
thread_local bool t_check_failed = false;        // an STBI_ASSERT was false

// stb's internal checks fail on some malformed files; asserting would abort the caller's process.
void note_failed_check() { t_check_failed = true; }

// Zeroed, because stb reads some of its state before writing it on malformed input (a JPEG scan
// that uses a Huffman table no segment defined); zeros make that state inert.
void* capped_malloc(size_t size) {
    if (size > t_allocation_cap) {
        t_allocation_refused = true;
        return nullptr;
    }
    void* p = std::calloc(1, size);
    if (!p) t_out_of_memory = true;
    return p;
}

void* capped_realloc(void* old, size_t size) {
    if (size > t_allocation_cap) {
        t_allocation_refused = true;
        return nullptr;
    }
    void* p = std::realloc(old, size);
    if (!p) t_out_of_memory = true;
    return p;
}

}  // namespace

#define STBI_MALLOC(size) capped_malloc(size)
#define STBI_REALLOC(p, size) capped_realloc(p, size)
#define STBI_FREE(p) std::free(p)
#define STBI_ASSERT(x) ((x) ? (void)0 : note_failed_check())
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wunused-but-set-variable"
#pragma clang diagnostic ignored "-Wunused-parameter"
#pragma clang diagnostic ignored "-Wsign-compare"
#pragma clang diagnostic ignored "-Wimplicit-fallthrough"
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace limn::core {
namespace {

// ---- helpers ------------------------------------------------------------------------------------

[[noreturn]] void fail_errno(const std::string& what, int err) {
    fail(LIMN_ERR_IO, what + ": " + std::error_code(err, std::generic_category()).message());
}

// Closes a file descriptor when it goes out of scope.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

std::string file_label(const std::string& path) { return "image file '" + path + "'"; }

// "PNG", "JPEG", ...; nullptr for AUTO and unknown values.
const char* file_format_name(limn_file_format format) {
    return format == LIMN_FILE_FORMAT_AUTO ? nullptr : text_of(LIMN_NAMES_FILE_FORMAT, format);
}

void check_load_options(const LoadOptions& options) {
    if (options.format != 0 && channels_of(options.format) == 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT,
             "unknown pixel format " + std::to_string(static_cast<int>(options.format)) + " to load into");
    }
}

// stb reads lengths as int.
constexpr size_t kMaxEncodedBytes = INT_MAX;

// The whole file; LIMN_ERR_IO (with the path and the system's reason) if it cannot be read.
std::vector<uint8_t> read_file(const std::string& path) {
    const std::string what = "cannot read " + file_label(path);
    const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) fail_errno(what, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail_errno(what, errno);
    if (S_ISDIR(st.st_mode)) fail_errno(what, EISDIR);
    const auto too_large = [&](uint64_t bytes) {
        fail(LIMN_ERR_IMAGE_TOO_LARGE, file_label(path) + " is " + std::to_string(bytes) +
                                           " bytes; image files over " +
                                           std::to_string(kMaxEncodedBytes) + " bytes are not supported");
    };
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxEncodedBytes) too_large(st.st_size);

    std::vector<uint8_t> bytes;
    // One byte more than the size, so that a regular file is read in one call plus the EOF call.
    size_t chunk = S_ISREG(st.st_mode) ? static_cast<size_t>(st.st_size) + 1 : size_t{1} << 16;
    for (;;) {
        const size_t used = bytes.size();
        bytes.resize(used + chunk);
        const ssize_t n = ::read(fd.get(), bytes.data() + used, chunk);
        if (n < 0) {
            const int err = errno;
            bytes.resize(used);
            if (err == EINTR) continue;
            fail_errno(what, err);
        }
        bytes.resize(used + static_cast<size_t>(n));
        if (n == 0) break;
        if (bytes.size() > kMaxEncodedBytes) too_large(bytes.size());
        chunk = size_t{1} << 16;
    }
    return bytes;
}

// ---- decoding -----------------------------------------------------------------------------------

// Sets the decoder's allocation cap for this thread while it lives.
class AllocationCap {
public:
    explicit AllocationCap(uint64_t cap) {
        t_allocation_cap = cap > SIZE_MAX ? SIZE_MAX : static_cast<size_t>(cap);
        t_allocation_refused = false;
        t_out_of_memory = false;
        t_check_failed = false;
    }
    AllocationCap(const AllocationCap&) = delete;
    AllocationCap& operator=(const AllocationCap&) = delete;
    ~AllocationCap() { t_allocation_cap = SIZE_MAX; }
};

// Room for the decoders' fixed-size state (Huffman tables, LZW dictionaries, palettes).
constexpr uint64_t kDecoderStateBytes = uint64_t{4} << 20;

// The largest single buffer a legitimate w x h image needs: the biggest are 16 bytes a pixel (HDR
// floats, 16-bit RGBA PNG rows twice over), JPEG pads to 32-pixel blocks, and PNG gathers its
// compressed chunks in a buffer up to twice the file.
uint64_t decode_allocation_cap(int width, int height, size_t file_bytes) {
    return 16 * (static_cast<uint64_t>(width) + 64) * (static_cast<uint64_t>(height) + 64) +
           2 * static_cast<uint64_t>(file_bytes) + kDecoderStateBytes;
}

[[noreturn]] void fail_decode(const std::string& label, const char* what) {
    if (t_out_of_memory) throw std::bad_alloc();
    if (t_allocation_refused) {
        fail(LIMN_ERR_INVALID_IMAGE,
             label + " " + what + ": its data asks for more memory than an image of its size needs");
    }
    const char* reason = stbi_failure_reason();
    fail(LIMN_ERR_INVALID_IMAGE, label + " " + what + " (" + (reason ? reason : "no reason given") + ")");
}

uint32_t be32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

bool is_png(const uint8_t* data, size_t size) {
    static const uint8_t kSignature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    return size >= 8 && std::memcmp(data, kSignature, 8) == 0;
}

// The size in a PNG's IHDR chunk. Read before stb, which refuses some large PNGs in its header
// check with a message that would not say "too large" in limn's terms.
bool png_header_size(const uint8_t* data, size_t size, uint32_t& width, uint32_t& height) {
    if (size < 26 || !is_png(data, size) || std::memcmp(data + 12, "IHDR", 4) != 0) return false;
    width = be32(data + 16);
    height = be32(data + 20);
    return true;
}

// The PNG without its empty IDAT chunks, or nothing if it has none. stb allocates its buffer for
// the compressed data at the first non-empty IDAT, so an empty one before it makes stb copy zero
// bytes to a null pointer (undefined behaviour, found by fuzzing). Empty chunks carry no data.
std::vector<uint8_t> png_without_empty_idat(const uint8_t* data, size_t size) {
    std::vector<uint8_t> out;
    size_t pos = 8, copied = 0;
    while (size - pos >= 12) {  // length, type, CRC
        const uint32_t length = be32(data + pos);
        if (length > size - pos - 12) break;
        if (length == 0 && std::memcmp(data + pos + 4, "IDAT", 4) == 0) {
            out.insert(out.end(), data + copied, data + pos);
            copied = pos + 12;
        }
        pos += 12 + static_cast<size_t>(length);
    }
    if (copied > 0) out.insert(out.end(), data + copied, data + size);
    return out;
}

// Whether stb's PNG header check refuses this size (over 2^24 a side, or over 2^30 bytes decoded);
// `data` holds a whole IHDR (png_header_size returned true).
bool png_too_large_for_stb(const uint8_t* data, uint32_t width, uint32_t height) {
    const uint8_t color_type = data[25];
    const uint64_t channels = color_type == 0 ? 1 : color_type == 4 ? 2 : color_type == 2 ? 3 : 4;
    if (width == 0 || height == 0) return false;
    return width > (1u << 24) || height > (1u << 24) ||
           (uint64_t{1} << 30) / width / channels < height;
}

// Whether the numbers in a binary PNM header ("P5"/"P6": width, height, maximum value) fit the int
// that stb parses them into without overflowing it (undefined behaviour, found by fuzzing). Reads
// as stb does: whitespace and '#' comments between numbers, zeros past the end of the data. A
// number of ten or more significant digits is refused; stb refuses all of those sizes anyway.
bool pnm_numbers_fit(const uint8_t* data, size_t size) {
    if (size < 2 || data[0] != 'P' || (data[1] != '5' && data[1] != '6')) return true;
    size_t pos = 2;
    const auto at_end = [&] { return pos >= size; };
    const auto next = [&]() -> char { return pos < size ? static_cast<char>(data[pos++]) : 0; };
    const auto is_space = [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
    };
    const auto skip_space = [&](char& c) {
        for (;;) {
            while (!at_end() && is_space(c)) c = next();
            if (at_end() || c != '#') return;
            while (!at_end() && c != '\n' && c != '\r') c = next();
        }
    };
    char c = next();
    skip_space(c);
    for (int number = 0; number < 3; ++number) {
        int digits = 0;
        while (!at_end() && c >= '0' && c <= '9') {
            if (digits > 0 || c != '0') ++digits;
            c = next();
        }
        if (digits >= 10) return false;
        skip_space(c);
    }
    return true;
}

// Where a JPEG's first marker after SOI starts, if `data` begins the way stb's JPEG test reads it
// (0xFF, any fill bytes, 0xD8); 0 if stb will not take it for a JPEG.
size_t jpeg_body(const uint8_t* data, size_t size) {
    if (size < 2 || data[0] != 0xFF) return 0;
    size_t pos = 1;
    while (pos < size && data[pos] == 0xFF) ++pos;
    return pos < size && data[pos] == 0xD8 ? pos + 1 : 0;
}

// Whether stb_image 2.27 can read the DHT segment whose length field is at `at` without writing
// past its Huffman tables, which it does for a table that declares more than 256 codes. Reads as
// stb does: table after table until the declared length is used up, on past the segment if the
// tables overrun it, and zeros past the end of the data.
bool jpeg_dht_is_safe(const uint8_t* data, size_t size, size_t at) {
    const auto byte = [&](size_t i) -> unsigned { return i < size ? data[i] : 0; };
    long remaining = static_cast<long>((byte(at) << 8) | byte(at + 1)) - 2;
    size_t pos = at + 2;
    while (remaining > 0) {
        const unsigned id = byte(pos++);
        if ((id >> 4) > 1 || (id & 15) > 3) return true;  // stb refuses the table before using it
        unsigned codes = 0;
        for (int i = 0; i < 16; ++i) codes += byte(pos++);
        if (codes > 256) return false;
        pos += codes;
        remaining -= 17 + static_cast<long>(codes);
    }
    return true;
}

enum class JpegCheck { kComplete, kTruncated, kBadHuffmanTable };

// Walks a JPEG's marker segments by their lengths (so an EXIF thumbnail's own markers are skipped)
// and the entropy-coded data between them (where 0xFF is always followed by 0x00 or a restart
// marker) up to the end-of-image marker, checking each Huffman table segment on the way. stb
// decodes a truncated JPEG as if the missing data were zeros; this tells such a file apart.
JpegCheck check_jpeg(const uint8_t* data, size_t size, size_t pos) {
    for (;;) {
        const void* ff = pos < size ? std::memchr(data + pos, 0xFF, size - pos) : nullptr;
        if (!ff) return JpegCheck::kTruncated;
        pos = static_cast<size_t>(static_cast<const uint8_t*>(ff) - data);
        while (pos < size && data[pos] == 0xFF) ++pos;  // fill bytes
        if (pos >= size) return JpegCheck::kTruncated;
        const uint8_t marker = data[pos++];
        if (marker == 0xD9) return JpegCheck::kComplete;
        if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;
        if (marker == 0xC4 && !jpeg_dht_is_safe(data, size, pos)) return JpegCheck::kBadHuffmanTable;
        if (size - pos < 2) return JpegCheck::kTruncated;
        const size_t length = (size_t{data[pos]} << 8) | data[pos + 1];
        if (length < 2 || length > size - pos) return JpegCheck::kTruncated;
        pos += length;
    }
}

// Output pixel (x, y) comes from index base + x * dx + y * dy of the decoded w x h pixels: the
// transform that turns pixels stored with EXIF orientation 1..8 upright.
struct Walk {
    ptrdiff_t base, dx, dy;
};

Walk walk_for(int orientation, ptrdiff_t w, ptrdiff_t h) {
    switch (orientation) {
        case 2: return {w - 1, -1, w};         // mirror horizontally
        case 3: return {h * w - 1, -1, -w};    // rotate 180
        case 4: return {(h - 1) * w, 1, -w};   // mirror vertically
        case 5: return {0, w, 1};              // transpose
        case 6: return {(h - 1) * w, -w, 1};   // rotate 90 clockwise
        case 7: return {h * w - 1, -w, -1};    // transverse
        case 8: return {w - 1, w, -1};         // rotate 90 counter-clockwise
        default: return {0, 1, w};             // 1: as stored
    }
}

inline uint8_t to_8bit(uint8_t v) { return v; }
inline uint8_t to_8bit(uint16_t v) { return static_cast<uint8_t>((uint32_t{v} + 128) / 257); }

// Converts decoded pixels (`n` channels: grey, grey+alpha, RGB, RGBA) into `out`, walking the
// source as `walk` says.
template <typename T>
void convert_pixels(const T* src, int n, const Walk& walk, limn_image& out) {
    constexpr T kOpaque = std::numeric_limits<T>::max();
    constexpr float kScale = static_cast<float>(std::numeric_limits<T>::max());
    const int oc = channels_of(out.format);
    const bool to_float = is_float(out.format);
    const int r_at = is_bgr(out.format) ? 2 : 0;
    const int b_at = 2 - r_at;
    for (int y = 0; y < out.height; ++y) {
        uint8_t* row = out.data + static_cast<size_t>(y) * out.stride;
        ptrdiff_t at = walk.base + static_cast<ptrdiff_t>(y) * walk.dy;
        for (int x = 0; x < out.width; ++x, at += walk.dx) {
            const T* p = src + at * n;
            std::array<T, 4> rgba;
            switch (n) {
                case 1: rgba = {p[0], p[0], p[0], kOpaque}; break;
                case 2: rgba = {p[0], p[0], p[0], p[1]}; break;
                case 3: rgba = {p[0], p[1], p[2], kOpaque}; break;
                default: rgba = {p[0], p[1], p[2], p[3]}; break;
            }
            if (to_float) {
                float* d = reinterpret_cast<float*>(row) + static_cast<size_t>(x) * oc;
                for (int k = 0; k < oc; ++k) d[k] = static_cast<float>(rgba[k]) / kScale;
            } else {
                uint8_t* d = row + static_cast<size_t>(x) * oc;
                d[r_at] = to_8bit(rgba[0]);
                d[1] = to_8bit(rgba[1]);
                d[b_at] = to_8bit(rgba[2]);
                if (oc == 4) d[3] = to_8bit(rgba[3]);
            }
        }
    }
}

// Decoded pixels, freed by the decoder that made them (stb_image or libwebp).
using Pixels = std::unique_ptr<void, void (*)(void*)>;
void stb_free(void* p) { stbi_image_free(p); }

// A RIFF container holding WebP.
bool is_webp(const uint8_t* data, size_t size) {
    return size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0;
}

#if LIMN_WITH_WEBP
void webp_free(void* p) { WebPFree(p); }
#endif

// A TIFF stream: "II*\0" or "MM\0*".
bool is_tiff(const uint8_t* data, size_t size) {
    return size >= 8 && ((data[0] == 'I' && data[1] == 'I' && data[2] == 42 && data[3] == 0) ||
                         (data[0] == 'M' && data[1] == 'M' && data[2] == 0 && data[3] == 42));
}

#if LIMN_WITH_TIFF
// libtiff reading from memory: the bytes, where it is, and nothing written.
struct TiffSource {
    const uint8_t* data;
    size_t size;
    size_t at = 0;
};

tmsize_t tiff_read(thandle_t h, void* buf, tmsize_t n) {
    auto* s = static_cast<TiffSource*>(h);
    const size_t left = s->at < s->size ? s->size - s->at : 0;
    const size_t k = std::min(left, static_cast<size_t>(n < 0 ? 0 : n));
    std::memcpy(buf, s->data + s->at, k);
    s->at += k;
    return static_cast<tmsize_t>(k);
}
tmsize_t tiff_write(thandle_t, void*, tmsize_t) { return 0; }
toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
    auto* s = static_cast<TiffSource*>(h);
    const uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->at : s->size;
    s->at = static_cast<size_t>(std::min<uint64_t>(base + off, s->size));
    return s->at;
}
int tiff_close(thandle_t) { return 0; }
toff_t tiff_size(thandle_t h) { return static_cast<TiffSource*>(h)->size; }
#endif

bool is_gif(const uint8_t* data, size_t size) { return size >= 6 && std::memcmp(data, "GIF8", 4) == 0; }

// Whether every pixel of 8-bit RGBA pixels is opaque.
bool all_opaque(const uint8_t* rgba, int w, int h) {
    const size_t n = static_cast<size_t>(w) * static_cast<size_t>(h);
    for (size_t i = 0; i < n; ++i)
        if (rgba[4 * i + 3] != 255) return false;
    return true;
}

// The images in a GIF (its image descriptors), counted by walking its blocks; a damaged file
// counts what it has before the damage.
size_t gif_frames(const uint8_t* data, size_t size) {
    if (!is_gif(data, size) || size < 13) return 0;
    size_t pos = 13, frames = 0;
    if (data[10] & 0x80) pos += size_t{3} << ((data[10] & 7) + 1);  // the global colour table
    const auto skip_sub_blocks = [&] {
        while (pos < size) {
            const size_t n = data[pos++];
            if (n == 0) return true;
            pos += n;
        }
        return false;
    };
    while (pos < size) {
        const uint8_t block = data[pos++];
        if (block == 0x21 && pos < size) {  // an extension: its label, then sub-blocks
            ++pos;
            if (!skip_sub_blocks()) break;
        } else if (block == 0x2C && pos + 9 <= size) {  // an image: descriptor, colours, LZW data
            const uint8_t flags = data[pos + 8];
            pos += 9;
            if (flags & 0x80) pos += size_t{3} << ((flags & 7) + 1);
            ++frames;
            ++pos;  // the LZW minimum code size
            if (pos > size || !skip_sub_blocks()) break;
        } else {
            break;  // the trailer (0x3B), or damage
        }
    }
    return frames;
}

[[noreturn]] void fail_animated(const std::string& label, const std::string& what) {
    fail(LIMN_ERR_UNSUPPORTED, label + " is " + what + "; limn reads still pictures: save the one you want as a "
                                                       "file of its own (e.g. PNG) and give limn that");
}

// TIFF (its first image) through libtiff, as stored (`orientation` receives its orientation tag,
// 1..8, which the caller applies as for JPEG); the size from the header is checked before the pixels
// are decoded. RGBA when the file has extra (alpha) samples.
Pixels decode_tiff(const uint8_t* data, size_t size, const std::string& label,
                   const std::function<void(uint64_t, uint64_t)>& check_size, int& w, int& h, int& n,
                   int& orientation) {
#if LIMN_WITH_TIFF
    static const bool quiet = [] {
        TIFFSetErrorHandler(nullptr);  // reported through limn's messages, not printed
        TIFFSetWarningHandler(nullptr);
        return true;
    }();
    (void)quiet;
    TiffSource source{data, size};
    std::unique_ptr<TIFF, void (*)(TIFF*)> tif(
        TIFFClientOpen("memory", "rm", &source, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size, nullptr,
                       nullptr),
        [](TIFF* t) { if (t) TIFFClose(t); });
    if (!tif) fail_decode(label, "is a corrupt or truncated TIFF file");
    size_t pages = 0;
    do {
        uint32_t type = 0;
        TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SUBFILETYPE, &type);
        if (!(type & FILETYPE_REDUCEDIMAGE)) ++pages;
    } while (pages <= 1 && TIFFReadDirectory(tif.get()));
    if (pages > 1) fail_animated(label, "a TIFF file of several pages");
    if (!TIFFSetDirectory(tif.get(), 0)) fail_decode(label, "is a corrupt or truncated TIFF file");
    uint32_t width = 0, height = 0;
    uint16_t extra = 0, *kinds = nullptr;
    if (!TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &width) || !TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &height) ||
        width == 0 || height == 0) {
        fail_decode(label, "is a TIFF file without a valid image size");
    }
    check_size(width, height);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_EXTRASAMPLES, &extra, &kinds);
    uint16_t stored = ORIENTATION_TOPLEFT;
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_ORIENTATION, &stored);
    orientation = stored >= 1 && stored <= 8 ? stored : 1;
    // Asked in the file's own orientation, libtiff flips nothing: rows as stored, top first.
    std::vector<uint32_t> raster(static_cast<size_t>(width) * height);
    if (!TIFFReadRGBAImageOriented(tif.get(), width, height, raster.data(), orientation, 0)) {
        fail_decode(label, "is a corrupt or truncated TIFF file");
    }
    n = extra > 0 ? 4 : 3;
    // libtiff's RGBA reader premultiplies unassociated alpha: divide it back out (the colour of
    // partly transparent pixels is then within rounding of the file's).
    const bool unassociated = extra > 0 && kinds && kinds[0] == EXTRASAMPLE_UNASSALPHA;
    w = static_cast<int>(width);
    h = static_cast<int>(height);
    auto* out = static_cast<uint8_t*>(std::malloc(raster.size() * static_cast<size_t>(n)));
    if (!out) throw std::bad_alloc();
    for (size_t i = 0; i < raster.size(); ++i) {
        const uint32_t p = raster[i];
        const uint32_t a = TIFFGetA(p);
        const auto colour = [&](uint32_t c) {
            if (!unassociated || a == 255) return static_cast<uint8_t>(c);
            return static_cast<uint8_t>(a == 0 ? 0 : std::min<uint32_t>(255, (c * 255 + a / 2) / a));
        };
        out[i * n] = colour(TIFFGetR(p));
        out[i * n + 1] = colour(TIFFGetG(p));
        out[i * n + 2] = colour(TIFFGetB(p));
        if (n == 4) out[i * n + 3] = static_cast<uint8_t>(a);
    }
    return Pixels(out, &std::free);
#else
    (void)data, (void)size, (void)check_size, (void)w, (void)h, (void)n, (void)orientation;
    fail(LIMN_ERR_UNSUPPORTED, label + " is a TIFF file, and this limn was built without libtiff "
                                       "(install libtiff-dev and rebuild)");
#endif
}

// WebP through libwebp: the size from the header is checked before the pixels are decoded.
Pixels decode_webp(const uint8_t* data, size_t size, const std::string& label,
                   const std::function<void(uint64_t, uint64_t)>& check_size, int& w, int& h, int& n) {
#if LIMN_WITH_WEBP
    WebPBitstreamFeatures features;
    if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK || features.width <= 0 || features.height <= 0) {
        fail_decode(label, "is a corrupt or truncated WebP file");
    }
    if (features.has_animation) fail_animated(label, "an animated WebP file");
    check_size(static_cast<uint64_t>(features.width), static_cast<uint64_t>(features.height));
    n = features.has_alpha ? 4 : 3;
    uint8_t* p = n == 4 ? WebPDecodeRGBA(data, size, &w, &h) : WebPDecodeRGB(data, size, &w, &h);
    if (!p) fail_decode(label, "is a corrupt or truncated WebP file");
    return Pixels(p, &webp_free);
#else
    (void)data, (void)size, (void)check_size, (void)w, (void)h, (void)n;
    fail(LIMN_ERR_UNSUPPORTED, label + " is a WebP file, and this limn was built without libwebp "
                                       "(install libwebp-dev and rebuild)");
#endif
}

size_t decode_stb(const uint8_t* data, size_t size, const std::string& label, const LoadOptions& options,
                  const std::function<void(uint64_t, uint64_t)>& check_size, int& w, int& h, int& n, bool& wide,
                  Pixels& pixels);

OwnedImage decode(const uint8_t* data, size_t size, const std::string& label, const LoadOptions& options) {
    if (size == 0) fail(LIMN_ERR_INVALID_IMAGE, label + " is empty (0 bytes)");
    std::vector<uint8_t> cleaned;
    if (is_png(data, size)) {
        cleaned = png_without_empty_idat(data, size);
        if (!cleaned.empty()) {
            data = cleaned.data();
            size = cleaned.size();
        }
    }
    if (size > kMaxEncodedBytes) {
        fail(LIMN_ERR_IMAGE_TOO_LARGE, label + " is " + std::to_string(size) + " bytes; images over " +
                                           std::to_string(kMaxEncodedBytes) + " bytes are not supported");
    }
    const auto check_size = [&](uint64_t w, uint64_t h) {
        if (options.max_pixels > 0 && w * h > options.max_pixels) {
            fail(LIMN_ERR_IMAGE_TOO_LARGE, label + " is " + std::to_string(w) + "x" + std::to_string(h) +
                                               " (" + std::to_string(w * h) +
                                               " pixels), over the limit of " +
                                               std::to_string(options.max_pixels) + " pixels");
        }
    };
    int w = 0, h = 0, n = 0;
    bool wide = false;  // 16-bit samples, kept only when they survive the conversion, i.e. into float
    Pixels pixels(nullptr, &stb_free);
    if (gif_frames(data, size) > 1) {
        fail_animated(label, "an animated GIF file (" + std::to_string(gif_frames(data, size)) + " frames)");
    }
    const bool other = is_webp(data, size) || is_tiff(data, size);  // not stb_image's
    const size_t jpeg_at = other ? 0 : decode_stb(data, size, label, options, check_size, w, h, n, wide, pixels);
    if (is_webp(data, size)) pixels = decode_webp(data, size, label, check_size, w, h, n);
    int tiff_orientation = 1;
    if (is_tiff(data, size)) pixels = decode_tiff(data, size, label, check_size, w, h, n, tiff_orientation);
    if (w <= 0 || h <= 0 || n < 1 || n > 4) {
        fail(LIMN_ERR_INVALID_IMAGE, label + " decoded to an unusable " + std::to_string(w) + "x" +
                                         std::to_string(h) + " image with " + std::to_string(n) +
                                         " channels");
    }
    // The header read above and the decoder agree, but do not rely on it.
    check_size(static_cast<uint64_t>(w), static_cast<uint64_t>(h));

    const int orientation = !options.apply_orientation ? 1
                            : jpeg_at > 0 ? jpeg_exif_orientation(data + jpeg_at - 2, size - (jpeg_at - 2))
                            : is_png(data, size) ? png_exif_orientation(data, size)
                                                 : tiff_orientation;
    // stb gives every GIF an alpha channel; one without a transparent colour is an RGB picture.
    const bool opaque_gif = is_gif(data, size) && n == 4 && !wide && all_opaque(static_cast<const uint8_t*>(pixels.get()), w, h);
    const limn_pixel_format format = options.format != 0                    ? options.format
                                     : (n == 2 || n == 4) && !opaque_gif ? LIMN_PIXEL_RGBA8
                                                                          : LIMN_PIXEL_RGB8;
    const bool swapped = orientation >= 5;
    OwnedImage out = allocate_image(swapped ? h : w, swapped ? w : h, format);
    const Walk walk = walk_for(orientation, w, h);
    if (wide) {
        convert_pixels(static_cast<const uint16_t*>(pixels.get()), n, walk, *out);
    } else {
        convert_pixels(static_cast<const uint8_t*>(pixels.get()), n, walk, *out);
    }
    return out;
}

// The stb_image formats: checks what stb would trip on, decodes into `pixels`; returns where a
// JPEG's body starts (0 for other formats), for its EXIF.
size_t decode_stb(const uint8_t* data, size_t size, const std::string& label, const LoadOptions& options,
                  const std::function<void(uint64_t, uint64_t)>& check_size, int& w, int& h, int& n, bool& wide,
                  Pixels& pixels) {
    const int length = static_cast<int>(size);
    // JPEG first: the walk guards stb against tables it would overflow, and stbi_info reads them.
    const size_t jpeg_at = jpeg_body(data, size);
    if (jpeg_at > 0) {
        switch (check_jpeg(data, size, jpeg_at)) {
            case JpegCheck::kComplete: break;
            case JpegCheck::kTruncated:
                fail(LIMN_ERR_INVALID_IMAGE,
                     label + " is truncated (its JPEG data ends before the end-of-image marker)");
            case JpegCheck::kBadHuffmanTable:
                fail(LIMN_ERR_INVALID_IMAGE, label + " is corrupt (a JPEG Huffman table has over 256 codes)");
        }
    }
    if (!pnm_numbers_fit(data, size)) {
        fail(LIMN_ERR_INVALID_IMAGE, label + " is corrupt (a PNM header number is too large)");
    }
    uint32_t png_width = 0, png_height = 0;
    if (png_header_size(data, size, png_width, png_height)) check_size(png_width, png_height);

    int width = 0, height = 0, channels = 0;
    {
        const AllocationCap cap(2 * static_cast<uint64_t>(size) + kDecoderStateBytes);
        if (!stbi_info_from_memory(data, length, &width, &height, &channels)) {
            if (png_width > 0 && png_too_large_for_stb(data, png_width, png_height)) {
                fail(LIMN_ERR_IMAGE_TOO_LARGE, label + " is " + std::to_string(png_width) + "x" +
                                                   std::to_string(png_height) +
                                                   ", larger than the PNG decoder supports");
            }
            fail_decode(label, "is not an image of a known format, or is corrupt");
        }
        wide = options.format != 0 && is_float(options.format) && stbi_is_16_bit_from_memory(data, length);
    }
    if (width <= 0 || height <= 0) {
        fail(LIMN_ERR_INVALID_IMAGE, label + " has an invalid size " + std::to_string(width) + "x" +
                                         std::to_string(height));
    }
    check_size(static_cast<uint64_t>(width), static_cast<uint64_t>(height));

    {
        const AllocationCap cap(decode_allocation_cap(width, height, size));
        pixels.reset(wide ? static_cast<void*>(stbi_load_16_from_memory(data, length, &w, &h, &n, 0))
                          : static_cast<void*>(stbi_load_from_memory(data, length, &w, &h, &n, 0)));
        if (!pixels) fail_decode(label, "is corrupt or truncated");
        if (t_check_failed) {
            fail(LIMN_ERR_INVALID_IMAGE, label + " is corrupt (a consistency check in the decoder failed)");
        }
    }
    return jpeg_at;
}

// ---- encoding -----------------------------------------------------------------------------------

// Keeps stb_image_write's int sizes (and its growth of buffers by doubling) far from overflow.
constexpr uint64_t kMaxPackedBytes = uint64_t{1} << 29;
// JPEG and TGA headers store the width and height in 16 bits; WebP's in 14.
constexpr int32_t kMaxJpegTgaSide = 65535;
constexpr int32_t kMaxWebpSide = 16383;

inline uint8_t quantize(float v) {
    if (!(v > 0.0f)) return 0;  // NaN included
    if (v >= 1.0f) return 255;
    return static_cast<uint8_t>(v * 255.0f + 0.5f);
}

// The pixels as tightly packed 8-bit RGB (oc = 3) or RGBA (oc = 4).
std::vector<uint8_t> pack_rgb(const limn_image& image, int oc) {
    const int ic = channels_of(image.format);
    const bool from_float = is_float(image.format);
    const int r_at = is_bgr(image.format) ? 2 : 0;
    const int b_at = 2 - r_at;
    std::vector<uint8_t> out(static_cast<size_t>(image.width) * image.height * oc);
    uint8_t* d = out.data();
    for (int y = 0; y < image.height; ++y) {
        const uint8_t* row = image.data + static_cast<size_t>(y) * image.stride;
        for (int x = 0; x < image.width; ++x, d += oc) {
            if (from_float) {
                float s[4];
                std::memcpy(s, row + static_cast<size_t>(x) * ic * sizeof(float), ic * sizeof(float));
                for (int k = 0; k < oc; ++k) d[k] = quantize(s[k]);
            } else {
                const uint8_t* s = row + static_cast<size_t>(x) * ic;
                d[0] = s[r_at];
                d[1] = s[1];
                d[2] = s[b_at];
                if (oc == 4) d[3] = s[3];
            }
        }
    }
    return out;
}

// Collects what stb_image_write produces; an allocation failure is remembered, not thrown through
// stb's C code.
struct Sink {
    std::vector<uint8_t> bytes;
    bool out_of_memory = false;

    static void append(void* context, void* data, int size) {
        auto* sink = static_cast<Sink*>(context);
        if (sink->out_of_memory || size <= 0) return;
        try {
            const auto* p = static_cast<const uint8_t*>(data);
            sink->bytes.insert(sink->bytes.end(), p, p + size);
        } catch (const std::bad_alloc&) {
            sink->out_of_memory = true;
        }
    }
};

}  // namespace

OwnedImage load_image_file(const std::string& path, const LoadOptions& options) {
    check_load_options(options);
    const std::vector<uint8_t> bytes = read_file(path);
    return decode(bytes.data(), bytes.size(), file_label(path), options);
}

OwnedImage load_image_memory(const void* data, size_t size, const std::string& name,
                             const LoadOptions& options) {
    check_load_options(options);
    const std::string label = "image '" + name + "'";
    if (!data && size > 0) fail(LIMN_ERR_INVALID_ARGUMENT, label + ": data is NULL");
    return decode(static_cast<const uint8_t*>(data), size, label, options);
}

limn_file_format file_format_for_path(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    const size_t dot = path.find_last_of('.');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
        std::string ext = path.substr(dot + 1);
        for (char& c : ext) {
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        }
        const std::optional<int32_t> format = value_of(LIMN_NAMES_FILE_FORMAT, ext);
        if (format && *format != LIMN_FILE_FORMAT_AUTO) return static_cast<limn_file_format>(*format);
    }
    fail(LIMN_ERR_INVALID_ARGUMENT, "cannot tell the image file format of '" + path +
                                        "' from its extension (supported: .png, .jpg, .jpeg, .bmp, .tga, .webp)");
}

void check_save_options(const SaveOptions& options) {
    if (options.jpeg_quality < 1 || options.jpeg_quality > 100) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid jpeg_quality " + std::to_string(options.jpeg_quality) +
                                            ": expected 1..100");
    }
}

namespace {

// The checks encode_image makes before any work: the image, the options, the format's size limits
// and the ICC profile. Returns the channels to write (3 for JPEG, else the image's).
int check_encode(const limn_image& image, const SaveOptions& options) {
    check_image(&image, "encoded", 0);
    if (options.file_format == LIMN_FILE_FORMAT_AUTO) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "file format AUTO needs a file name; choose PNG, JPEG, BMP, TGA or WebP");
    }
    const char* name = file_format_name(options.file_format);
    if (!name) {
        fail(LIMN_ERR_INVALID_ARGUMENT,
             "unknown image file format " + std::to_string(static_cast<int>(options.file_format)));
    }
    check_save_options(options);
    const bool jpeg = options.file_format == LIMN_FILE_FORMAT_JPEG;
    const bool webp = options.file_format == LIMN_FILE_FORMAT_WEBP;
    const int w = image.width, h = image.height;
    const auto too_large = [&](const std::string& limit) {
        fail(LIMN_ERR_IMAGE_TOO_LARGE, "image " + std::to_string(w) + "x" + std::to_string(h) +
                                           " is too large to encode as " + name + " (" + limit + ")");
    };
    const bool sides_16bit = jpeg || options.file_format == LIMN_FILE_FORMAT_TGA;
    if (sides_16bit && (w > kMaxJpegTgaSide || h > kMaxJpegTgaSide)) {
        too_large("at most " + std::to_string(kMaxJpegTgaSide) + " pixels a side");
    }
#if !LIMN_WITH_WEBP
    if (webp) fail(LIMN_ERR_UNSUPPORTED, "this limn was built without libwebp: it cannot write WebP "
                                         "(install libwebp-dev and rebuild)");
#endif
    if (webp && (w > kMaxWebpSide || h > kMaxWebpSide)) too_large("at most " + std::to_string(kMaxWebpSide) + " pixels a side");
    const int oc = jpeg ? 3 : channels_of(image.format);
    if (static_cast<uint64_t>(w) * static_cast<uint64_t>(h) * oc > kMaxPackedBytes) {
        too_large("at most " + std::to_string(kMaxPackedBytes) + " bytes of pixels");
    }
    check_icc_profile(options.icc_profile);
    return oc;
}

// libwebp: quality 100 is lossless, exact (the colour under transparent pixels kept too); below
// it, lossy at that quality. False if it failed.
bool encode_webp(const std::vector<uint8_t>& packed, int w, int h, int oc, int quality, Sink& sink) {
#if LIMN_WITH_WEBP
    WebPConfig config;
    WebPPicture picture;
    WebPMemoryWriter writer;
    WebPMemoryWriterInit(&writer);
    bool ok = false;
    if (WebPConfigInit(&config) && WebPPictureInit(&picture)) {
        const bool lossless = quality == 100;
        if (lossless) {
            WebPConfigLosslessPreset(&config, 3);
            config.exact = 1;
        } else {
            config.quality = static_cast<float>(quality);
        }
        picture.use_argb = lossless ? 1 : 0;
        picture.width = w;
        picture.height = h;
        picture.writer = WebPMemoryWrite;
        picture.custom_ptr = &writer;
        const int imported = oc == 4 ? WebPPictureImportRGBA(&picture, packed.data(), w * oc)
                                     : WebPPictureImportRGB(&picture, packed.data(), w * oc);
        ok = imported && WebPEncode(&config, &picture);
        if (ok) sink.bytes.assign(writer.mem, writer.mem + writer.size);
        WebPPictureFree(&picture);
    }
    WebPMemoryWriterClear(&writer);
    return ok;
#else
    (void)packed, (void)w, (void)h, (void)oc, (void)quality, (void)sink;
    return false;
#endif
}

}  // namespace

std::vector<uint8_t> encode_image(const limn_image& image, const SaveOptions& options) {
    const int oc = check_encode(image, options);
    const int w = image.width, h = image.height;
    const std::vector<uint8_t> packed = pack_rgb(image, oc);
    Sink sink;
    int ok = 0;
    switch (options.file_format) {
        case LIMN_FILE_FORMAT_PNG:
            ok = stbi_write_png_to_func(&Sink::append, &sink, w, h, oc, packed.data(), w * oc);
            break;
        case LIMN_FILE_FORMAT_JPEG:
            ok = stbi_write_jpg_to_func(&Sink::append, &sink, w, h, oc, packed.data(), options.jpeg_quality);
            break;
        case LIMN_FILE_FORMAT_BMP:
            ok = stbi_write_bmp_to_func(&Sink::append, &sink, w, h, oc, packed.data());
            break;
        case LIMN_FILE_FORMAT_TGA:
            ok = stbi_write_tga_to_func(&Sink::append, &sink, w, h, oc, packed.data());
            break;
        case LIMN_FILE_FORMAT_WEBP:
            ok = encode_webp(packed, w, h, oc, options.jpeg_quality, sink);
            break;
        case LIMN_FILE_FORMAT_AUTO: break;
    }
    if (sink.out_of_memory) throw std::bad_alloc();
    if (!ok || sink.bytes.empty()) {
        // With the arguments checked above, stb_image_write fails only when its allocations do.
        const bool webp = options.file_format == LIMN_FILE_FORMAT_WEBP;
        fail(LIMN_ERR_INTERNAL, std::string(webp ? "libwebp" : "stb_image_write") + " could not encode the image as " +
                                    file_format_name(options.file_format) + " (out of memory?)");
    }
    return embed_icc_profile(std::move(sink.bytes), options.file_format, options.icc_profile, oc == 4, w, h);
}

std::vector<uint8_t> read_icc_profile_file(const std::string& path) {
    const std::vector<uint8_t> bytes = read_file(path);
    return find_icc_profile(bytes.data(), bytes.size());
}

std::vector<uint8_t> deflate_zlib(const std::vector<uint8_t>& data) {
    if (data.size() > static_cast<size_t>(INT_MAX)) throw std::bad_alloc();
    int size = 0;
    unsigned char* stream = stbi_zlib_compress(const_cast<unsigned char*>(data.data()), static_cast<int>(data.size()),
                                               &size, 8);
    if (!stream) throw std::bad_alloc();
    std::vector<uint8_t> out(stream, stream + size);
    STBIW_FREE(stream);
    return out;
}

bool inflate_zlib(const uint8_t* data, size_t size, size_t max_bytes, std::vector<uint8_t>& out) {
    if (size > static_cast<size_t>(INT_MAX) || max_bytes > static_cast<size_t>(INT_MAX)) return false;
    // A first guess from deflate's usual ratios, then the whole allowance.
    for (size_t capacity : {std::min(max_bytes, size * 16 + 4096), max_bytes}) {
        out.resize(capacity);
        const int n = stbi_zlib_decode_buffer(reinterpret_cast<char*>(out.data()), static_cast<int>(capacity),
                                              reinterpret_cast<const char*>(data), static_cast<int>(size));
        if (n >= 0) {
            out.resize(static_cast<size_t>(n));
            // stb does not check the stream's Adler-32 (its last 4 bytes, big-endian).
            uint32_t a = 1, b = 0;
            for (const uint8_t byte : out) {
                a = (a + byte) % 65521;
                b = (b + a) % 65521;
            }
            const uint8_t* end = data + size;
            const uint32_t stored = size < 6 ? ~0u
                                             : (uint32_t{end[-4]} << 24) | (uint32_t{end[-3]} << 16) |
                                                   (uint32_t{end[-2]} << 8) | uint32_t{end[-1]};
            if (stored == ((b << 16) | a)) return true;
            break;
        }
        if (capacity == max_bytes) break;
    }
    out.clear();
    return false;
}

void save_image_file(const std::string& path, const limn_image& image, const SaveOptions& options) {
    if (path.empty()) fail(LIMN_ERR_INVALID_ARGUMENT, "cannot save an image to an empty path");
    SaveOptions resolved = options;
    if (resolved.file_format == LIMN_FILE_FORMAT_AUTO) resolved.file_format = file_format_for_path(path);
    const std::string what = "cannot write " + file_label(path);
    std::vector<uint8_t> bytes;
    try {
        bytes = encode_image(image, resolved);
    } catch (const Failure& f) {
        throw Failure(f.status(), what + ": " + f.what());
    }
    write_file_atomic(path, bytes.data(), bytes.size(), what);
}

}  // namespace limn::core
