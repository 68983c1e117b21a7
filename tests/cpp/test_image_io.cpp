// Image files (white-box: src/image_io.h, src/exif.h): every save format and pixel format round
// trips, EXIF orientation, malformed and hostile files, and saving that never leaves a partial or
// temporary file. All images are generated here.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "exif.h"
#include "icc.h"
#include "image_io.h"
#include "pixels.h"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

// ---- scaffolding ---------------------------------------------------------------------------------

// A fresh, empty directory per test, removed with everything in it.
class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() /
                ("limn-image-io-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const fs::path& path() const { return path_; }
    // Names of the entries in the directory.
    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
        return names;
    }
    bool has_temporaries() const {
        for (const auto& name : entries()) {
            if (name.find(".limn-tmp-") != std::string::npos) return true;
        }
        return false;
    }

private:
    fs::path path_;
};

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out);
}

// The status and message a call fails with (LIMN_OK and "" when it does not).
struct Outcome {
    limn_status status = LIMN_OK;
    std::string message;
};

Outcome outcome(const std::function<void()>& call) {
    try {
        call();
        return {};
    } catch (const limn::core::Failure& f) {
        return {f.status(), f.what()};
    }
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

uint32_t next_random(uint32_t& state) {
    state = state * 1664525u + 1013904223u;
    return state >> 24;
}

// A caller-owned image in any pixel format, with `pad` bytes of padding after each row.
struct TestImage {
    std::vector<uint8_t> storage;
    limn_image img{};

    TestImage(int w, int h, limn_pixel_format f, size_t pad = 0) {
        const size_t stride = static_cast<size_t>(w) * limn::core::bytes_per_pixel(f) + pad;
        storage.assign(stride * h + 16, 0xCD);
        img = limn_image{storage.data(), w, h, stride, f};
    }

    // Sets a pixel from 8-bit RGBA (floats hold v / 255); alpha is ignored without an alpha channel.
    void set(int x, int y, std::array<int, 4> rgba) {
        const int c = limn::core::channels_of(img.format);
        uint8_t* row = img.data + static_cast<size_t>(y) * img.stride;
        if (limn::core::is_float(img.format)) {
            for (int k = 0; k < c; ++k) {
                const float v = static_cast<float>(rgba[k]) / 255.0f;
                std::memcpy(row + (static_cast<size_t>(x) * c + k) * sizeof(float), &v, sizeof v);
            }
        } else {
            uint8_t* p = row + static_cast<size_t>(x) * c;
            const bool bgr = limn::core::is_bgr(img.format);
            p[0] = static_cast<uint8_t>(rgba[bgr ? 2 : 0]);
            p[1] = static_cast<uint8_t>(rgba[1]);
            p[2] = static_cast<uint8_t>(rgba[bgr ? 0 : 2]);
            if (c == 4) p[3] = static_cast<uint8_t>(rgba[3]);
        }
    }

    void fill_random(unsigned seed) {
        uint32_t s = seed * 2654435761u + 1u;
        for (int y = 0; y < img.height; ++y) {
            for (int x = 0; x < img.width; ++x) {
                set(x, y,
                    {static_cast<int>(next_random(s)), static_cast<int>(next_random(s)),
                     static_cast<int>(next_random(s)), static_cast<int>(next_random(s))});
            }
        }
    }

    // Gradients: what JPEG reproduces well.
    void fill_smooth() {
        for (int y = 0; y < img.height; ++y) {
            for (int x = 0; x < img.width; ++x) {
                set(x, y, {x * 255 / (img.width - 1), y * 255 / (img.height - 1),
                           (x + y) * 255 / (img.width + img.height - 2), 200});
            }
        }
    }
};

// A pixel of any image as 8-bit RGBA (floats scaled by 255 and rounded; alpha 255 when absent).
std::array<int, 4> pixel(const limn_image& img, int x, int y) {
    const int c = limn::core::channels_of(img.format);
    const uint8_t* row = img.data + static_cast<size_t>(y) * img.stride;
    std::array<int, 4> rgba{0, 0, 0, 255};
    if (limn::core::is_float(img.format)) {
        for (int k = 0; k < c; ++k) {
            float v;
            std::memcpy(&v, row + (static_cast<size_t>(x) * c + k) * sizeof(float), sizeof v);
            rgba[k] = static_cast<int>(std::lround(v * 255.0f));
        }
    } else {
        const uint8_t* p = row + static_cast<size_t>(x) * c;
        const bool bgr = limn::core::is_bgr(img.format);
        rgba = {p[bgr ? 2 : 0], p[1], p[bgr ? 0 : 2], c == 4 ? p[3] : 255};
    }
    return rgba;
}

// Whether b holds a's pixels exactly (alpha compared only when both have it).
bool same_pixels(const limn_image& a, const limn_image& b) {
    if (a.width != b.width || a.height != b.height) return false;
    const bool alpha = limn::core::has_alpha(a.format) && limn::core::has_alpha(b.format);
    for (int y = 0; y < a.height; ++y) {
        for (int x = 0; x < a.width; ++x) {
            const auto p = pixel(a, x, y), q = pixel(b, x, y);
            if (p[0] != q[0] || p[1] != q[1] || p[2] != q[2] || (alpha && p[3] != q[3])) return false;
        }
    }
    return true;
}

double mean_abs_rgb_error(const limn_image& a, const limn_image& b) {
    double sum = 0;
    for (int y = 0; y < a.height; ++y) {
        for (int x = 0; x < a.width; ++x) {
            const auto p = pixel(a, x, y), q = pixel(b, x, y);
            for (int k = 0; k < 3; ++k) sum += std::abs(p[k] - q[k]);
        }
    }
    return sum / (3.0 * a.width * a.height);
}

limn::core::LoadOptions load_as(limn_pixel_format format) {
    limn::core::LoadOptions o;
    o.format = format;
    return o;
}

limn::core::SaveOptions save_as(limn_file_format format, int quality = 95) {
    limn::core::SaveOptions o;
    o.file_format = format;
    o.jpeg_quality = quality;
    return o;
}

Bytes encode(const limn_image& img, limn_file_format format, int quality = 95) {
    return limn::core::encode_image(img, save_as(format, quality));
}

limn::core::OwnedImage load(const Bytes& bytes, const limn::core::LoadOptions& options = {}) {
    return limn::core::load_image_memory(bytes.data(), bytes.size(), "<memory>", options);
}

Outcome load_outcome(const Bytes& bytes, const limn::core::LoadOptions& options = {}) {
    return outcome([&] { load(bytes, options); });
}

const std::array<limn_pixel_format, 6> kPixelFormats = {LIMN_PIXEL_RGB8,   LIMN_PIXEL_RGBA8,
                                                        LIMN_PIXEL_BGR8,   LIMN_PIXEL_BGRA8,
                                                        LIMN_PIXEL_RGB32F, LIMN_PIXEL_RGBA32F};

// ---- hand-made files -----------------------------------------------------------------------------

void put16be(Bytes& b, uint32_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}
void put32be(Bytes& b, uint32_t v) {
    put16be(b, v >> 16);
    put16be(b, v & 0xFFFF);
}
void put16le(Bytes& b, uint32_t v) {
    b.push_back(static_cast<uint8_t>(v));
    b.push_back(static_cast<uint8_t>(v >> 8));
}
void put32le(Bytes& b, uint32_t v) {
    put16le(b, v & 0xFFFF);
    put16le(b, v >> 16);
}

uint32_t crc32(const uint8_t* p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

uint32_t adler32(const Bytes& data) {
    uint32_t a = 1, b = 0;
    for (uint8_t v : data) {
        a = (a + v) % 65521;
        b = (b + a) % 65521;
    }
    return (b << 16) | a;
}

void png_chunk(Bytes& png, const char* type, const Bytes& data) {
    put32be(png, static_cast<uint32_t>(data.size()));
    const size_t start = png.size();
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), data.begin(), data.end());
    put32be(png, crc32(png.data() + start, png.size() - start));
}

// zlib stream of stored (uncompressed) deflate blocks.
Bytes zlib_stored(const Bytes& raw) {
    Bytes z = {0x78, 0x01};
    size_t at = 0;
    do {
        const size_t n = std::min<size_t>(raw.size() - at, 65535);
        z.push_back(at + n == raw.size() ? 1 : 0);
        put16le(z, static_cast<uint32_t>(n));
        put16le(z, static_cast<uint32_t>(~n & 0xFFFF));
        z.insert(z.end(), raw.begin() + at, raw.begin() + at + n);
        at += n;
    } while (at < raw.size());
    put32be(z, adler32(raw));
    return z;
}

// A zlib stream that inflates to 1 + 258 * matches zero bytes, in about 13 bits a match: one
// fixed-Huffman block with a literal 0 and then copies of length 258 at distance 1.
Bytes zlib_zero_bomb(size_t matches) {
    Bytes z = {0x78, 0x01};
    uint32_t bits = 0;
    int nbits = 0;
    const auto put_bits = [&](uint32_t value, int n) {  // LSB first, as deflate packs
        bits |= value << nbits;
        nbits += n;
        while (nbits >= 8) {
            z.push_back(static_cast<uint8_t>(bits));
            bits >>= 8;
            nbits -= 8;
        }
    };
    const auto put_code = [&](uint32_t code, int n) {  // Huffman codes go MSB first
        for (int i = n - 1; i >= 0; --i) put_bits((code >> i) & 1, 1);
    };
    put_bits(1, 1);           // final block
    put_bits(1, 2);           // fixed Huffman codes
    put_code(0x30, 8);        // literal 0
    for (size_t i = 0; i < matches; ++i) {
        put_code(0xC5, 8);    // length 258 (code 285)
        put_code(0, 5);       // distance 1
    }
    put_code(0, 7);           // end of block
    if (nbits > 0) put_bits(0, 8 - nbits);
    put32be(z, (static_cast<uint32_t>((1 + 258 * matches) % 65521) << 16) | 1);
    return z;
}

Bytes png_signature() { return {137, 80, 78, 71, 13, 10, 26, 10}; }

Bytes ihdr(uint32_t w, uint32_t h, int depth, int color_type) {
    Bytes d;
    put32be(d, w);
    put32be(d, h);
    d.push_back(static_cast<uint8_t>(depth));
    d.push_back(static_cast<uint8_t>(color_type));
    d.push_back(0);
    d.push_back(0);
    d.push_back(0);
    return d;
}

// A PNG from rows of samples (big-endian for 16 bits), each row given without its filter byte.
Bytes make_png(int w, int h, int depth, int color_type, const Bytes& samples, const Bytes& trns = {}) {
    const size_t row = samples.size() / h;
    Bytes raw;
    for (int y = 0; y < h; ++y) {
        raw.push_back(0);
        raw.insert(raw.end(), samples.begin() + y * row, samples.begin() + (y + 1) * row);
    }
    Bytes png = png_signature();
    png_chunk(png, "IHDR", ihdr(w, h, depth, color_type));
    if (!trns.empty()) png_chunk(png, "tRNS", trns);
    png_chunk(png, "IDAT", zlib_stored(raw));
    png_chunk(png, "IEND", {});
    return png;
}

// A BMP header (BITMAPINFOHEADER, 24 bits) with no pixel data.
Bytes bmp_header(int32_t w, int32_t h) {
    Bytes b = {'B', 'M'};
    put32le(b, 54);
    put32le(b, 0);
    put32le(b, 54);
    put32le(b, 40);
    put32le(b, static_cast<uint32_t>(w));
    put32le(b, static_cast<uint32_t>(h));
    put16le(b, 1);
    put16le(b, 24);
    for (int i = 0; i < 6; ++i) put32le(b, 0);
    return b;
}

// ---- EXIF ----------------------------------------------------------------------------------------

struct IfdEntry {
    uint16_t tag;
    uint16_t type;
    uint32_t count;
    uint32_t value;  // a SHORT goes in the first two bytes of the value field
};

// A TIFF structure (what follows "Exif\0\0") with one IFD at `ifd_offset`.
Bytes make_tiff(bool big_endian, const std::vector<IfdEntry>& entries, uint32_t ifd_offset = 8,
                uint32_t next_ifd = 0, int declared_count = -1) {
    Bytes t;
    const auto u16 = [&](uint32_t v) { big_endian ? put16be(t, v) : put16le(t, v); };
    const auto u32 = [&](uint32_t v) { big_endian ? put32be(t, v) : put32le(t, v); };
    t.push_back(big_endian ? 'M' : 'I');
    t.push_back(big_endian ? 'M' : 'I');
    u16(42);
    u32(ifd_offset);
    if (ifd_offset < 4096) {
        while (t.size() < ifd_offset) t.push_back(0);
    }
    u16(declared_count >= 0 ? static_cast<uint32_t>(declared_count) : static_cast<uint32_t>(entries.size()));
    for (const auto& e : entries) {
        u16(e.tag);
        u16(e.type);
        u32(e.count);
        if (e.type == 3) {
            u16(e.value);
            u16(0);
        } else {
            u32(e.value);
        }
    }
    u32(next_ifd);
    return t;
}

Bytes tiff_with_orientation(bool big_endian, uint32_t orientation) {
    // A Make tag (ASCII, pointing elsewhere) first, so the parser has to walk past an entry.
    return make_tiff(big_endian, {{0x010F, 2, 6, 100}, {0x0112, 3, 1, orientation}});
}

Bytes exif_payload(const Bytes& tiff) {
    Bytes p(6 + tiff.size());
    const char header[6] = {'E', 'x', 'i', 'f', 0, 0};
    std::memcpy(p.data(), header, 6);
    if (!tiff.empty()) std::memcpy(p.data() + 6, tiff.data(), tiff.size());
    return p;
}

// `jpeg` with an APP1 segment holding `payload` right after SOI.
Bytes with_app1(const Bytes& jpeg, const Bytes& payload) {
    Bytes out(jpeg.begin(), jpeg.begin() + 2);
    out.push_back(0xFF);
    out.push_back(0xE1);
    put16be(out, static_cast<uint32_t>(payload.size() + 2));
    out.insert(out.end(), payload.begin(), payload.end());
    out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
    return out;
}

const std::array<int, 4> kRed{255, 0, 0, 255}, kGreen{0, 255, 0, 255}, kBlue{0, 0, 255, 255},
    kYellow{255, 255, 0, 255};

// A 32x16 JPEG whose quadrants are red (top left), green (top right), blue (bottom left) and
// yellow (bottom right); 8x8-aligned, so the corners survive compression.
Bytes quadrant_jpeg() {
    TestImage img(32, 16, LIMN_PIXEL_RGB8);
    for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 32; ++x) {
            img.set(x, y, y < 8 ? (x < 16 ? kRed : kGreen) : (x < 16 ? kBlue : kYellow));
        }
    }
    return encode(img.img, LIMN_FILE_FORMAT_JPEG, 100);
}

bool near(const std::array<int, 4>& p, const std::array<int, 4>& q) {
    for (int k = 0; k < 3; ++k) {
        if (std::abs(p[k] - q[k]) > 40) return false;
    }
    return true;
}

// Top-left, top-right, bottom-left, bottom-right.
std::array<std::array<int, 4>, 4> corners(const limn_image& img) {
    const int r = img.width - 1, b = img.height - 1;
    return {pixel(img, 0, 0), pixel(img, r, 0), pixel(img, 0, b), pixel(img, r, b)};
}

bool corners_are(const limn_image& img, const std::array<std::array<int, 4>, 4>& want) {
    const auto got = corners(img);
    for (int i = 0; i < 4; ++i) {
        if (!near(got[i], want[i])) return false;
    }
    return true;
}

}  // namespace

// ---- file formats ----------------------------------------------------------------------------------

TEST_CASE("file formats come from extensions, case-insensitively") {
    CHECK(limn::core::file_format_for_path("a.png") == LIMN_FILE_FORMAT_PNG);
    CHECK(limn::core::file_format_for_path("dir.x/A.PNG") == LIMN_FILE_FORMAT_PNG);
    CHECK(limn::core::file_format_for_path("a.jpg") == LIMN_FILE_FORMAT_JPEG);
    CHECK(limn::core::file_format_for_path("a.JpEg") == LIMN_FILE_FORMAT_JPEG);
    CHECK(limn::core::file_format_for_path("/tmp/a.b.bmp") == LIMN_FILE_FORMAT_BMP);
    CHECK(limn::core::file_format_for_path("a.Tga") == LIMN_FILE_FORMAT_TGA);
    for (const char* bad : {"a.gif", "a", "dir.png/a", "a.png.", ".jpgx", ""}) {
        const Outcome o = outcome([&] { limn::core::file_format_for_path(bad); });
        CHECK(o.status == LIMN_ERR_INVALID_ARGUMENT);
        CHECK(contains(o.message, "'" + std::string(bad) + "'"));
        CHECK(contains(o.message, ".png, .jpg, .jpeg, .bmp, .tga"));
    }
}

// ---- round trips -----------------------------------------------------------------------------------

TEST_CASE("PNG, BMP and TGA round-trip every pixel format exactly, with padded strides") {
    for (limn_file_format file : {LIMN_FILE_FORMAT_PNG, LIMN_FILE_FORMAT_BMP, LIMN_FILE_FORMAT_TGA}) {
        for (limn_pixel_format format : kPixelFormats) {
            for (size_t pad : {size_t{0}, size_t{12}}) {
                CAPTURE(file);
                CAPTURE(format);
                CAPTURE(pad);
                TestImage src(13, 7, format, pad);
                src.fill_random(static_cast<unsigned>(file * 10 + format));
                const Bytes bytes = encode(src.img, file);

                // Back in the same format, and in the default one.
                const auto same = load(bytes, load_as(format));
                CHECK(same->format == format);
                CHECK(same_pixels(src.img, *same));
                const auto plain = load(bytes);
                CHECK(plain->format == (limn::core::has_alpha(format) ? LIMN_PIXEL_RGBA8 : LIMN_PIXEL_RGB8));
                CHECK(plain->stride == 13u * limn::core::channels_of(plain->format));
                CHECK(same_pixels(src.img, *plain));
            }
        }
    }
}

TEST_CASE("every load format converts: channel order, added alpha, float scale") {
    TestImage src(5, 3, LIMN_PIXEL_RGB8);
    src.fill_random(7);
    const Bytes png = encode(src.img, LIMN_FILE_FORMAT_PNG);
    for (limn_pixel_format format : kPixelFormats) {
        CAPTURE(format);
        const auto out = load(png, load_as(format));
        REQUIRE(out->format == format);
        CHECK(same_pixels(src.img, *out));
        for (int y = 0; y < 3; ++y) {
            for (int x = 0; x < 5; ++x) CHECK(pixel(*out, x, y)[3] == 255);  // no alpha in the file
        }
        if (limn::core::is_float(format)) {
            const auto* f = reinterpret_cast<const float*>(out->data);
            CHECK(f[0] == static_cast<float>(src.img.data[0]) / 255.0f);
            CHECK(f[1] == static_cast<float>(src.img.data[1]) / 255.0f);
        }
    }
}

TEST_CASE("float images are clamped to [0, 1] and rounded when encoded") {
    TestImage src(4, 1, LIMN_PIXEL_RGBA32F);
    const float values[16] = {-0.5f, 1.5f, NAN, 0.5f,  0.2f, 1.0f, 0.0f, 1.0f,
                              INFINITY, -INFINITY, 0.998f, 0.002f, 0.999f, 0.001f, 1e-9f, 0.25f};
    std::memcpy(src.img.data, values, sizeof values);
    const auto out = load(encode(src.img, LIMN_FILE_FORMAT_PNG), load_as(LIMN_PIXEL_RGBA8));
    const std::vector<int> want = {0, 255, 0, 128, 51, 255, 0, 255, 255, 0, 254, 1, 255, 0, 0, 64};
    for (int i = 0; i < 16; ++i) CHECK(out->data[i] == want[i]);
}

TEST_CASE("WebP: lossless at quality 100, lossy below, alpha kept, sizes checked first" *
          doctest::skip(!LIMN_WITH_WEBP)) {
    for (limn_pixel_format format : {LIMN_PIXEL_RGB8, LIMN_PIXEL_RGBA8}) {
        CAPTURE(format);
        TestImage src(37, 23, format);
        src.fill_random(5);
        const Bytes lossless = encode(src.img, LIMN_FILE_FORMAT_WEBP, 100);
        REQUIRE(lossless.size() > 12);
        CHECK(std::memcmp(lossless.data(), "RIFF", 4) == 0);
        const auto back = load(lossless, load_as(format));
        CHECK(same_pixels(src.img, *back));
        const auto lossy = load(encode(src.img, LIMN_FILE_FORMAT_WEBP, 90), load_as(format));
        CHECK(lossy->width == 37);
        CHECK(lossy->height == 23);
        // Auto: RGBA when the file has alpha.
        CHECK(load(lossless)->format == (format == LIMN_PIXEL_RGBA8 ? LIMN_PIXEL_RGBA8 : LIMN_PIXEL_RGB8));
    }
    TestImage big(300, 200, LIMN_PIXEL_RGB8);
    const Bytes file = encode(big.img, LIMN_FILE_FORMAT_WEBP, 80);
    limn::core::LoadOptions small_limit;
    small_limit.max_pixels = 1000;
    CHECK(load_outcome(file, small_limit).status == LIMN_ERR_IMAGE_TOO_LARGE);
    const Bytes cut(file.begin(), file.begin() + static_cast<ptrdiff_t>(file.size() / 2));
    const Outcome o = load_outcome(cut);
    CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
    CHECK(contains(o.message, "WebP"));
    CHECK(limn::core::file_format_for_path("photo.WEBP") == LIMN_FILE_FORMAT_WEBP);
    TestImage wide(16384, 1, LIMN_PIXEL_RGB8);
    CHECK(outcome([&] { encode(wide.img, LIMN_FILE_FORMAT_WEBP); }).status == LIMN_ERR_IMAGE_TOO_LARGE);
}

TEST_CASE("JPEG round-trips every pixel format within a tolerance and drops alpha") {
    for (limn_pixel_format format : kPixelFormats) {
        CAPTURE(format);
        TestImage src(64, 48, format, limn::core::is_float(format) ? 8 : 3);
        src.fill_smooth();
        const Bytes jpeg = encode(src.img, LIMN_FILE_FORMAT_JPEG, 95);
        REQUIRE(jpeg.size() > 4);
        CHECK(jpeg[0] == 0xFF);
        CHECK(jpeg[1] == 0xD8);
        const auto out = load(jpeg);
        CHECK(out->format == LIMN_PIXEL_RGB8);  // JPEG has no alpha
        CHECK(out->width == 64);
        CHECK(out->height == 48);
        CHECK(mean_abs_rgb_error(src.img, *out) < 2.0);
    }
    // Lower quality: smaller, still close.
    TestImage src(64, 48, LIMN_PIXEL_RGB8);
    src.fill_smooth();
    const Bytes q95 = encode(src.img, LIMN_FILE_FORMAT_JPEG, 95);
    const Bytes q20 = encode(src.img, LIMN_FILE_FORMAT_JPEG, 20);
    CHECK(q20.size() < q95.size());
    CHECK(mean_abs_rgb_error(src.img, *load(q20)) < 8.0);
    CHECK(!encode(src.img, LIMN_FILE_FORMAT_JPEG, 1).empty());
    CHECK(!encode(src.img, LIMN_FILE_FORMAT_JPEG, 100).empty());
}

TEST_CASE("every save format round-trips through a file") {
    TempDir dir;
    TestImage src(17, 9, LIMN_PIXEL_RGBA8, 4);
    src.fill_random(3);
    for (const char* name : {"a.png", "b.BMP", "c.tga", "d.jpg", "e.jpeg"}) {
        CAPTURE(name);
        const std::string path = dir.file(name);
        limn::core::save_image_file(path, src.img, {});
        const auto out = limn::core::load_image_file(path, {});
        const bool jpeg = contains(name, ".jp");
        CHECK(out->format == (jpeg ? LIMN_PIXEL_RGB8 : LIMN_PIXEL_RGBA8));
        if (!jpeg) CHECK(same_pixels(src.img, *out));
        CHECK(read_bytes(path) == encode(src.img, limn::core::file_format_for_path(path)));
    }
    // An explicit format wins over the extension.
    limn::core::save_image_file(dir.file("f.data"), src.img, save_as(LIMN_FILE_FORMAT_PNG));
    CHECK(same_pixels(src.img, *limn::core::load_image_file(dir.file("f.data"), {})));
    CHECK(!dir.has_temporaries());
    CHECK(dir.entries().size() == 6);
}

TEST_CASE("grey, grey+alpha, colour-keyed and 16-bit PNGs load as RGB(A)") {
    SUBCASE("grey becomes RGB8, grey+alpha RGBA8") {
        const auto grey = load(make_png(3, 2, 8, 0, {0, 100, 255, 7, 8, 9}));
        CHECK(grey->format == LIMN_PIXEL_RGB8);
        CHECK(pixel(*grey, 1, 0) == std::array<int, 4>{100, 100, 100, 255});
        CHECK(pixel(*grey, 2, 1) == std::array<int, 4>{9, 9, 9, 255});
        const auto ga = load(make_png(2, 1, 8, 4, {10, 20, 30, 40}));
        CHECK(ga->format == LIMN_PIXEL_RGBA8);
        CHECK(pixel(*ga, 0, 0) == std::array<int, 4>{10, 10, 10, 20});
        CHECK(pixel(*ga, 1, 0) == std::array<int, 4>{30, 30, 30, 40});
        const auto bgra = load(make_png(2, 1, 8, 4, {10, 20, 30, 40}), load_as(LIMN_PIXEL_BGRA8));
        CHECK(bgra->data[3] == 20);
        CHECK(bgra->data[4] == 30);
    }
    SUBCASE("a tRNS colour key gives the image alpha") {
        const auto keyed = load(make_png(2, 1, 8, 2, {1, 2, 3, 4, 5, 6}, {0, 1, 0, 2, 0, 3}));
        CHECK(keyed->format == LIMN_PIXEL_RGBA8);
        CHECK(pixel(*keyed, 0, 0) == std::array<int, 4>{1, 2, 3, 0});
        CHECK(pixel(*keyed, 1, 0) == std::array<int, 4>{4, 5, 6, 255});
    }
    SUBCASE("16-bit samples keep their precision in float, value / 65535") {
        const std::vector<uint16_t> v = {0, 1, 257, 12345, 65534, 65535, 40000, 300};
        Bytes samples;
        for (uint16_t s : v) put16be(samples, s);
        const Bytes png = make_png(2, 1, 16, 6, samples);  // RGBA, 16 bits
        const auto f = load(png, load_as(LIMN_PIXEL_RGBA32F));
        const auto* px = reinterpret_cast<const float*>(f->data);
        for (size_t i = 0; i < v.size(); ++i) CHECK(px[i] == static_cast<float>(v[i]) / 65535.0f);
        const auto rgb = load(png, load_as(LIMN_PIXEL_RGB32F));
        const auto* p3 = reinterpret_cast<const float*>(rgb->data);
        CHECK(p3[3] == static_cast<float>(v[4]) / 65535.0f);
        const auto bytes = load(png);
        CHECK(bytes->format == LIMN_PIXEL_RGBA8);
        for (size_t i = 0; i < v.size(); ++i) CHECK(std::abs(bytes->data[i] - v[i] / 257.0) <= 1.0);
        // 16-bit grey into RGB32F: r = g = b, alpha of 1.0 into RGBA32F.
        Bytes grey;
        put16be(grey, 1000);
        const auto g = load(make_png(1, 1, 16, 0, grey), load_as(LIMN_PIXEL_RGBA32F));
        const auto* pg = reinterpret_cast<const float*>(g->data);
        CHECK(pg[0] == 1000.0f / 65535.0f);
        CHECK(pg[2] == pg[0]);
        CHECK(pg[3] == 1.0f);
    }
}

TEST_CASE("empty IDAT chunks are skipped") {
    // stb would copy the empty chunk to a null pointer; the image is the same without it.
    const Bytes samples = {1, 2, 3, 4, 5, 6};
    const Bytes plain = make_png(2, 1, 8, 2, samples);
    Bytes with_empty = png_signature();
    png_chunk(with_empty, "IHDR", ihdr(2, 1, 8, 2));
    png_chunk(with_empty, "IDAT", {});
    png_chunk(with_empty, "IDAT", zlib_stored({0, 1, 2, 3, 4, 5, 6}));
    png_chunk(with_empty, "IDAT", {});
    png_chunk(with_empty, "IEND", {});
    const auto a = load(plain), b = load(with_empty);
    CHECK(same_pixels(*a, *b));
    CHECK(pixel(*b, 1, 0) == std::array<int, 4>{4, 5, 6, 255});
    // Only empty IDAT chunks: no image data at all.
    Bytes no_data = png_signature();
    png_chunk(no_data, "IHDR", ihdr(2, 1, 8, 2));
    png_chunk(no_data, "IDAT", {});
    png_chunk(no_data, "IEND", {});
    CHECK(load_outcome(no_data).status == LIMN_ERR_INVALID_IMAGE);
}

TEST_CASE("images load from memory under the given name") {
    TestImage src(3, 3, LIMN_PIXEL_RGB8);
    src.fill_random(1);
    const Bytes png = encode(src.img, LIMN_FILE_FORMAT_PNG);
    const auto out = limn::core::load_image_memory(png.data(), png.size(), "<memory>", {});
    CHECK(same_pixels(src.img, *out));
    Bytes junk = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const Outcome o = outcome([&] { limn::core::load_image_memory(junk.data(), junk.size(), "<memory>", {}); });
    CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
    CHECK(contains(o.message, "'<memory>'"));
    CHECK(outcome([&] { limn::core::load_image_memory(nullptr, 10, "<memory>", {}); }).status ==
          LIMN_ERR_INVALID_ARGUMENT);
    CHECK(outcome([&] { limn::core::load_image_memory(nullptr, 0, "<memory>", {}); }).status ==
          LIMN_ERR_INVALID_IMAGE);
}

// ---- EXIF orientation --------------------------------------------------------------------------

TEST_CASE("EXIF orientations 1 to 8 turn JPEG pixels upright, in both byte orders") {
    const Bytes jpeg = quadrant_jpeg();
    const auto R = kRed, G = kGreen, B = kBlue, Y = kYellow;
    // Corners (TL, TR, BL, BR) as displayed for each orientation of the stored R G / B Y.
    const std::array<std::array<std::array<int, 4>, 4>, 9> upright = {{
        {R, G, B, Y},  // (unused)
        {R, G, B, Y},  // 1 as stored
        {G, R, Y, B},  // 2 mirrored horizontally
        {Y, B, G, R},  // 3 rotated 180
        {B, Y, R, G},  // 4 mirrored vertically
        {R, B, G, Y},  // 5 transposed
        {B, R, Y, G},  // 6 rotated 90 clockwise
        {Y, G, B, R},  // 7 transversed
        {G, Y, R, B},  // 8 rotated 90 counter-clockwise
    }};
    REQUIRE(corners_are(*load(jpeg), upright[1]));
    for (bool big_endian : {false, true}) {
        for (int o = 1; o <= 8; ++o) {
            CAPTURE(big_endian);
            CAPTURE(o);
            const Bytes file = with_app1(jpeg, exif_payload(tiff_with_orientation(big_endian, o)));
            CHECK(limn::core::jpeg_exif_orientation(file.data(), file.size()) == o);
            const auto out = load(file);
            CHECK(out->width == (o >= 5 ? 16 : 32));
            CHECK(out->height == (o >= 5 ? 32 : 16));
            CHECK(corners_are(*out, upright[o]));

            limn::core::LoadOptions as_stored;
            as_stored.apply_orientation = false;
            const auto raw = load(file, as_stored);
            CHECK(raw->width == 32);
            CHECK(raw->height == 16);
            CHECK(corners_are(*raw, upright[1]));

            // Every other pixel format turns the same way.
            for (limn_pixel_format format : kPixelFormats) {
                const auto conv = load(file, load_as(format));
                CHECK(conv->width == out->width);
                CHECK(same_pixels(*out, *conv));
            }
        }
    }
}

// A PNG chunk: length, type, data, CRC-32 (of type and data).
Bytes png_chunk(const char* type, const Bytes& payload) {
    Bytes c;
    const uint32_t n = static_cast<uint32_t>(payload.size());
    for (int s = 24; s >= 0; s -= 8) c.push_back(static_cast<uint8_t>(n >> s));
    c.insert(c.end(), type, type + 4);
    c.insert(c.end(), payload.begin(), payload.end());
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 4; i < c.size(); ++i) {
        crc ^= c[i];
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    crc ^= 0xFFFFFFFFu;
    for (int s = 24; s >= 0; s -= 8) c.push_back(static_cast<uint8_t>(crc >> s));
    return c;
}

// `png` with `chunk` inserted after its IHDR chunk (signature 8 + IHDR 25 bytes).
Bytes with_chunk_after_ihdr(const Bytes& png, const Bytes& chunk) {
    Bytes out = png;
    out.insert(out.begin() + 33, chunk.begin(), chunk.end());
    return out;
}

TEST_CASE("EXIF orientation of a PNG is read from its eXIf chunk only") {
    // A PNG without eXIf never turns, even if its bytes happened to hold an EXIF-like block.
    TestImage src(4, 2, LIMN_PIXEL_RGB8);
    src.fill_random(9);
    const auto out = load(encode(src.img, LIMN_FILE_FORMAT_PNG));
    CHECK(out->width == 4);
    const Bytes tiff = exif_payload(tiff_with_orientation(false, 6));
    CHECK(limn::core::jpeg_exif_orientation(tiff.data(), tiff.size()) == 1);
    CHECK(limn::core::jpeg_exif_orientation(nullptr, 0) == 1);
    CHECK(limn::core::png_exif_orientation(tiff.data(), tiff.size()) == 1);
    CHECK(limn::core::png_exif_orientation(nullptr, 0) == 1);

    // The quadrant picture as a PNG with an eXIf chunk (the TIFF structure itself, no "Exif\0\0").
    TestImage quad(32, 16, LIMN_PIXEL_RGB8);
    for (int y = 0; y < 16; ++y)
        for (int x = 0; x < 32; ++x) quad.set(x, y, y < 8 ? (x < 16 ? kRed : kGreen) : (x < 16 ? kBlue : kYellow));
    const Bytes png = encode(quad.img, LIMN_FILE_FORMAT_PNG);
    for (bool big_endian : {false, true}) {
        CAPTURE(big_endian);
        const Bytes file = with_chunk_after_ihdr(png, png_chunk("eXIf", tiff_with_orientation(big_endian, 6)));
        CHECK(limn::core::png_exif_orientation(file.data(), file.size()) == 6);
        const auto turned = load(file);
        CHECK(turned->width == 16);
        CHECK(turned->height == 32);
        CHECK(corners_are(*turned, {kBlue, kRed, kYellow, kGreen}));  // rotated 90 clockwise
        limn::core::LoadOptions as_stored;
        as_stored.apply_orientation = false;
        CHECK(load(file, as_stored)->width == 32);
    }
    // Malformed: a chunk length past the end, an eXIf after the image data.
    Bytes cut = with_chunk_after_ihdr(png, png_chunk("eXIf", tiff_with_orientation(false, 6)));
    cut[33] = 0x7F;
    CHECK(limn::core::png_exif_orientation(cut.data(), cut.size()) == 1);
    const size_t iend = png.size() - 12;
    Bytes late(png.begin(), png.begin() + static_cast<ptrdiff_t>(iend));
    const Bytes chunk = png_chunk("eXIf", tiff_with_orientation(false, 6));
    late.insert(late.end(), chunk.begin(), chunk.end());
    late.insert(late.end(), png.begin() + static_cast<ptrdiff_t>(iend), png.end());
    CHECK(limn::core::png_exif_orientation(late.data(), late.size()) == 1);
}

TEST_CASE("malformed EXIF is ignored") {
    const Bytes jpeg = quadrant_jpeg();
    const auto stored = corners(*load(jpeg));
    std::vector<std::pair<const char*, Bytes>> payloads = {
        {"identifier only", {'E', 'x', 'i', 'f', 0, 0}},
        {"short identifier", {'E', 'x', 'i'}},
        {"empty", {}},
        {"short TIFF", exif_payload({'I', 'I', 42, 0})},
        {"unknown byte order", exif_payload({'I', 'M', 42, 0, 8, 0, 0, 0, 0, 0})},
        {"wrong magic", exif_payload({'I', 'I', 43, 0, 8, 0, 0, 0, 0, 0})},
        {"IFD beyond the end", exif_payload(make_tiff(false, {{0x0112, 3, 1, 6}}, 0xFFFFFFF0u))},
        {"IFD inside the header", exif_payload(make_tiff(true, {{0x0112, 3, 1, 6}}, 4))},
        {"IFD at the very end", [] {
             Bytes t = {'M', 'M', 0, 42};
             put32be(t, 8);
             t.push_back(0);  // half an entry count
             return exif_payload(t);
         }()},
        {"entry count past the end", exif_payload(make_tiff(false, {{0x010F, 2, 6, 100}}, 8, 0, 0xFFFF))},
        {"truncated entry", [] {
             Bytes t = make_tiff(false, {{0x010F, 2, 6, 100}, {0x0112, 3, 1, 6}});
             t.resize(t.size() - 4 - 6);  // next-IFD link and half of the orientation entry
             return exif_payload(t);
         }()},
        {"orientation 0", exif_payload(tiff_with_orientation(false, 0))},
        {"orientation 9", exif_payload(tiff_with_orientation(true, 9))},
        {"orientation 65535", exif_payload(tiff_with_orientation(false, 65535))},
        {"orientation as LONG", exif_payload(make_tiff(false, {{0x0112, 4, 1, 6}}))},
        {"orientation with count 0", exif_payload(make_tiff(true, {{0x0112, 3, 0, 6}}))},
        // IFD0 links to itself and to an IFD holding an orientation: links are never followed.
        {"looping IFD", exif_payload(make_tiff(false, {{0x010F, 2, 6, 100}}, 8, 8))},
        {"orientation only in a linked IFD", [] {
             Bytes t = make_tiff(false, {{0x010F, 2, 6, 100}}, 8, 26);  // IFD0 ends at 26
             put16le(t, 1);
             put16le(t, 0x0112);
             put16le(t, 3);
             put32le(t, 1);
             put32le(t, 6);
             put32le(t, 8);  // and back to IFD0
             return exif_payload(t);
         }()},
        {"not EXIF (XMP)", [] {
             const std::string xmp = "http://ns.adobe.com/xap/1.0/";
             return Bytes(xmp.c_str(), xmp.c_str() + xmp.size() + 1);
         }()},
    };
    for (const auto& entry : payloads) {
        const std::string what = entry.first;
        CAPTURE(what);
        const Bytes file = with_app1(jpeg, entry.second);
        CHECK(limn::core::jpeg_exif_orientation(file.data(), file.size()) == 1);
        const auto out = load(file);
        CHECK(out->width == 32);
        CHECK(corners(*out) == stored);
    }
}

TEST_CASE("the EXIF parser survives every truncation of its input") {
    for (bool big_endian : {false, true}) {
        const Bytes tiff = tiff_with_orientation(big_endian, 6);
        CHECK(limn::core::tiff_orientation(tiff.data(), tiff.size()) == 6);
        const size_t complete = 8 + 2 + 2 * 12;  // header, count, both entries
        for (size_t n = 0; n <= tiff.size(); ++n) {
            const Bytes prefix(tiff.begin(), tiff.begin() + n);  // exactly n bytes, for ASan
            CHECK(limn::core::tiff_orientation(prefix.data(), prefix.size()) == (n >= complete ? 6 : 1));
        }
        const Bytes jpeg = with_app1(quadrant_jpeg(), exif_payload(tiff));
        for (size_t n = 0; n <= jpeg.size(); ++n) {
            const Bytes prefix(jpeg.begin(), jpeg.begin() + n);
            const int o = limn::core::jpeg_exif_orientation(prefix.data(), prefix.size());
            CHECK((o == 1 || o == 6));
        }
    }
}

// ---- broken and hostile files --------------------------------------------------------------------

TEST_CASE("truncated PNG and JPEG files are invalid images, never a crash") {
    TestImage src(24, 20, LIMN_PIXEL_RGB8);
    src.fill_random(5);
    const Bytes png = encode(src.img, LIMN_FILE_FORMAT_PNG);
    const Bytes jpeg = encode(src.img, LIMN_FILE_FORMAT_JPEG, 90);
    const std::vector<std::pair<const Bytes*, std::vector<size_t>>> cuts = {
        // Anywhere before the end chunk (whose CRC stb does not read) ...
        {&png, {png.size() / 4, png.size() / 2, png.size() - 13, png.size() - 9}},
        // ... or before the end-of-image marker.
        {&jpeg, {jpeg.size() / 4, jpeg.size() / 2, jpeg.size() - 13, jpeg.size() - 2, jpeg.size() - 1}},
    };
    for (const auto& [file, sizes] : cuts) {
        for (size_t n : sizes) {
            CAPTURE(n);
            const Bytes cut(file->begin(), file->begin() + n);
            const Outcome o = load_outcome(cut);
            CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
            CHECK(contains(o.message, "'<memory>'"));
        }
    }
    // Every prefix of every format either loads or is refused as invalid.
    TestImage tiny(5, 3, LIMN_PIXEL_RGBA8);
    tiny.fill_random(6);
    for (limn_file_format f : {LIMN_FILE_FORMAT_PNG, LIMN_FILE_FORMAT_JPEG, LIMN_FILE_FORMAT_BMP,
                               LIMN_FILE_FORMAT_TGA}) {
        const Bytes whole = encode(tiny.img, f);
        for (size_t n = 0; n < whole.size(); ++n) {
            const Bytes cut(whole.begin(), whole.begin() + n);
            const limn_status s = load_outcome(cut).status;
            CHECK((s == LIMN_OK || s == LIMN_ERR_INVALID_IMAGE));
            if (f == LIMN_FILE_FORMAT_JPEG) CHECK(s == LIMN_ERR_INVALID_IMAGE);  // no EOI
        }
    }
}

TEST_CASE("corrupt bytes are invalid images, never a crash") {
    const std::string text = "this is not an image at all";
    const Outcome o = load_outcome(Bytes(text.begin(), text.end()));
    CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
    CHECK(contains(o.message, "image '<memory>'"));
    CHECK(contains(o.message, "Image not of any known type"));  // stb's reason

    Bytes bad_png = png_signature();
    for (int i = 0; i < 40; ++i) bad_png.push_back(static_cast<uint8_t>(i * 37));
    CHECK(load_outcome(bad_png).status == LIMN_ERR_INVALID_IMAGE);

    // Flipped bytes anywhere in valid files: any outcome but a crash or a wrong status.
    TestImage src(16, 16, LIMN_PIXEL_RGBA8);
    src.fill_random(8);
    uint32_t seed = 99;
    limn::core::LoadOptions small;
    small.max_pixels = 1 << 20;
    for (limn_file_format f : {LIMN_FILE_FORMAT_PNG, LIMN_FILE_FORMAT_JPEG, LIMN_FILE_FORMAT_BMP,
                               LIMN_FILE_FORMAT_TGA}) {
        const Bytes whole = encode(src.img, f);
        for (int trial = 0; trial < 300; ++trial) {
            Bytes broken = whole;
            for (int k = 0; k < 4; ++k) {
                const size_t at = (next_random(seed) << 8 | next_random(seed)) % broken.size();
                broken[at] ^= static_cast<uint8_t>(1u << (next_random(seed) % 8));
            }
            const limn_status s = load_outcome(broken, small).status;
            CHECK((s == LIMN_OK || s == LIMN_ERR_INVALID_IMAGE || s == LIMN_ERR_IMAGE_TOO_LARGE));
        }
    }
}

TEST_CASE("JPEG Huffman tables that stb 2.27 would overflow are refused") {
    TestImage src(16, 16, LIMN_PIXEL_RGB8);
    src.fill_smooth();
    const Bytes jpeg = encode(src.img, LIMN_FILE_FORMAT_JPEG);
    size_t dht = 0;
    for (size_t i = 2; i + 4 < jpeg.size(); ++i) {
        if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC4) {
            dht = i;
            break;
        }
    }
    REQUIRE(dht > 0);
    Bytes many = jpeg;  // the first table claims 16 * 255 codes
    for (int k = 0; k < 16; ++k) many[dht + 5 + k] = 0xFF;
    Outcome o = load_outcome(many);
    CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
    CHECK(contains(o.message, "Huffman"));
    // A segment too short for its table: stb reads the counts from the bytes after it.
    Bytes overrun = jpeg;
    overrun[dht + 2] = 0;
    overrun[dht + 3] = 5;
    const Bytes filler(40, 0xF0);
    overrun.insert(overrun.begin() + static_cast<ptrdiff_t>(dht) + 4 + 3, filler.begin(), filler.end());
    o = load_outcome(overrun);
    CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
    // A JPEG that stb recognises after fill bytes before SOI is checked the same way.
    Bytes filled = many;
    filled.insert(filled.begin() + 1, 0xFF);
    CHECK(load_outcome(filled).status == LIMN_ERR_INVALID_IMAGE);
}

TEST_CASE("PNM headers with numbers too large for the decoder are refused") {
    const auto pnm = [](const std::string& header) {
        Bytes b(header.begin(), header.end());
        b.resize(b.size() + 12, 7);
        return b;
    };
    CHECK(load_outcome(pnm("P6 2 2 255\n")).status == LIMN_OK);
    CHECK(load_outcome(pnm("P5\n# comment\n000000000002 00002\n255\n")).status == LIMN_OK);
    for (const char* header : {"P6 99999999999 1 255\n", "P5 1 2147483648 255\n",
                               "P6\n#c\n1 1\n#c\n123456789012\n", "P6 4000000000"}) {
        CAPTURE(header);
        CHECK(load_outcome(pnm(header)).status == LIMN_ERR_INVALID_IMAGE);
    }
}

TEST_CASE("sizes over max_pixels are refused from the header, before decoding") {
    SUBCASE("PNG header of 100000x100000") {
        Bytes png = png_signature();
        png_chunk(png, "IHDR", ihdr(100000, 100000, 8, 2));
        png_chunk(png, "IEND", {});
        const Outcome o = load_outcome(png);
        CHECK(o.status == LIMN_ERR_IMAGE_TOO_LARGE);
        CHECK(contains(o.message, "100000x100000"));
        CHECK(contains(o.message, "'<memory>'"));
        // Without a limit, stb still cannot address it.
        limn::core::LoadOptions unlimited;
        unlimited.max_pixels = 0;
        CHECK(load_outcome(png, unlimited).status == LIMN_ERR_IMAGE_TOO_LARGE);
    }
    SUBCASE("BMP header of 100000x100000") {
        const Outcome o = load_outcome(bmp_header(100000, 100000));
        CHECK(o.status == LIMN_ERR_IMAGE_TOO_LARGE);
        CHECK(contains(o.message, "100000x100000"));
    }
    SUBCASE("JPEG frame header of 60000x60000") {
        TestImage src(16, 16, LIMN_PIXEL_RGB8);
        Bytes jpeg = encode(src.img, LIMN_FILE_FORMAT_JPEG);
        size_t sof = 0;
        for (size_t i = 2; i + 9 < jpeg.size(); ++i) {
            if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
                sof = i;
                break;
            }
        }
        REQUIRE(sof > 0);
        jpeg[sof + 5] = 0xEA;  // height 60000
        jpeg[sof + 6] = 0x60;
        jpeg[sof + 7] = 0xEA;  // width 60000
        jpeg[sof + 8] = 0x60;
        const Outcome o = load_outcome(jpeg);
        CHECK(o.status == LIMN_ERR_IMAGE_TOO_LARGE);
        CHECK(contains(o.message, "60000x60000"));
    }
    SUBCASE("the limit is inclusive and 0 means none") {
        TestImage src(40, 30, LIMN_PIXEL_RGB8);
        const Bytes png = encode(src.img, LIMN_FILE_FORMAT_PNG);
        limn::core::LoadOptions o;
        o.max_pixels = 1199;
        CHECK(load_outcome(png, o).status == LIMN_ERR_IMAGE_TOO_LARGE);
        o.max_pixels = 1200;
        CHECK(load_outcome(png, o).status == LIMN_OK);
        o.max_pixels = 0;
        CHECK(load_outcome(png, o).status == LIMN_OK);
        const Bytes bmp = encode(src.img, LIMN_FILE_FORMAT_BMP);
        o.max_pixels = 1199;
        CHECK(load_outcome(bmp, o).status == LIMN_ERR_IMAGE_TOO_LARGE);
    }
}

TEST_CASE("a deflate bomb in a tiny PNG is refused without inflating it") {
    // 1x1 pixel, but the compressed data inflates to about 32 MiB.
    Bytes png = png_signature();
    png_chunk(png, "IHDR", ihdr(1, 1, 8, 2));
    png_chunk(png, "IDAT", zlib_zero_bomb(130000));
    png_chunk(png, "IEND", {});
    CHECK(png.size() < 256 * 1024);
    const Outcome o = load_outcome(png);
    CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
    CHECK(contains(o.message, "more memory than an image of its size needs"));
    // The same stream in a PNG whose size needs it decodes: the cap follows the header.
    Bytes big = png_signature();
    const uint32_t side = 1024;  // 1024 * (1 + 3 * 1024) = 3146752 bytes of filtered rows
    png_chunk(big, "IHDR", ihdr(side, side, 8, 2));
    png_chunk(big, "IDAT", zlib_zero_bomb((side * (1 + 3 * side) - 1) / 258));
    png_chunk(big, "IEND", {});
    const limn_status s = load_outcome(big).status;
    CHECK((s == LIMN_OK || s == LIMN_ERR_INVALID_IMAGE));  // short by a few bytes: either is fine
    CHECK(!contains(load_outcome(big).message, "more memory"));
}

TEST_CASE("load options and encode options are checked") {
    TestImage src(2, 2, LIMN_PIXEL_RGB8);
    const Bytes png = encode(src.img, LIMN_FILE_FORMAT_PNG);
    CHECK(load_outcome(png, load_as(static_cast<limn_pixel_format>(7))).status == LIMN_ERR_INVALID_ARGUMENT);
    const auto bad_format = load_as(static_cast<limn_pixel_format>(7));
    CHECK(outcome([&] { limn::core::load_image_file("/nonexistent/x.png", bad_format); }).status ==
          LIMN_ERR_INVALID_ARGUMENT);
    CHECK(outcome([&] { encode(src.img, LIMN_FILE_FORMAT_AUTO); }).status == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(outcome([&] { encode(src.img, static_cast<limn_file_format>(6)); }).status ==
          LIMN_ERR_INVALID_ARGUMENT);
    for (int q : {0, -5, 101}) {
        const Outcome o = outcome([&] { encode(src.img, LIMN_FILE_FORMAT_JPEG, q); });
        CHECK(o.status == LIMN_ERR_INVALID_ARGUMENT);
        CHECK(contains(o.message, "quality"));
    }
    limn_image bad = src.img;
    bad.stride = 3;
    CHECK(outcome([&] { encode(bad, LIMN_FILE_FORMAT_PNG); }).status == LIMN_ERR_INVALID_ARGUMENT);
    bad = src.img;
    bad.format = static_cast<limn_pixel_format>(0);
    CHECK(outcome([&] { encode(bad, LIMN_FILE_FORMAT_PNG); }).status == LIMN_ERR_INVALID_ARGUMENT);
    // JPEG and TGA store sizes in 16 bits.
    std::vector<uint8_t> row(70000 * 3);
    const limn_image wide{row.data(), 70000, 1, row.size(), LIMN_PIXEL_RGB8};
    CHECK(outcome([&] { encode(wide, LIMN_FILE_FORMAT_JPEG); }).status == LIMN_ERR_IMAGE_TOO_LARGE);
    CHECK(outcome([&] { encode(wide, LIMN_FILE_FORMAT_TGA); }).status == LIMN_ERR_IMAGE_TOO_LARGE);
    CHECK(same_pixels(wide, *load(encode(wide, LIMN_FILE_FORMAT_PNG))));
}

// ---- files on disk ---------------------------------------------------------------------------------

TEST_CASE("unreadable paths are IO errors naming the path") {
    TempDir dir;
    const std::string missing = dir.file("missing.png");
    Outcome o = outcome([&] { limn::core::load_image_file(missing, {}); });
    CHECK(o.status == LIMN_ERR_IO);
    CHECK(contains(o.message, "'" + missing + "'"));
    CHECK(contains(o.message, "No such file or directory"));

    o = outcome([&] { limn::core::load_image_file(dir.path().string(), {}); });
    CHECK(o.status == LIMN_ERR_IO);
    CHECK(contains(o.message, dir.path().string()));
    CHECK(contains(o.message, "Is a directory"));

    o = outcome([&] { limn::core::load_image_file(dir.file("missing/x.png"), {}); });
    CHECK(o.status == LIMN_ERR_IO);
}

TEST_CASE("empty, truncated and corrupt files name the file") {
    TempDir dir;
    const std::string empty = dir.file("empty.jpg");
    write_bytes(empty, {});
    Outcome o = outcome([&] { limn::core::load_image_file(empty, {}); });
    CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
    CHECK(contains(o.message, "image file '" + empty + "'"));
    CHECK(contains(o.message, "empty"));

    TestImage src(20, 20, LIMN_PIXEL_RGB8);
    src.fill_random(2);
    const Bytes png = encode(src.img, LIMN_FILE_FORMAT_PNG);
    const std::string cut = dir.file("cut.png");
    write_bytes(cut, Bytes(png.begin(), png.begin() + png.size() / 2));
    o = outcome([&] { limn::core::load_image_file(cut, {}); });
    CHECK(o.status == LIMN_ERR_INVALID_IMAGE);
    CHECK(contains(o.message, "image file '" + cut + "'"));
    CHECK(contains(o.message, "("));  // stb's reason follows

    const std::string big = dir.file("big.bmp");
    write_bytes(big, bmp_header(100000, 100000));
    o = outcome([&] { limn::core::load_image_file(big, {}); });
    CHECK(o.status == LIMN_ERR_IMAGE_TOO_LARGE);
    CHECK(contains(o.message, "image file '" + big + "'"));
}

TEST_CASE("saving into a missing directory fails and creates nothing") {
    TempDir dir;
    TestImage src(4, 4, LIMN_PIXEL_RGB8);
    const std::string path = dir.file("missing/out.png");
    const Outcome o = outcome([&] { limn::core::save_image_file(path, src.img, {}); });
    CHECK(o.status == LIMN_ERR_IO);
    CHECK(contains(o.message, "'" + path + "'"));
    CHECK(contains(o.message, "No such file or directory"));
    CHECK(!fs::exists(dir.file("missing")));
    CHECK(dir.entries().empty());
}

TEST_CASE("saving over an existing file replaces it atomically") {
    TempDir dir;
    const std::string path = dir.file("out.png");
    TestImage first(8, 8, LIMN_PIXEL_RGB8), second(6, 5, LIMN_PIXEL_RGBA8);
    first.fill_random(1);
    second.fill_random(2);
    limn::core::save_image_file(path, first.img, {});
    const Bytes old_bytes = read_bytes(path);
    // A reader that has the old file open keeps reading the old file: it is replaced, not rewritten.
    std::ifstream reader(path, std::ios::binary);
    REQUIRE(reader);
    limn::core::save_image_file(path, second.img, {});
    CHECK(Bytes(std::istreambuf_iterator<char>(reader), std::istreambuf_iterator<char>()) == old_bytes);
    CHECK(same_pixels(second.img, *limn::core::load_image_file(path, {})));
    CHECK(dir.entries() == std::vector<std::string>{"out.png"});
}

TEST_CASE("the longest names the file system allows can be saved (the temporary name is short)") {
    TempDir dir;
    TestImage src(4, 3, LIMN_PIXEL_RGB8);
    src.fill_random(3);
    std::string cjk;
    for (int i = 0; i < 80; ++i) cjk += "\xE6\xBC\xAB";  // 80 CJK characters, 240 bytes
    for (const std::string& name : {std::string(251, 'x') + ".png", cjk + ".png"}) {
        limn::core::save_image_file(dir.file(name), src.img, {});
        CHECK(same_pixels(src.img, *limn::core::load_image_file(dir.file(name), {})));
    }
    CHECK(!dir.has_temporaries());
}

TEST_CASE("saving to a symbolic link writes through it, as cp does") {
    TempDir dir;
    TestImage first(4, 3, LIMN_PIXEL_RGB8), second(5, 2, LIMN_PIXEL_RGB8);
    first.fill_random(5);
    second.fill_random(6);
    limn::core::save_image_file(dir.file("target.png"), first.img, {});
    fs::create_directory(dir.file("sub"));
    fs::create_symlink("../target.png", dir.file("sub/link.png"));
    limn::core::save_image_file(dir.file("sub/link.png"), second.img, {});
    CHECK(fs::is_symlink(dir.file("sub/link.png")));
    CHECK(same_pixels(second.img, *limn::core::load_image_file(dir.file("target.png"), {})));
    // A link to a file not there yet: the file is made where it points.
    fs::create_symlink("made.png", dir.file("pending.png"));
    limn::core::save_image_file(dir.file("pending.png"), first.img, {});
    CHECK(fs::is_symlink(dir.file("pending.png")));
    CHECK(same_pixels(first.img, *limn::core::load_image_file(dir.file("made.png"), {})));
    CHECK(!dir.has_temporaries());
}

TEST_CASE("a failed save leaves an existing file untouched and no temporary behind") {
    TempDir dir;
    TestImage src(8, 8, LIMN_PIXEL_RGB8);
    src.fill_random(4);
    const Bytes before = {'k', 'e', 'e', 'p'};
    for (const char* name : {"x.gif", "x.jpg", "x.png"}) write_bytes(dir.file(name), before);

    // Unknown extension.
    Outcome o = outcome([&] { limn::core::save_image_file(dir.file("x.gif"), src.img, {}); });
    CHECK(o.status == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(contains(o.message, dir.file("x.gif")));
    // Bad quality.
    const auto quality_0 = save_as(LIMN_FILE_FORMAT_AUTO, 0);
    o = outcome([&] { limn::core::save_image_file(dir.file("x.jpg"), src.img, quality_0); });
    CHECK(o.status == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(contains(o.message, dir.file("x.jpg")));
    // Bad image.
    limn_image bad = src.img;
    bad.width = 0;
    o = outcome([&] { limn::core::save_image_file(dir.file("x.png"), bad, {}); });
    CHECK(o.status == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(contains(o.message, dir.file("x.png")));
    // The target is a directory: the rename fails after the temporary was written.
    fs::create_directory(dir.file("sub.png"));
    o = outcome([&] { limn::core::save_image_file(dir.file("sub.png"), src.img, {}); });
    CHECK(o.status == LIMN_ERR_IO);
    CHECK(contains(o.message, dir.file("sub.png")));
    CHECK(fs::is_directory(dir.file("sub.png")));
    CHECK(fs::is_empty(dir.file("sub.png")));
    // An empty path.
    CHECK(outcome([&] { limn::core::save_image_file("", src.img, save_as(LIMN_FILE_FORMAT_PNG)); }).status ==
          LIMN_ERR_INVALID_ARGUMENT);

    for (const char* name : {"x.gif", "x.jpg", "x.png"}) CHECK(read_bytes(dir.file(name)) == before);
    CHECK(!dir.has_temporaries());
    CHECK(dir.entries().size() == 4);
}

TEST_CASE("saved files get the usual permissions, not a temporary file's") {
    TempDir dir;
    TestImage src(2, 2, LIMN_PIXEL_RGB8);
    const std::string path = dir.file("perm.png");
    limn::core::save_image_file(path, src.img, {});
    const mode_t mask = ::umask(0);
    ::umask(mask);
    const auto perms = fs::status(path).permissions();
    CHECK(static_cast<mode_t>(perms) == (0666 & ~mask));
}

// ---- ICC profiles -------------------------------------------------------------------------------

namespace {

// n bytes with an ICC header's size and signature (what check_icc_profile looks at), the rest
// varied so that every byte's place is checked.
Bytes test_profile(size_t n) {
    Bytes p(n);
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
    for (int k = 0; k < 4; ++k) p[k] = static_cast<uint8_t>(n >> (24 - 8 * k));
    std::memcpy(p.data() + 36, "acsp", 4);
    return p;
}

Bytes encode_with_profile(const limn_image& img, limn_file_format format, int quality, const Bytes& profile) {
    limn::core::SaveOptions o;
    o.file_format = format;
    o.jpeg_quality = quality;
    o.icc_profile = profile;
    return limn::core::encode_image(img, o);
}

// The offsets of JPEG APP2 segments (markers before the scan).
std::vector<size_t> app2_segments(const Bytes& jpeg) {
    std::vector<size_t> at;
    for (size_t pos = 2; pos + 4 <= jpeg.size() && jpeg[pos + 1] != 0xDA;) {
        if (jpeg[pos + 1] == 0xE2) at.push_back(pos);
        pos += 2 + ((size_t{jpeg[pos + 2]} << 8) | jpeg[pos + 3]);
    }
    return at;
}

}  // namespace

TEST_CASE("ICC profiles go into PNG, JPEG (in parts) and WebP, come back whole, and leave the pixels alone") {
    TestImage src(19, 11, LIMN_PIXEL_RGBA8);
    src.fill_random(3);
    for (size_t n : {size_t{128}, size_t{3144}, size_t{65519}, size_t{65520}, size_t{200000}}) {
        CAPTURE(n);
        const Bytes profile = test_profile(n);
        std::vector<limn_file_format> formats = {LIMN_FILE_FORMAT_PNG, LIMN_FILE_FORMAT_JPEG};
        if (LIMN_WITH_WEBP) formats.push_back(LIMN_FILE_FORMAT_WEBP);
        for (limn_file_format f : formats) {
            for (int quality : {100, 80}) {
                CAPTURE(f);
                CAPTURE(quality);
                const Bytes plain = encode(src.img, f, quality);
                const Bytes with = encode_with_profile(src.img, f, quality, profile);
                CHECK(limn::core::find_icc_profile(plain.data(), plain.size()).empty());
                CHECK(limn::core::find_icc_profile(with.data(), with.size()) == profile);
                const limn::core::LoadOptions lo;
                const auto a = limn::core::load_image_memory(plain.data(), plain.size(), "plain", lo);
                const auto b = limn::core::load_image_memory(with.data(), with.size(), "with", lo);
                REQUIRE(a->format == b->format);
                CHECK(std::memcmp(a->data, b->data, a->stride * static_cast<size_t>(a->height)) == 0);
                if (f == LIMN_FILE_FORMAT_JPEG) CHECK(app2_segments(with).size() == (n + 65518) / 65519);
            }
        }
    }
    // BMP and TGA cannot hold one: written as without.
    const Bytes bmp = encode_with_profile(src.img, LIMN_FILE_FORMAT_BMP, 95, test_profile(200));
    CHECK(bmp == encode(src.img, LIMN_FILE_FORMAT_BMP, 95));
    // Over the limit: refused.
    CHECK_THROWS_AS(encode_with_profile(src.img, LIMN_FILE_FORMAT_PNG, 95, Bytes(limn::core::kMaxIccProfileBytes + 1)),
                    limn::core::Failure);
}

TEST_CASE("bytes that are not an ICC profile are refused, never embedded") {
    TestImage src(4, 4, LIMN_PIXEL_RGB8);
    src.fill_random(7);
    Bytes wrong_size = test_profile(300);
    wrong_size[3] ^= 1;
    Bytes no_signature = test_profile(300);
    no_signature[36] = 'x';
    const std::vector<std::pair<Bytes, const char*>> cases = {
        {Bytes{'g', 'a', 'r', 'b', 'a', 'g', 'e'}, "128-byte header"},
        {wrong_size, "gives its size as 301 bytes"},
        {no_signature, "'acsp' signature"}};
    for (const auto& [bytes, said] : cases) {
        for (limn_file_format f : {LIMN_FILE_FORMAT_PNG, LIMN_FILE_FORMAT_JPEG, LIMN_FILE_FORMAT_BMP}) {
            const Outcome o = outcome([&] { encode_with_profile(src.img, f, 90, bytes); });
            CHECK(o.status == LIMN_ERR_INVALID_ARGUMENT);
            CHECK(contains(o.message, said));
        }
        // A file that carries such bytes (written by another program) reads as carrying no profile.
        const Bytes png = limn::core::embed_icc_profile(encode(src.img, LIMN_FILE_FORMAT_PNG), LIMN_FILE_FORMAT_PNG,
                                                        bytes, false, 4, 4);
        CHECK(limn::core::find_icc_profile(png.data(), png.size()).empty());
    }
}

TEST_CASE("damaged ICC containers give no profile, never a wrong one") {
    TestImage src(8, 8, LIMN_PIXEL_RGB8);
    src.fill_random(4);
    const Bytes profile = test_profile(150000);  // three APP2 parts
    const Bytes jpeg = encode_with_profile(src.img, LIMN_FILE_FORMAT_JPEG, 90, profile);
    const std::vector<size_t> parts = app2_segments(jpeg);
    REQUIRE(parts.size() == 3);
    const auto without_segment = [&](size_t at) {
        Bytes b = jpeg;
        const size_t length = 2 + ((size_t{b[at + 2]} << 8) | b[at + 3]);
        b.erase(b.begin() + static_cast<ptrdiff_t>(at), b.begin() + static_cast<ptrdiff_t>(at + length));
        return b;
    };
    const Bytes missing = without_segment(parts[1]);
    CHECK(limn::core::find_icc_profile(missing.data(), missing.size()).empty());
    Bytes twice = jpeg;
    twice[parts[1] + 4 + 12] = 1;  // part 2 says it is part 1 again
    CHECK(limn::core::find_icc_profile(twice.data(), twice.size()).empty());
    Bytes counts = jpeg;
    counts[parts[2] + 4 + 13] = 4;  // part 3 of 4, the others of 3
    CHECK(limn::core::find_icc_profile(counts.data(), counts.size()).empty());
    for (size_t cut : {size_t{3}, parts[0] + 3, parts[1] + 100, parts[2] - 1}) {
        CHECK(limn::core::find_icc_profile(jpeg.data(), cut).empty());
    }

    const Bytes png = encode_with_profile(src.img, LIMN_FILE_FORMAT_PNG, 95, profile);
    Bytes broken = png;
    broken[8 + 25 + 8 + 13 + 6] ^= 0x10;  // inside the iCCP zlib stream: the chunk's CRC says so
    CHECK(limn::core::find_icc_profile(broken.data(), broken.size()).empty());
    // The stream's own checksum (Adler-32) catches what a recomputed CRC would not.
    Bytes stream_only = limn::core::deflate_zlib(profile);
    Bytes inflated;
    REQUIRE(limn::core::inflate_zlib(stream_only.data(), stream_only.size(), profile.size(), inflated));
    CHECK(inflated == profile);
    stream_only[stream_only.size() - 1] ^= 1;
    CHECK_FALSE(limn::core::inflate_zlib(stream_only.data(), stream_only.size(), profile.size(), inflated));
    // A deflate bomb: more than the 16 MB a profile may have is not inflated.
    Bytes largest(limn::core::kMaxIccProfileBytes, 0);  // compresses to almost nothing
    const Bytes header = test_profile(limn::core::kMaxIccProfileBytes);
    std::copy(header.begin(), header.begin() + 128, largest.begin());
    const Bytes bomb = encode_with_profile(src.img, LIMN_FILE_FORMAT_PNG, 95, largest);
    CHECK(limn::core::find_icc_profile(bomb.data(), bomb.size()).size() == limn::core::kMaxIccProfileBytes);
    Bytes stream = limn::core::deflate_zlib(Bytes(limn::core::kMaxIccProfileBytes + 1, 0));
    Bytes out;
    CHECK_FALSE(limn::core::inflate_zlib(stream.data(), stream.size(), limn::core::kMaxIccProfileBytes, out));
    CHECK(out.empty());
    for (size_t cut = 8; cut < 80; cut += 7) CHECK(limn::core::find_icc_profile(png.data(), cut).empty());
    CHECK(limn::core::find_icc_profile(nullptr, 0).empty());
}
