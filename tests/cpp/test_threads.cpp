// One model handle used from many threads at once gives the same results as serial calls.
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <atomic>
#include <thread>

#include "fixtures.h"

TEST_CASE("8 threads on one handle give results identical to serial runs") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), limn::ModelOptions().device("cpu"));
    constexpr int kThreads = 8, kRuns = 6, W = 40, H = 26;
    std::vector<std::vector<uint8_t>> inputs, expected;
    for (int t = 0; t < kThreads; ++t) {
        inputs.push_back(limn_test::pattern(W * H * 3, 1000 + t));
        std::vector<uint8_t> out(W * H * 3);
        limn_image a{inputs.back().data(), W, H, W * 3, LIMN_PIXEL_RGB8};
        limn_image b{out.data(), W, H, W * 3, LIMN_PIXEL_RGB8};
        model.run(a, b);
        expected.push_back(out);
    }
    std::atomic<int> mismatches{0}, errors{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t) {
        pool.emplace_back([&, t] {
            for (int r = 0; r < kRuns; ++r) {
                std::vector<uint8_t> out(W * H * 3);
                limn_image a{inputs[t].data(), W, H, W * 3, LIMN_PIXEL_RGB8};
                limn_image b{out.data(), W, H, W * 3, LIMN_PIXEL_RGB8};
                if (limn_model_run(model.get(), &a, &b) != LIMN_OK) {
                    ++errors;
                } else if (out != expected[t]) {
                    ++mismatches;
                }
            }
        });
    }
    for (auto& th : pool) th.join();
    CHECK(errors == 0);
    CHECK(mismatches == 0);
}

TEST_CASE("limn_last_error is per thread") {
    limn_model* m = nullptr;
    limn_model_options o;
    limn_model_options_init(&o);
    o.device = "cpu";
    REQUIRE(limn_model_load("/nonexistent/a.pt", &o, &m) == LIMN_ERR_IO);
    std::string other;
    std::thread([&] {
        limn_model* m2 = nullptr;
        (void)limn_model_load("/nonexistent/b.pt", &o, &m2);  // fails; its message is per thread
        other = limn_last_error();
    }).join();
    CHECK(std::string(limn_last_error()).find("a.pt") != std::string::npos);
    CHECK(other.find("b.pt") != std::string::npos);
}
