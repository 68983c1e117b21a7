// Image conversion through the public API: an identity model must give back exactly the pixels it
// was given, in every pixel format, with odd sizes and padded strides.
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <algorithm>
#include <array>
#include <cmath>

#include "fixtures.h"

namespace {

const std::array<limn_pixel_format, 4> kFormats = {LIMN_PIXEL_RGB8, LIMN_PIXEL_RGBA8, LIMN_PIXEL_BGR8,
                                                   LIMN_PIXEL_BGRA8};

struct Buffer {
    std::vector<uint8_t> bytes;
    limn_image img{};
    Buffer(int w, int h, limn_pixel_format f, size_t pad, unsigned seed) {
        const size_t c = static_cast<size_t>(limn_pixel_format_channels(f));
        const size_t stride = w * c + pad;
        bytes = limn_test::pattern(stride * h, seed);
        img = limn_image{bytes.data(), w, h, stride, f};
    }
};

// Channel order of a format: index of R, G, B, A within a pixel (A = -1 if none).
std::array<int, 4> layout(limn_pixel_format f) {
    switch (f) {
        case LIMN_PIXEL_RGB8: return {0, 1, 2, -1};
        case LIMN_PIXEL_RGBA8: return {0, 1, 2, 3};
        case LIMN_PIXEL_BGR8: return {2, 1, 0, -1};
        default: return {2, 1, 0, 3};
    }
}

// Whether `out` holds exactly `in`'s pixels in out's format, and out's row padding is untouched.
bool same_pixels(const Buffer& in, const Buffer& out, const std::vector<uint8_t>& out_before) {
    const auto li = layout(in.img.format), lo = layout(out.img.format);
    const int ci = limn_pixel_format_channels(in.img.format), co = limn_pixel_format_channels(out.img.format);
    for (int y = 0; y < in.img.height; ++y) {
        for (int x = 0; x < in.img.width; ++x) {
            const uint8_t* s = in.img.data + y * in.img.stride + x * ci;
            const uint8_t* d = out.img.data + y * out.img.stride + x * co;
            for (int k = 0; k < 3; ++k)
                if (d[lo[k]] != s[li[k]]) return false;
            if (lo[3] >= 0 && d[lo[3]] != (li[3] >= 0 ? s[li[3]] : 255)) return false;
        }
        for (size_t p = in.img.width * co; p < out.img.stride; ++p) {
            const size_t at = y * out.img.stride + p;
            if (at < out.bytes.size() && out.bytes[at] != out_before[at]) return false;
        }
    }
    return true;
}

// The CPU in fp32 (AUTO may pick bf16 on a CPU with native bf16: tested on its own).
limn::ModelOptions cpu() { return limn::ModelOptions().device("cpu").precision(LIMN_PRECISION_FP32); }

}  // namespace

TEST_CASE("every pixel format round-trips exactly, with odd sizes and padded strides") {
    const limn::Model model(limn_test::fixture("identity.pt"), cpu());
    unsigned seed = 1;
    for (auto fin : kFormats) {
        for (auto fout : kFormats) {
            for (auto [w, h, pad_in, pad_out] : {std::array<int, 4>{13, 7, 5, 3}, {1, 1, 0, 0},
                                                 {64, 3, 0, 1}, {3, 65, 1, 0}}) {
                CAPTURE(fin);
                CAPTURE(fout);
                CAPTURE(w);
                CAPTURE(h);
                const Buffer in(w, h, fin, pad_in, seed++);
                Buffer out(w, h, fout, pad_out, seed++);
                const std::vector<uint8_t> before = out.bytes;
                model.run(in.img, out.img);
                CHECK(same_pixels(in, out, before));
            }
        }
    }
}

TEST_CASE("in-place runs and library-allocated results") {
    const limn::Model model(limn_test::fixture("identity.pt"), cpu());
    Buffer buf(17, 9, LIMN_PIXEL_BGRA8, 7, 42);
    const Buffer copy = buf;
    model.run(buf.img, buf.img);
    CHECK(buf.bytes == copy.bytes);

    const limn::Image out = model.run(copy.img, LIMN_PIXEL_RGB8);
    REQUIRE(out);
    CHECK(out.width() == 17);
    CHECK(out.height() == 9);
    CHECK(out.stride() == 17 * 3);
    Buffer wrapped(17, 9, LIMN_PIXEL_RGB8, 0, 0);
    std::copy(out.data(), out.data() + 17 * 9 * 3, wrapped.bytes.begin());
    CHECK(same_pixels(copy, wrapped, wrapped.bytes));
}

TEST_CASE("a batch gives each image its own result") {
    const limn::Model model(limn_test::fixture("identity.pt"), cpu());
    std::vector<Buffer> ins, outs;
    for (unsigned i = 0; i < 3; ++i) {
        ins.emplace_back(10, 6, LIMN_PIXEL_RGB8, i, 100 + i);
        outs.emplace_back(10, 6, i == 1 ? LIMN_PIXEL_BGRA8 : LIMN_PIXEL_RGB8, 2 * i, 200 + i);
    }
    std::vector<limn_image> in_imgs, out_imgs;
    for (auto& b : ins) in_imgs.push_back(b.img);
    for (auto& b : outs) out_imgs.push_back(b.img);
    std::vector<std::vector<uint8_t>> before;
    for (auto& b : outs) before.push_back(b.bytes);
    model.run_batch(in_imgs, out_imgs);
    for (size_t i = 0; i < 3; ++i) CHECK(same_pixels(ins[i], outs[i], before[i]));

    // Mixed sizes in one batch are refused.
    Buffer other(11, 6, LIMN_PIXEL_RGB8, 0, 9);
    in_imgs[2] = other.img;
    try {
        model.run_batch(in_imgs, out_imgs);
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_INVALID_ARGUMENT);
        CHECK(std::string(e.what()).find("input[2]") != std::string::npos);
    }
}

TEST_CASE("float pixels: exact identity, alpha converted to and from 8 bits, aligned buffers only") {
    const limn::Model model(limn_test::fixture("identity.pt"), cpu());
    const int w = 5, h = 3;
    // RGBA32F with a padded stride (one spare float per row), values off the 8-bit grid.
    const size_t stride_f = (w * 4 + 1) * sizeof(float);
    std::vector<float> in((w * 4 + 1) * h);
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>((i * 37) % 101) / 101.0f + 1e-4f;
    limn_image fin{reinterpret_cast<uint8_t*>(in.data()), w, h, stride_f, LIMN_PIXEL_RGBA32F};

    std::vector<float> out(in.size(), -7.0f);
    limn_image fout{reinterpret_cast<uint8_t*>(out.data()), w, h, stride_f, LIMN_PIXEL_RGBA32F};
    model.run(fin, fout);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w * 4; ++x) CHECK(out[y * (w * 4 + 1) + x] == in[y * (w * 4 + 1) + x]);
        CHECK(out[y * (w * 4 + 1) + w * 4] == -7.0f);  // padding untouched
    }

    // Float alpha into 8-bit alpha rounds; 8-bit alpha into float divides by 255.
    std::vector<uint8_t> out8(w * h * 4);
    limn_image b8{out8.data(), w, h, static_cast<size_t>(w) * 4, LIMN_PIXEL_BGRA8};
    model.run(fin, b8);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const float* s = &in[y * (w * 4 + 1) + x * 4];
            const uint8_t* d = &out8[(y * w + x) * 4];
            CHECK(d[2] == static_cast<uint8_t>(std::lround(s[0] * 255.0f)));
            CHECK(d[3] == static_cast<uint8_t>(std::lround(std::min(s[3], 1.0f) * 255.0f)));
        }
    std::vector<float> back(w * h * 3);
    limn_image f3{reinterpret_cast<uint8_t*>(back.data()), w, h, static_cast<size_t>(w) * 12, LIMN_PIXEL_RGB32F};
    model.run(b8, f3);
    for (int i = 0; i < w * h; ++i) CHECK(back[i * 3] == doctest::Approx(out8[i * 4 + 2] / 255.0f).epsilon(1e-6));

    // A float image whose stride is not a multiple of 4 bytes is refused, naming the reason.
    limn_image odd{reinterpret_cast<uint8_t*>(out.data()), w, h, stride_f + 2, LIMN_PIXEL_RGBA32F};
    try {
        model.run(fin, odd);
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_INVALID_ARGUMENT);
        CHECK(std::string(e.what()).find("multiple of 4") != std::string::npos);
    }
    CHECK(limn_pixel_format_bytes_per_pixel(LIMN_PIXEL_RGBA32F) == 16);
    CHECK(limn_pixel_format_bytes_per_pixel(LIMN_PIXEL_RGB32F) == 12);
    CHECK(limn_pixel_format_bytes_per_pixel(LIMN_PIXEL_BGR8) == 3);
    CHECK(limn_pixel_format_bytes_per_pixel(static_cast<limn_pixel_format>(99)) == 0);
}
