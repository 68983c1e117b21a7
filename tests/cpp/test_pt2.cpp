// Compiled .pt2 packages (torch.export + AOTInductor) through the public C++ wrapper: the same
// results as the TorchScript file, loading from memory, what a package is fixed to, broken
// packages, the expected SHA-256 option, and threads.
#include <doctest/doctest.h>
#include <limn/limn.hpp>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "fixtures.h"

namespace {

using limn_test::fixture;
using limn_test::run_rgb;

// The CPU in fp32 (AUTO may pick bf16 on a CPU with native bf16: tested on its own).
limn::ModelOptions cpu() { return limn::ModelOptions().device("cpu").precision(LIMN_PRECISION_FP32); }

struct LoadResult {
    limn_status status = LIMN_OK;
    std::string message;
};

LoadResult try_load(const std::string& path, const limn::ModelOptions& o) {
    try {
        limn::Model m(path, o);
        return {};
    } catch (const limn::Error& e) {
        return {e.status(), e.what()};
    }
}

// Runs `m` on a w x h float pattern (RGB32F) and returns the float result.
std::vector<float> run_float(const limn::Model& m, int w, int h, unsigned seed) {
    const std::vector<uint8_t> bytes = limn_test::pattern(static_cast<size_t>(w) * h * 3, seed);
    std::vector<float> in(bytes.size()), out(bytes.size(), -1.0f);
    for (size_t i = 0; i < bytes.size(); ++i) in[i] = bytes[i] / 255.0f;
    const size_t stride = static_cast<size_t>(w) * 3 * sizeof(float);
    const limn_image a{reinterpret_cast<uint8_t*>(in.data()), w, h, stride, LIMN_PIXEL_RGB32F};
    limn_image b{reinterpret_cast<uint8_t*>(out.data()), w, h, stride, LIMN_PIXEL_RGB32F};
    m.run(a, b);
    return out;
}

std::string digest_of(const std::string& name) {
    std::ifstream in(fixture("SHA256SUMS"));
    REQUIRE(in);
    std::string hex, file;
    while (in >> hex >> file) {
        if (file == name) return hex;
    }
    FAIL("no digest for " << name);
    return "";
}

size_t entries_in(const std::string& dir) {
    size_t n = 0;
    if (DIR* d = opendir(dir.c_str())) {
        while (const dirent* e = readdir(d)) {
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
        }
        closedir(d);
    }
    return n;
}

}  // namespace

TEST_CASE("pt2: a compiled package runs like the TorchScript file of the same network") {
    const limn::Model ts(fixture("tiny_unet.pt"), cpu());
    const limn::Model pt2(fixture("tiny_unet.pt2"), cpu());
    const limn_model_info i = pt2.info();
    CHECK(std::string(i.format) == "pt2");
    CHECK(std::string(ts.info().format) == "torchscript");
    CHECK(std::string(i.name) == "tiny-unet");
    CHECK(i.size_multiple == 2);
    CHECK(i.tile_margin == 8);
    // Sizes the export never saw, odd multiples of the size rule included.
    for (const auto& [w, h] : std::vector<std::pair<int, int>>{{96, 64}, {34, 22}, {4, 4}, {130, 6}}) {
        CAPTURE(w);
        CAPTURE(h);
        CHECK(limn_test::max_abs_diff(run_float(ts, w, h, 3), run_float(pt2, w, h, 3)) <= 1e-5);
    }
    // A batch.
    std::vector<std::vector<uint8_t>> ins, outs;
    std::vector<limn_image> a, b;
    for (unsigned k = 0; k < 3; ++k) {
        ins.push_back(limn_test::pattern(40 * 30 * 3, k));
        outs.emplace_back(40 * 30 * 3);
    }
    for (unsigned k = 0; k < 3; ++k) {
        a.push_back({ins[k].data(), 40, 30, 40 * 3, LIMN_PIXEL_RGB8});
        b.push_back({outs[k].data(), 40, 30, 40 * 3, LIMN_PIXEL_RGB8});
    }
    REQUIRE(limn_model_run_batch(pt2.get(), a.data(), b.data(), 3) == LIMN_OK);
    for (unsigned k = 0; k < 3; ++k) CHECK(outs[k] == run_rgb(pt2, 40, 30, k));
}

TEST_CASE("pt2: a package's smallest input: raw runs refuse smaller images, pipelines pad them") {
    const limn::Model m(fixture("tiny_unet.pt2"), cpu());
    const limn_model_info i = m.info();
    CHECK(i.min_width == 4);  // two stride-2 levels of a graph exported for sizes 2k, k >= 2
    CHECK(i.min_height == 4);
    CHECK(limn::Model(fixture("tiny_unet.pt"), cpu()).info().min_width == 1);
    std::string message;
    try {
        run_rgb(m, 2, 2, 1);
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_SIZE_RULE);
        message = e.what();
    }
    CHECK(message.find("at least 4x4") != std::string::npos);
    std::vector<uint8_t> px = limn_test::pattern(3 * 2 * 3, 4), out(px.size());
    const limn_image a{px.data(), 3, 2, 9, LIMN_PIXEL_RGB8};
    limn_image b{out.data(), 3, 2, 9, LIMN_PIXEL_RGB8};
    limn_pipeline_stats stats{};
    stats.struct_size = sizeof stats;
    CHECK(limn_cartoonize(m.get(), &a, &b, nullptr, &stats) == LIMN_OK);
    CHECK(stats.tiles == 1);
}

TEST_CASE("pt2: loads from memory through a private temporary file that is gone afterwards") {
    char dir_template[] = "/tmp/limn-test-tmp-XXXXXX";
    REQUIRE(mkdtemp(dir_template) != nullptr);
    const std::string dir = dir_template;
    const char* old = std::getenv("TMPDIR");
    const std::string saved = old ? old : "";
    setenv("TMPDIR", dir.c_str(), 1);
    const std::vector<char> bytes = limn_test::read_file(fixture("tiny_unet.pt2"));
    {
        const limn::Model m = limn::Model::from_memory(bytes.data(), bytes.size(), cpu().name("asset:tiny"));
        CHECK(entries_in(dir) == 0);  // deleted once loaded
        const limn::Model from_path(fixture("tiny_unet.pt2"), cpu());
        CHECK(run_rgb(m, 48, 34, 5) == run_rgb(from_path, 48, 34, 5));
        CHECK(std::string(m.info().format) == "pt2");
    }
    // A broken package in memory fails with the name given, and leaves nothing behind either.
    const std::vector<char> bad = limn_test::read_file(fixture("selftest_mismatch.pt2"));
    try {
        limn::Model::from_memory(bad.data(), bad.size(), cpu().name("asset:broken"));
        FAIL("loaded a package whose self-test fails");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_INVALID_MODEL);
        CHECK(std::string(e.what()).find("asset:broken") != std::string::npos);
    }
    CHECK(entries_in(dir) == 0);
    if (old) setenv("TMPDIR", saved.c_str(), 1); else unsetenv("TMPDIR");
    rmdir(dir.c_str());
}

TEST_CASE("pt2: a package fixes device kind and precision; auto takes them, others are refused") {
    const limn::Model fp32(fixture("tiny_unet.pt2"), limn::ModelOptions().device("auto"));
    CHECK(std::string(fp32.info().device) == "cpu");  // a CPU package, even where CUDA is usable
    CHECK(fp32.info().precision == LIMN_PRECISION_FP32);

    const limn::Model bf16(fixture("tiny_unet_bf16.pt2"), cpu().precision(LIMN_PRECISION_AUTO));
    CHECK(bf16.info().precision == LIMN_PRECISION_BF16);
    const limn::Model ts(fixture("tiny_unet.pt"), cpu());
    CHECK(limn_test::psnr8(run_rgb(ts, 64, 48, 2), run_rgb(bf16, 64, 48, 2)) > 35.0);

    LoadResult r = try_load(fixture("tiny_unet.pt2"), cpu().precision(LIMN_PRECISION_FP16));
    CHECK(r.status == LIMN_ERR_UNSUPPORTED);
    CHECK(r.message.find("compiled for fp32") != std::string::npos);
    r = try_load(fixture("tiny_unet_bf16.pt2"), cpu().precision(LIMN_PRECISION_FP32));
    CHECK(r.status == LIMN_ERR_UNSUPPORTED);
    CHECK(r.message.find("compiled for bf16") != std::string::npos);
    r = try_load(fixture("tiny_unet_bf16.pt2"), cpu().precision(LIMN_PRECISION_AUTO).fp32_fallback(true));
    CHECK(r.status == LIMN_ERR_UNSUPPORTED);
    CHECK(r.message.find("fp32_fallback") != std::string::npos);
    // channels_last has no say over a package's layout: same result either way.
    const limn::Model nchw(fixture("tiny_unet.pt2"), cpu().channels_last(false));
    CHECK(run_rgb(nchw, 32, 32, 9) == run_rgb(fp32, 32, 32, 9));
}

TEST_CASE("pt2: broken or foreign packages are refused with a status and a message naming why") {
    const struct {
        const char* file;
        limn_status status;
        const char* words;
    } cases[] = {
        {"truncated.pt2", LIMN_ERR_INVALID_MODEL, "nor a compiled .pt2 package"},
        {"no_metadata.pt2", LIMN_ERR_INVALID_MODEL, "without limn metadata"},
        {"bad_json.pt2", LIMN_ERR_INVALID_MODEL, "not valid JSON"},
        {"cuda_package.pt2", LIMN_ERR_UNSUPPORTED, "compiled for cuda"},
        {"future_torch.pt2", LIMN_ERR_UNSUPPORTED, "torch 9.9.0"},
        {"alien_cpu.pt2", LIMN_ERR_UNSUPPORTED, "avx1024"},
        {"selftest_mismatch.pt2", LIMN_ERR_INVALID_MODEL, "self-test"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.file);
        const LoadResult r = try_load(fixture(c.file), cpu());
        CHECK(r.status == c.status);
        CHECK(r.message.find(c.words) != std::string::npos);
        CHECK(r.message.find(c.file) != std::string::npos);
    }
    // Kind checks apply as to TorchScript files.
    CHECK(try_load(fixture("tiny_face.pt2"), cpu().expected_kind(LIMN_MODEL_KIND_CARTOON)).status ==
          LIMN_ERR_WRONG_MODEL_KIND);
}

TEST_CASE("expected_sha256: the bytes must hash to it before anything in them is read") {
    for (const std::string name : {"identity.pt", "tiny_unet.pt2"}) {
        CAPTURE(name);
        const std::string hex = digest_of(name);
        CHECK(try_load(fixture(name), cpu().expected_sha256(hex)).status == LIMN_OK);
        std::string upper = hex;
        std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
        CHECK(try_load(fixture(name), cpu().expected_sha256(upper)).status == LIMN_OK);
        std::string wrong = hex;
        wrong[10] = wrong[10] == '0' ? '1' : '0';
        const LoadResult r = try_load(fixture(name), cpu().expected_sha256(wrong));
        CHECK(r.status == LIMN_ERR_INVALID_MODEL);
        CHECK(r.message.find("SHA-256 " + hex) != std::string::npos);
        CHECK(try_load(fixture(name), cpu().expected_sha256("1234")).status == LIMN_ERR_INVALID_ARGUMENT);
        CHECK(try_load(fixture(name), cpu().expected_sha256(std::string(64, 'g'))).status == LIMN_ERR_INVALID_ARGUMENT);
        const std::vector<char> bytes = limn_test::read_file(fixture(name));
        CHECK(limn_test::status_of([&] { limn::Model::from_memory(bytes.data(), bytes.size(), cpu().expected_sha256(hex)); }) == LIMN_OK);
        CHECK(limn_test::status_of([&] { limn::Model::from_memory(bytes.data(), bytes.size(), cpu().expected_sha256(wrong)); }) ==
              LIMN_ERR_INVALID_MODEL);
    }
    // A wrong digest is found without parsing: a garbage file fails on the digest, not the format.
    const LoadResult r = try_load(fixture("garbage.pt"), cpu().expected_sha256(digest_of("identity.pt")));
    CHECK(r.status == LIMN_ERR_INVALID_MODEL);
    CHECK(r.message.find("SHA-256") != std::string::npos);
    CHECK(try_load(fixture("missing.pt2"), cpu().expected_sha256(digest_of("identity.pt"))).status == LIMN_ERR_IO);
}

TEST_CASE("pt2: one package from several threads at once") {
    const limn::Model m(fixture("tiny_unet.pt2"), cpu());
    std::vector<std::vector<uint8_t>> expected;
    for (unsigned t = 0; t < 4; ++t) expected.push_back(run_rgb(m, 66, 40, t));
    std::vector<int> ok(4, 0);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            bool same = true;
            for (int k = 0; k < 5; ++k) same = same && run_rgb(m, 66, 40, t) == expected[t];
            ok[t] = same ? 1 : 0;
        });
    }
    for (auto& th : threads) th.join();
    CHECK(std::count(ok.begin(), ok.end(), 1) == 4);
}
