// The cartoonize pipeline through the public C++ wrapper: any size and pixel format, strength,
// max_side, tiles (forced, from a memory budget, after out-of-memory errors), progress,
// cancellation, deadlines, and tiled against untiled on a real photo with the DCT-Net architecture.
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "fixtures.h"

using limn_test::cpu;

namespace {

struct Pixels {
    std::vector<uint8_t> bytes;
    limn_image img{};
    Pixels(int w, int h, limn_pixel_format f, unsigned seed, size_t pad = 0) {
        const size_t stride = static_cast<size_t>(w) * limn_pixel_format_bytes_per_pixel(f) + pad;
        bytes = limn_test::pattern(stride * h, seed);
        img = limn_image{bytes.data(), w, h, stride, f};
    }
};



std::vector<uint8_t> astronaut() {
    const char* dir = std::getenv("LIMN_PARITY_CASES");
    REQUIRE(dir);
    const std::vector<char> raw = limn_test::read_file(std::string(dir) + "/astronaut.512x512.rgb");
    REQUIRE(raw.size() == 512u * 512u * 3u);
    return std::vector<uint8_t>(raw.begin(), raw.end());
}

}  // namespace

TEST_CASE("cartoonize: odd, tiny and very wide images in every pixel format keep their size and alpha") {
  for (const std::string ext : {".pt", ".pt2"}) {  // the package's smallest input is 4x4
    CAPTURE(ext);
    const limn::Model model(limn_test::fixture("tiny_unet" + ext), cpu());  // size multiple 2
    for (auto f : {LIMN_PIXEL_RGB8, LIMN_PIXEL_RGBA8, LIMN_PIXEL_BGR8, LIMN_PIXEL_BGRA8, LIMN_PIXEL_RGB32F,
                   LIMN_PIXEL_RGBA32F}) {
        for (auto [w, h] : {std::pair<int, int>{1, 1}, {13, 7}, {2001, 3}, {3, 517}}) {
            CAPTURE(f);
            CAPTURE(w);
            CAPTURE(h);
            Pixels in(w, h, LIMN_PIXEL_RGBA8, w * 31u + h);
            Pixels out(w, h, f, 5, 8);
            const limn_pipeline_stats st = model.cartoonize(in.img, out.img);
            CHECK(st.tiles >= 1);
            CHECK(st.width == w);
            CHECK(st.height == h);
            // Not the input (the network changed it), alpha copied from the input.
            if (f == LIMN_PIXEL_RGBA8) {
                bool differs = false;
                for (int y = 0; y < h; ++y)
                    for (int x = 0; x < w; ++x) {
                        const uint8_t* s = in.img.data + y * in.img.stride + x * 4;
                        const uint8_t* d = out.img.data + y * out.img.stride + x * 4;
                        REQUIRE(d[3] == s[3]);
                        differs = differs || d[0] != s[0];
                    }
                CHECK(differs);
            }
        }
    }
  }
}

TEST_CASE("cartoonize: strength 0 returns the input exactly, strength blends") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), cpu());
    for (auto f : {LIMN_PIXEL_RGB8, LIMN_PIXEL_BGRA8}) {
        const Pixels in(31, 17, f, 3, 5);
        Pixels out(31, 17, f, 9, 5);
        model.cartoonize(in.img, out.img, limn::CartoonizeOptions().strength(0.0f));
        for (int y = 0; y < 17; ++y)
            for (size_t x = 0; x < 31u * limn_pixel_format_bytes_per_pixel(f); ++x)
                REQUIRE(out.img.data[y * out.img.stride + x] == in.img.data[y * in.img.stride + x]);
    }
    const Pixels in(32, 32, LIMN_PIXEL_RGB8, 4);
    Pixels full(32, 32, LIMN_PIXEL_RGB8, 0), half(32, 32, LIMN_PIXEL_RGB8, 0);
    model.cartoonize(in.img, full.img);
    model.cartoonize(in.img, half.img, limn::CartoonizeOptions().strength(0.5f));
    for (size_t i = 0; i < in.bytes.size(); ++i) {
        REQUIRE(std::abs(2.0 * half.bytes[i] - in.bytes[i] - full.bytes[i]) <= 2.0);
    }
}

TEST_CASE("cartoonize: max_side runs smaller and restores the input size; in place works") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), cpu());
    Pixels img(300, 120, LIMN_PIXEL_RGB8, 8);
    const limn_pipeline_stats st = model.cartoonize(img.img, img.img, limn::CartoonizeOptions().max_side(100));
    CHECK(st.width == 100);
    CHECK(st.height == 40);
    CHECK(img.img.width == 300);
    CHECK(img.img.height == 120);
}

TEST_CASE("cartoonize: forced tiles agree with one pass; tiles follow a memory budget") {
  for (const std::string ext : {".pt", ".pt2"}) {
    CAPTURE(ext);
    const limn::Model model(limn_test::fixture("tiny_unet" + ext), cpu());  // tile margin 8
    const Pixels in(403, 297, LIMN_PIXEL_RGB8, 12);
    Pixels whole(403, 297, LIMN_PIXEL_RGB8, 0), tiled(403, 297, LIMN_PIXEL_RGB8, 0), budget(403, 297, LIMN_PIXEL_RGB8, 0);
    const auto one = model.cartoonize(in.img, whole.img, limn::CartoonizeOptions().tile_size(4096));
    CHECK(one.tiles == 1);
    const auto many = model.cartoonize(in.img, tiled.img, limn::CartoonizeOptions().tile_size(96));
    CHECK(many.tiles == 5 * 4);
    CHECK(many.tile_size == 96);
    // The tiny network sees only a few pixels around each output: with a margin of 8 the
    // feathered tiles match one pass to within two rounding steps anywhere.
    int worst = 0;
    for (size_t i = 0; i < whole.bytes.size(); ++i) worst = std::max(worst, std::abs(whole.bytes[i] - tiled.bytes[i]));
    CHECK(worst <= 2);
    CHECK(limn_test::psnr8(whole.bytes, tiled.bytes) >= 50.0);

    // A budget just over the picture's own buffers leaves room for small tiles only.
    const auto small = model.cartoonize(in.img, budget.img, limn::CartoonizeOptions().memory_budget(8u << 20));
    CHECK(small.tiles > 1);
    CHECK(limn_test::psnr8(whole.bytes, budget.bytes) >= 40.0);
    const auto big = model.cartoonize(in.img, budget.img, limn::CartoonizeOptions().memory_budget(1ull << 34));
    CHECK(big.tiles == 1);
  }
}

TEST_CASE("cartoonize: an out-of-memory error retries with smaller tiles, and the model stays usable") {
    // The fixture's allocator request fails for inputs over 4096 pixels (64 x 64).
    const limn::Model model(limn_test::fixture("oom_above_4096px.pt"), cpu());
    const Pixels in(200, 150, LIMN_PIXEL_RGB8, 21);
    Pixels out(200, 150, LIMN_PIXEL_RGB8, 0);
    const auto st = model.cartoonize(in.img, out.img, limn::CartoonizeOptions().tile_size(200));
    CHECK(st.oom_retries == 2);  // 200 -> 100 -> 50
    CHECK(st.tile_size == 50);
    for (size_t i = 0; i < in.bytes.size(); ++i) {
        REQUIRE(std::abs(out.bytes[i] - (in.bytes[i] * 0.5 + 63.75)) <= 1.0);
    }
    // A raw run over the limit is an out-of-memory status, not a crash; the model still works.
    Pixels big(80, 80, LIMN_PIXEL_RGB8, 1);
    CHECK(limn_test::status_of([&] { model.run(big.img, big.img); }) == LIMN_ERR_OUT_OF_MEMORY);
    Pixels ok(64, 64, LIMN_PIXEL_RGB8, 2);
    model.run(ok.img, ok.img);
}

TEST_CASE("cartoonize: progress reports every tile; cancelling and deadlines stop the work") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), cpu());
    const Pixels in(256, 256, LIMN_PIXEL_RGB8, 2);
    Pixels out(256, 256, LIMN_PIXEL_RGB8, 77);
    const std::vector<uint8_t> before = out.bytes;

    std::vector<std::pair<int, int>> seen;
    model.cartoonize(in.img, out.img, limn::CartoonizeOptions().tile_size(64).progress([&](int32_t d, int32_t t) {
        seen.emplace_back(d, t);
        return true;
    }));
    REQUIRE(!seen.empty());
    CHECK(seen.front() == std::make_pair(0, seen.front().second));
    CHECK(seen.back().first == seen.back().second);
    CHECK(seen.size() == static_cast<size_t>(seen.back().second) + 1);

    out.bytes = before;
    int calls = 0;
    CHECK(limn_test::status_of([&] {
              model.cartoonize(in.img, out.img, limn::CartoonizeOptions().tile_size(64).progress([&](int32_t d, int32_t) {
                  ++calls;
                  return d < 2;
              }));
          }) == LIMN_ERR_CANCELLED);
    CHECK(calls == 3);
    CHECK(out.bytes == before);  // nothing written
    CHECK(std::string(limn_last_error()).find("cancelled") != std::string::npos);

    const Pixels large(2048, 1024, LIMN_PIXEL_RGB8, 3);
    Pixels large_out(2048, 1024, LIMN_PIXEL_RGB8, 0);
    CHECK(limn_test::status_of([&] {
              model.cartoonize(large.img, large_out.img, limn::CartoonizeOptions().tile_size(32).timeout_ms(1));
          }) == LIMN_ERR_TIMEOUT);
    CHECK(std::string(limn_last_error()).find("deadline") != std::string::npos);
}

TEST_CASE("cartoonize: bad arguments and the wrong model kind are refused") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), cpu());
    Pixels in(40, 30, LIMN_PIXEL_RGB8, 1), other(41, 30, LIMN_PIXEL_RGB8, 1);
    CHECK(limn_test::status_of([&] { model.cartoonize(in.img, other.img); }) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(limn_test::status_of([&] { model.cartoonize(in.img, in.img, limn::CartoonizeOptions().strength(1.5f)); }) ==
          LIMN_ERR_INVALID_ARGUMENT);
    CHECK(limn_test::status_of([&] { model.cartoonize(in.img, in.img, limn::CartoonizeOptions().strength(NAN)); }) ==
          LIMN_ERR_INVALID_ARGUMENT);
    CHECK(limn_test::status_of([&] { model.cartoonize(in.img, in.img, limn::CartoonizeOptions().max_side(-1)); }) ==
          LIMN_ERR_INVALID_ARGUMENT);
    Pixels wide(300, 30, LIMN_PIXEL_RGB8, 1);
    CHECK(limn_test::status_of([&] { model.cartoonize(wide.img, wide.img, limn::CartoonizeOptions().tile_size(16)); }) ==
          LIMN_ERR_INVALID_ARGUMENT);
    CHECK(std::string(limn_last_error()).find("tile_size") != std::string::npos);

    const limn::Model face(limn_test::fixture("tiny_face.pt"), cpu());
    CHECK(limn_test::status_of([&] { face.cartoonize(in.img, in.img); }) == LIMN_ERR_WRONG_MODEL_KIND);

    CHECK(limn_cartoonize(nullptr, &in.img, &in.img, nullptr, nullptr) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(limn_cartoonize(model.get(), nullptr, &in.img, nullptr, nullptr) == LIMN_ERR_INVALID_ARGUMENT);
    limn_pipeline_stats bad{};
    CHECK(limn_cartoonize(model.get(), &in.img, &in.img, nullptr, &bad) == LIMN_ERR_INVALID_ARGUMENT);
}

TEST_CASE("cartoonize: tiled DCT-Net equals one pass to float rounding on a real photo, in both formats") {
    const char* dir = std::getenv("LIMN_PARITY_CASES");
    REQUIRE(dir);
    std::vector<uint8_t> photo = astronaut();
    const limn_image in{photo.data(), 512, 512, 512 * 3, LIMN_PIXEL_RGB8};
    for (const std::string ext : {".pt", ".pt2"}) {
        CAPTURE(ext);
        const limn::Model model(std::string(dir) + "/dctnet" + ext, cpu());  // tile margin 64
        std::vector<float> a(photo.size()), b(photo.size());
        limn_image oa{reinterpret_cast<uint8_t*>(a.data()), 512, 512, 512 * 3 * 4, LIMN_PIXEL_RGB32F};
        limn_image ob{reinterpret_cast<uint8_t*>(b.data()), 512, 512, 512 * 3 * 4, LIMN_PIXEL_RGB32F};
        CHECK(model.cartoonize(in, oa).tiles == 1);
        for (const int tile : {288, 200}) {
            CAPTURE(tile);
            const auto st = model.cartoonize(in, ob, limn::CartoonizeOptions().tile_size(tile));
            CHECK(st.tiles == (tile == 288 ? 3 * 3 : 6 * 6));
            double worst = 0.0;
            for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
            MESSAGE("DCT-Net" << ext << " tiled (" << tile << " px, " << st.tiles << " tiles) vs one pass: max abs "
                              << worst);
            // The network's receptive field fits its tile margin and the tiles only blend where both
            // have it: the tiles hold the one-pass values, up to float summation order.
            CHECK(worst <= 1e-5);
        }
    }
}
