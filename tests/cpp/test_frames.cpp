// limn_frames: a model prepared for frames of one size. Once warm, a frame takes no memory from
// the system (limn_memory_stats.allocations stays put), and its pixels are limn_cartoonize's.
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <atomic>

#include "fixtures.h"

namespace {

constexpr int FW = 96, FH = 64;

uint64_t allocations() { return limn::memory_stats("cpu").allocations; }

std::vector<uint8_t> rgba_frame(unsigned seed) { return limn_test::pattern(size_t(FW) * FH * 4, seed); }

limn_image rgba(std::vector<uint8_t>& px) { return limn_image{px.data(), FW, FH, size_t(FW) * 4, LIMN_PIXEL_RGBA8}; }

}  // namespace

TEST_CASE("frames: once warm a frame allocates nothing, and its pixels are limn_cartoonize's") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), limn_test::cpu());
    const limn::CartoonizeOptions options = limn::CartoonizeOptions().tile_size(32).strength(0.8f);
    const limn::Frames frames(model, FW, FH, LIMN_PIXEL_RGBA8, options);
    std::vector<uint8_t> out(size_t(FW) * FH * 4);
    for (unsigned i = 0; i < 3; ++i) {  // warm-up beyond the one limn_frames_create runs
        std::vector<uint8_t> in = rgba_frame(100 + i);
        limn_image a = rgba(in), b = rgba(out);
        frames.run(a, b);
    }
    std::vector<std::vector<uint8_t>> ins, outs;
    for (unsigned i = 0; i < 10; ++i) {
        ins.push_back(rgba_frame(i));
        outs.emplace_back(ins.back().size());
    }
    const uint64_t before = allocations();
    for (size_t i = 0; i < ins.size(); ++i) {
        limn_image a = rgba(ins[i]), b = rgba(outs[i]);
        frames.run(a, b);
    }
    const uint64_t per_frames = allocations() - before;
    CHECK(per_frames == 0);  // allocations per frame: 0

    // The same frames through limn_cartoonize: the same pixels, and that call does allocate (so
    // the statistic sees allocations where there are some).
    const uint64_t before_plain = allocations();
    for (size_t i = 0; i < ins.size(); ++i) {
        std::vector<uint8_t> expected(ins[i].size());
        limn_image a = rgba(ins[i]), b = rgba(expected);
        model.cartoonize(a, b, options);
        CHECK(expected == outs[i]);
    }
    CHECK(allocations() - before_plain > 0);
}

TEST_CASE("frames: wrong frames are refused; submitted frames; freeing with jobs pending") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), limn_test::cpu());
    CHECK_THROWS_WITH_AS(limn::Frames(limn::Model(limn_test::fixture("tiny_face.pt"), limn_test::cpu()), FW, FH,
                                      LIMN_PIXEL_RGBA8),
                         doctest::Contains("needs a cartoon model"), limn::Error);
    CHECK_THROWS_WITH_AS(limn::Frames(model, 0, FH, LIMN_PIXEL_RGBA8), doctest::Contains("invalid frame size 0x64"),
                         limn::Error);
    const limn::Frames frames(model, FW, FH, LIMN_PIXEL_RGBA8);
    std::vector<uint8_t> in = rgba_frame(1), out(in.size()), rgb(size_t(FW) * FH * 3);
    limn_image a = rgba(in), b = rgba(out);
    limn_image small = a;
    small.width = FW - 2;
    CHECK_THROWS_WITH_AS(frames.run(small, small), doctest::Contains("input is 94x64 RGBA8, but these frames are 96x64 RGBA8"),
                         limn::Error);
    limn_image as_rgb{rgb.data(), FW, FH, size_t(FW) * 3, LIMN_PIXEL_RGB8};
    CHECK_THROWS_WITH_AS(frames.run(as_rgb, as_rgb), doctest::Contains("input is 96x64 RGB8, but these frames are 96x64 RGBA8"), limn::Error);

    std::vector<uint8_t> expected(in.size());
    limn_image e = rgba(expected);
    frames.run(a, e);
    frames.submit(a, b).get();
    CHECK(out == expected);

    // Freed with jobs pending: each ends once, as cancelled or done.
    std::atomic<int> ended{0}, cancelled{0};
    std::vector<std::vector<uint8_t>> outs(30, std::vector<uint8_t>(in.size()));
    std::vector<limn_image> views;
    for (auto& o : outs) views.push_back(rgba(o));
    std::vector<limn::Job> jobs;
    {
        const limn::Frames doomed(model, FW, FH, LIMN_PIXEL_RGBA8);
        for (auto& v : views) {
            jobs.push_back(doomed.submit(a, v, [&](limn_status s, const char*) {
                cancelled += s == LIMN_ERR_CANCELLED;
                ++ended;
            }));
        }
    }
    for (const auto& j : jobs) CHECK(j.wait_for(std::chrono::seconds(120)));
    CHECK(ended == 30);
    CHECK(cancelled > 0);
}
