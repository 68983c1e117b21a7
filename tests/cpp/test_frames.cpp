// limn_frames: a model prepared for frames of one size. Once warm, a frame takes no memory from
// the system (limn_memory_stats.allocations stays put), and its pixels are limn_cartoonize's.
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <atomic>
#include <string>

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

TEST_CASE("device images: refused with a clear error for a model on the CPU, before any work") {
    const limn::Model unet(limn_test::fixture("tiny_unet.pt"), limn_test::cpu());
    const limn::Model face(limn_test::fixture("tiny_face.pt"), limn_test::cpu());
    const limn::Model detector(limn_test::fixture("tiny_detect.pt"), limn_test::cpu());
    std::vector<uint8_t> in = rgba_frame(3), out(in.size(), 7), expected(in.size());
    limn_image a = rgba(in), b = rgba(out), e = rgba(expected);
    const std::vector<uint8_t> untouched = out;
    const auto on = [](const char* device) { return limn::CartoonizeOptions().images_device(device); };

    // On the CPU, a device image is refused whatever the device it names, and the output is not
    // written. The check comes before anything reads the pixels (here host memory).
    CHECK_THROWS_WITH_AS(unet.cartoonize(a, b, on("cuda:0")),
                         doctest::Contains("images_device is 'cuda:0', but model"), limn::Error);
    CHECK_THROWS_WITH_AS(unet.cartoonize(a, b, on("cuda")),
                         doctest::Contains("runs on cpu: device images must be in the memory of the model's device"),
                         limn::Error);
    CHECK(out == untouched);
    // Not a place for images: a typo, "auto", "".
    for (const char* bad : {"gpu", "auto", "cuda:x"}) {
        CAPTURE(bad);
        CHECK_THROWS_WITH_AS(unet.cartoonize(a, b, on(bad)),
                             doctest::Contains("is not a place for images: expected NULL or \"cpu\""), limn::Error);
    }
    limn_cartoonize_options raw;
    REQUIRE(limn_cartoonize_options_init(&raw) == LIMN_OK);
    raw.images_device = "";  // through the C struct (the C++ builder's "" means unset)
    CHECK(limn_cartoonize(unet.get(), &a, &b, &raw, nullptr) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(std::string(limn_last_error()).find("options->images_device '' is not a place for images") != std::string::npos);
    // A stream for a model on the CPU (never dereferenced: refused first).
    CHECK_THROWS_WITH_AS(unet.cartoonize(a, b, limn::CartoonizeOptions().cuda_stream(reinterpret_cast<void*>(0x10))),
                         doctest::Contains("cuda_stream is set, but model"), limn::Error);
    CHECK(out == untouched);
    // "cpu" is host memory, the default: the same pixels.
    unet.cartoonize(a, b, on("cpu"));
    unet.cartoonize(a, e);
    CHECK(out == expected);

    // The checks are also limn_cartoonize_options_check's (the place is parsed there).
    CHECK_THROWS_WITH_AS(on("gpu").check(), doctest::Contains("options->images_device 'gpu'"), limn::Error);

    // The other pipelines, their submits (refused at submit, no job), and the frames.
    const std::vector<uint8_t> photo = limn_test::pattern(128 * 128 * 3, 9);
    std::vector<uint8_t> x(photo.size());
    limn_image p{const_cast<uint8_t*>(photo.data()), 128, 128, 128 * 3, LIMN_PIXEL_RGB8};
    limn_image px{x.data(), 128, 128, 128 * 3, LIMN_PIXEL_RGB8};
    limn_face one{};
    const float marks[10] = {50, 55, 78, 55, 64, 70, 53, 85, 75, 85};
    std::copy(marks, marks + 10, one.landmarks);
    CHECK_THROWS_WITH_AS(face.restore_faces(p, px, {one}, limn::RestoreFacesOptions().images_device("cuda:0")),
                         doctest::Contains("images_device is 'cuda:0', but model"), limn::Error);
    CHECK_THROWS_WITH_AS(detector.detect_faces(p, limn::DetectFacesOptions().images_device("cuda")),
                         doctest::Contains("images_device is 'cuda', but model"), limn::Error);
    CHECK_THROWS_WITH_AS(unet.submit_cartoonize(a, b, on("cuda:0")), doctest::Contains("images_device is 'cuda:0'"),
                         limn::Error);
    CHECK_THROWS_WITH_AS(
        face.submit_restore_faces(p, px, {one}, limn::RestoreFacesOptions().cuda_stream(reinterpret_cast<void*>(0x10))),
        doctest::Contains("cuda_stream is set, but model"), limn::Error);
    std::vector<limn_face> found(8);
    size_t count = 0;
    CHECK_THROWS_WITH_AS(detector.submit_detect_faces(p, found.data(), found.size(), &count,
                                                      limn::DetectFacesOptions().images_device("cuda:1")),
                         doctest::Contains("images_device is 'cuda:1'"), limn::Error);
    CHECK(out == expected);
    // The raw run: limn_model_run_with and its job.
    CHECK_THROWS_WITH_AS(unet.run(a, b, limn::RunOptions().images_device("cuda:0")),
                         doctest::Contains("images_device is 'cuda:0', but model"), limn::Error);
    CHECK_THROWS_WITH_AS(unet.submit_run(a, b, limn::RunOptions().cuda_stream(reinterpret_cast<void*>(0x10))),
                         doctest::Contains("cuda_stream is set, but model"), limn::Error);
    CHECK(out == expected);
    std::vector<uint8_t> run_out(in.size()), run_host(in.size());
    limn_image r1 = rgba(run_out), r2 = rgba(run_host);
    unet.run(a, r1, limn::RunOptions().images_device("cpu"));
    unet.run(a, r2);
    CHECK(run_out == run_host);
    unet.submit_run(a, r1, limn::RunOptions()).get();
    CHECK(run_out == run_host);
    CHECK_THROWS_WITH_AS(limn::Frames(unet, FW, FH, LIMN_PIXEL_RGBA8, on("cuda:0")),
                         doctest::Contains("images_device is 'cuda:0', but model"), limn::Error);
    CHECK_THROWS_WITH_AS(limn::Frames(unet, FW, FH, LIMN_PIXEL_RGBA8,
                                      limn::CartoonizeOptions().cuda_stream(reinterpret_cast<void*>(0x10))),
                         doctest::Contains("cuda_stream is set, but model"), limn::Error);

    // Inside another call's options, the detector's must not say where images are: that call's do.
    CHECK_THROWS_WITH_AS(face.restore_faces(p, px, {}, limn::RestoreFacesOptions().detector(
                                                           detector, limn::DetectFacesOptions().images_device("cuda:0"))),
                         doctest::Contains("detect_options sets images_device or cuda_stream"), limn::Error);
}
