// 16 threads share one model of each kind and mix every call an engine makes from its threads:
// raw runs, tiled cartoonization, face detection and restoration, model info, memory statistics,
// memory limits. Every result must equal the serial one. Built normally it runs in the default
// test run; built with ThreadSanitizer (tests/sanitize/run.sh tsan) it is the race detector's
// workload. LIMN_STRESS_ROUNDS sets the rounds per thread (default 12).
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fixtures.h"

namespace {

constexpr int kThreads = 16, W = 48, H = 40;

int rounds() {
    const char* env = std::getenv("LIMN_STRESS_ROUNDS");
    return env && std::atoi(env) > 0 ? std::atoi(env) : 12;
}

limn_image rgb_view(std::vector<uint8_t>& px) { return limn_image{px.data(), W, H, W * 3, LIMN_PIXEL_RGB8}; }

// The results one thread's input gives, computed serially first and then by every thread.
struct Results {
    std::vector<uint8_t> run, cartoon, restored;
    std::vector<limn_face> faces;
};

bool same_faces(const std::vector<limn_face>& a, const std::vector<limn_face>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::memcmp(a[i].box, b[i].box, sizeof a[i].box) != 0 || a[i].score != b[i].score) return false;
        if (std::memcmp(a[i].landmarks, b[i].landmarks, sizeof a[i].landmarks) != 0) return false;
    }
    return true;
}

}  // namespace

TEST_CASE("16 threads mixing every call on shared models give the serial results") {
    const limn::Model cartoon(limn_test::fixture("tiny_unet.pt"), limn_test::cpu());
    const limn::Model detector(limn_test::fixture("tiny_detect.pt"), limn_test::cpu());
    const limn::Model restorer(limn_test::fixture("tiny_face.pt"), limn_test::cpu());
    const limn_model_info face_info = restorer.info();
    REQUIRE(face_info.has_face_template == 1);
    // One face, the restorer's template placed in the middle of the picture.
    limn_face face{};
    for (int k = 0; k < 5; ++k) {
        face.landmarks[2 * k] = face_info.face_template[2 * k] * 0.5f + 8.0f;
        face.landmarks[2 * k + 1] = face_info.face_template[2 * k + 1] * 0.5f + 6.0f;
    }
    face.score = 1.0f;

    const auto compute = [&](std::vector<uint8_t> input, Results& r) {
        limn_image in = rgb_view(input);
        r.run.assign(input.size(), 0);
        limn_image out = rgb_view(r.run);
        cartoon.run(in, out);
        r.cartoon.assign(input.size(), 0);
        out = rgb_view(r.cartoon);
        cartoon.cartoonize(in, out, limn::CartoonizeOptions().tile_size(32));
        r.faces = detector.detect_faces(in, limn::DetectFacesOptions().score_threshold(0.0f).max_faces(4));
        r.restored.assign(input.size(), 0);
        out = rgb_view(r.restored);
        restorer.restore_faces(in, out, {face}, limn::RestoreFacesOptions());
    };

    std::vector<std::vector<uint8_t>> inputs;
    std::vector<Results> expected(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        inputs.push_back(limn_test::pattern(static_cast<size_t>(W) * H * 3, 500 + t));
        compute(inputs.back(), expected[t]);
    }

    const int n = rounds();
    std::atomic<int> mismatches{0};
    std::mutex failures_mutex;
    std::vector<std::string> failures;
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t) {
        pool.emplace_back([&, t] {
            try {
                for (int r = 0; r < n; ++r) {
                    Results got;
                    compute(inputs[t], got);
                    const Results& want = expected[t];
                    if (got.run != want.run || got.cartoon != want.cartoon || got.restored != want.restored ||
                        !same_faces(got.faces, want.faces)) {
                        ++mismatches;
                    }
                    // The calls around the work: information, statistics, limits, errors.
                    const limn_model_info info = cartoon.info();
                    if (std::string(info.device) != "cpu") ++mismatches;
                    const limn_memory_stats stats = limn::memory_stats("cpu");
                    if (stats.device_total == 0) ++mismatches;
                    if ((t + r) % 4 == 0) limn::set_memory_limit("cpu", (t % 2) ? (uint64_t{8} << 30) : 0);
                    if ((t + r) % 5 == 0) limn::reset_peak_memory("cpu");
                    limn_model* none = nullptr;
                    limn_model_options o;
                    limn_model_options_init(&o);
                    const std::string missing = "/nonexistent/thread-" + std::to_string(t) + ".pt";
                    if (limn_model_load(missing.c_str(), &o, &none) != LIMN_ERR_IO ||
                        std::string(limn_last_error()).find(missing) == std::string::npos) {
                        ++mismatches;
                    }
                }
            } catch (const std::exception& e) {
                const std::lock_guard<std::mutex> lock(failures_mutex);
                failures.push_back("thread " + std::to_string(t) + ": " + e.what());
            }
        });
    }
    for (auto& th : pool) th.join();
    limn::set_memory_limit("cpu", 0);
    for (const auto& f : failures) FAIL_CHECK(f);
    CHECK(mismatches == 0);
}
