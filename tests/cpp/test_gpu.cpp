// GPU tests: run where a CUDA device is usable; elsewhere the program exits 77 and CTest reports
// the test as skipped (never as passed).
#define DOCTEST_CONFIG_IMPLEMENT
#include <ATen/Context.h>  // to check that limn leaves LibTorch's process-wide settings alone
#include <ATen/cuda/Sleep.h>          // a kernel that keeps the caller's stream busy
#include <c10/cuda/CUDAFunctions.h>   // sync debug mode: any LibTorch host synchronisation throws
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <atomic>
#include <cstdio>
#include <thread>

#include "fixtures.h"

namespace {

using limn_test::run_rgb;

limn::ModelOptions cuda() { return limn::ModelOptions().device("cuda"); }


int max_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    int d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(int(a[i]) - int(b[i])));
    return d;
}

// Runs `m` on a w x h float RGB picture in [0, 1] and returns the float result.
std::vector<float> run_float(const limn::Model& m, int w, int h, unsigned seed) {
    const std::vector<uint8_t> bytes = limn_test::pattern(static_cast<size_t>(w) * h * 3, seed);
    std::vector<float> in(bytes.size()), out(bytes.size());
    for (size_t i = 0; i < in.size(); ++i) in[i] = bytes[i] / 255.0f;
    limn_image a{reinterpret_cast<uint8_t*>(in.data()), w, h, size_t(w) * 12, LIMN_PIXEL_RGB32F};
    limn_image b{reinterpret_cast<uint8_t*>(out.data()), w, h, size_t(w) * 12, LIMN_PIXEL_RGB32F};
    m.run(a, b);
    return out;
}

// A pitched buffer on cuda:0 (cudaMallocPitch: rows padded to the device's alignment), as an
// engine's texture or CUDA frame buffer is.
struct DeviceFrame {
    uint8_t* data = nullptr;
    size_t pitch = 0;
    int w, h, bpp;
    DeviceFrame(int width, int height, int bytes_per_pixel) : w(width), h(height), bpp(bytes_per_pixel) {
        void* p = nullptr;
        REQUIRE(cudaMallocPitch(&p, &pitch, size_t(w) * bpp, size_t(h)) == cudaSuccess);
        data = static_cast<uint8_t*>(p);
    }
    ~DeviceFrame() { cudaFree(data); }
    DeviceFrame(const DeviceFrame&) = delete;
    DeviceFrame& operator=(const DeviceFrame&) = delete;
    limn_image image(limn_pixel_format format) const { return limn_image{data, w, h, pitch, format}; }
    // The caller's own copies (the test's, not limn's), on `stream` (0: the legacy default stream).
    void upload(const uint8_t* px, cudaStream_t stream = nullptr) const {
        REQUIRE(cudaMemcpy2DAsync(data, pitch, px, size_t(w) * bpp, size_t(w) * bpp, size_t(h),
                                  cudaMemcpyHostToDevice, stream) == cudaSuccess);
        if (!stream) REQUIRE(cudaStreamSynchronize(nullptr) == cudaSuccess);
    }
    void download(uint8_t* px, cudaStream_t stream = nullptr) const {
        REQUIRE(cudaMemcpy2DAsync(px, size_t(w) * bpp, data, pitch, size_t(w) * bpp, size_t(h),
                                  cudaMemcpyDeviceToHost, stream) == cudaSuccess);
        if (!stream) REQUIRE(cudaStreamSynchronize(nullptr) == cudaSuccess);
    }
    std::vector<uint8_t> download() const {
        std::vector<uint8_t> px(size_t(w) * h * bpp);
        download(px.data());
        return px;
    }
};

// Lifts cuda:0's memory cap at scope exit, so that a failure under a cap leaves none for the
// later tests.
struct Uncap {
    ~Uncap() { (void)limn_memory_set_limit("cuda:0", 0); }
};

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0.0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
    return d;
}

}  // namespace

TEST_CASE("cuda devices are listed and resolved") {
    CHECK(limn::resolve_device("cuda") == "cuda:0");
    CHECK(limn::resolve_device("auto") == "cuda:0");
    const auto devs = limn::devices();
    REQUIRE(devs.size() >= 2);
    CHECK(devs[1].type == LIMN_DEVICE_CUDA);
    CHECK(std::string(devs[1].id) == "cuda:0");
    CHECK(devs[1].total_memory > (1ull << 30));
    CHECK(devs[1].compute_capability >= 50);
    const std::string beyond = "cuda:" + std::to_string(devs.size() - 1);
    CHECK_THROWS_AS(limn::resolve_device(beyond), limn::Error);
    CHECK(limn::build_info().find("CUDA usable now: yes") != std::string::npos);
}

TEST_CASE("fp32 on CUDA: identity is exact, a UNet matches the CPU") {
    const limn::Model id(limn_test::fixture("identity.pt"), cuda().precision(LIMN_PRECISION_FP32));
    CHECK(std::string(id.info().device) == "cuda:0");
    std::vector<uint8_t> in = limn_test::pattern(31 * 17 * 4, 3), out(in.size());
    limn_image a{in.data(), 31, 17, 31 * 4, LIMN_PIXEL_BGRA8}, b{out.data(), 31, 17, 31 * 4, LIMN_PIXEL_BGRA8};
    id.run(a, b);
    CHECK(in == out);

    const limn::Model cpu(limn_test::fixture("tiny_unet.pt"), limn_test::cpu());
    const limn::Model gpu(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
    CHECK(max_diff(run_rgb(cpu, 96, 64, 5), run_rgb(gpu, 96, 64, 5)) <= 1);
}

TEST_CASE("fp32 on CUDA is IEEE fp32 (no TF32); tf32 only when asked for") {
    const char* dir = std::getenv("LIMN_PARITY_CASES");
    REQUIRE(dir);
    const std::string path = std::string(dir) + "/dctnet.pt";  // the real architecture, 20-odd convolutions
    const auto ref = run_float(limn::Model(path, limn_test::cpu()), 128, 96, 21);
    const limn::Model fp32(path, cuda().precision(LIMN_PRECISION_FP32));
    const double ieee = max_diff(ref, run_float(fp32, 128, 96, 21));
    const limn::Model tf32(path, cuda().precision(LIMN_PRECISION_TF32));
    CHECK(tf32.info().precision == LIMN_PRECISION_TF32);
    const double reduced = max_diff(ref, run_float(tf32, 128, 96, 21));
    MESSAGE("DCT-Net on CUDA against the CPU: fp32 max abs diff " << ieee << ", tf32 " << reduced);
    CHECK(ieee <= 1e-4);
    CHECK(reduced <= 5e-2);
    // GPEN's module cannot be frozen: its convolutions sit in submodule methods, stated there too.
    const std::string gpen = std::string(dir) + "/gpen-tiny.pt";
    const auto gpen_ref = run_float(limn::Model(gpen, limn_test::cpu()), 64, 64, 22);
    const double gpen_ieee =
        max_diff(gpen_ref, run_float(limn::Model(gpen, cuda().precision(LIMN_PRECISION_FP32)), 64, 64, 22));
    MESSAGE("GPEN (tiny) on CUDA against the CPU: fp32 max abs diff " << gpen_ieee);
    CHECK(gpen_ieee <= 2e-4);
}

TEST_CASE("cuDNN benchmark and TF32 are per model: LibTorch's process-wide settings stay as they were") {
    auto& ctx = at::globalContext();
    const auto conv_precision = [&] { return ctx.float32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV); };
    const bool bench = ctx.benchmarkCuDNN();
    const at::Float32Precision tf32 = conv_precision();
    {
        // A fixed-size model: cuDNN benchmark on by default, for this model only.
        const limn::Model face(limn_test::fixture("tiny_face.pt"), cuda().precision(LIMN_PRECISION_FP32));
        const limn::Model tf(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_TF32));
        std::vector<uint8_t> in = limn_test::pattern(200 * 150 * 3, 4), out(in.size());
        limn_image a{in.data(), 200, 150, 600, LIMN_PIXEL_RGB8}, o{out.data(), 200, 150, 600, LIMN_PIXEL_RGB8};
        limn_face f{};
        for (int i = 0; i < 10; ++i) f.landmarks[i] = face.info().face_template[i] * 1.5f + 20.0f;
        CHECK(face.restore_faces(a, o, {f}).faces == 1);
        run_rgb(tf, 96, 64, 2);
        CHECK(ctx.benchmarkCuDNN() == bench);
        CHECK(conv_precision() == tf32);
    }
    CHECK(ctx.benchmarkCuDNN() == bench);
    CHECK(conv_precision() == tf32);
}

TEST_CASE("auto precision loads in fp32, and says why, when fp16 fails the self-test") {
    // imprecise_half.pt is exact in fp32 but rounds to 0 or 1 in fp16: finite and wrong.
    const std::string path = limn_test::fixture("imprecise_half.pt");
    try {
        limn::Model m(path, cuda().precision(LIMN_PRECISION_FP16));
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_INVALID_MODEL);
        CHECK(std::string(e.what()).find("self-test") != std::string::npos);
    }
    const limn::Model m(path, cuda());
    const limn_model_info info = m.info();
    CHECK(info.precision == LIMN_PRECISION_FP32);
    CHECK(std::string(info.precision_note).find("fp16") != std::string::npos);
    std::vector<uint8_t> in = limn_test::pattern(40 * 30 * 3, 6), out(in.size());
    limn_image a{in.data(), 40, 30, 120, LIMN_PIXEL_RGB8}, b{out.data(), 40, 30, 120, LIMN_PIXEL_RGB8};
    m.run(a, b);
    CHECK(in == out);
    // A model that passes in fp16 says nothing.
    CHECK(std::string(limn::Model(limn_test::fixture("tiny_unet.pt"), cuda()).info().precision_note).empty());
}

TEST_CASE("fp16 and bf16 on CUDA stay close to fp32; auto picks fp16") {
    const limn::Model fp32(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
    const auto ref = run_rgb(fp32, 128, 96, 8);
    const limn::Model fp16(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP16));
    CHECK(fp16.info().precision == LIMN_PRECISION_FP16);
    CHECK(max_diff(ref, run_rgb(fp16, 128, 96, 8)) <= 3);
    const limn::Model bf16(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_BF16));
    CHECK(max_diff(ref, run_rgb(bf16, 128, 96, 8)) <= 12);
    const limn::Model autop(limn_test::fixture("tiny_unet.pt"), cuda());
    CHECK(autop.info().precision == LIMN_PRECISION_FP16);
}

TEST_CASE("fp16 overflow on CUDA: reported, or recomputed in fp32 when allowed") {
    const std::string path = limn_test::fixture("overflow_half.pt");
    try {
        limn::Model m(path, cuda().precision(LIMN_PRECISION_FP16).fp32_fallback(false));
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_NON_FINITE);
    }
    const limn::Model m(path, cuda());  // auto precision: fp16 with the fp32 fallback
    std::vector<uint8_t> in = limn_test::pattern(16 * 16 * 3, 2), out(in.size());
    limn_image a{in.data(), 16, 16, 48, LIMN_PIXEL_RGB8}, b{out.data(), 16, 16, 48, LIMN_PIXEL_RGB8};
    m.run(a, b);
    CHECK(in == out);
}

TEST_CASE("memory: cap, statistics, release, and recovery after out-of-memory") {
    const limn::Model m(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
    limn::reset_peak_memory("cuda:0");
    run_rgb(m, 512, 512, 1);
    limn_memory_stats s = limn::memory_stats("cuda:0");
    CHECK(s.peak_allocated > 512ull * 512 * 3 * 4);
    CHECK(s.reserved >= s.allocated);
    CHECK(s.device_total > s.device_free);
    limn::release_cached_memory("cuda:0");
    CHECK(limn::memory_stats("cuda:0").reserved <= s.reserved);

    limn::set_memory_limit("cuda:0", 256ull << 20);
    const Uncap uncap;
    limn::reset_peak_memory("cuda:0");  // the peak below is this cap's, not the earlier tests'
    CHECK(limn::memory_stats("cuda:0").limit == (256ull << 20));
    // 4096x4096 through a width-8 UNet needs gigabytes: over the cap.
    try {
        run_rgb(m, 4096, 4096, 2);
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_OUT_OF_MEMORY);
    }
    // The model stays usable and a smaller call succeeds under the same cap.
    const auto small = run_rgb(m, 256, 256, 3);
    CHECK(small.size() == 256u * 256 * 3);
    CHECK(limn::memory_stats("cuda:0").peak_reserved <= (256ull << 20) + (32ull << 20));
    limn::set_memory_limit("cuda:0", 0);
    CHECK(limn::memory_stats("cuda:0").limit == 0);
    CHECK_THROWS_AS(limn::set_memory_limit("cuda:0", 1ull << 50), limn::Error);
}

TEST_CASE("8 threads on one CUDA handle give serial results") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
    std::vector<std::vector<uint8_t>> expected;
    for (int t = 0; t < 8; ++t) expected.push_back(run_rgb(model, 64, 64, 50 + t));
    std::vector<std::thread> pool;
    std::atomic<int> bad{0};
    for (int t = 0; t < 8; ++t) {
        pool.emplace_back([&, t] {
            for (int r = 0; r < 5; ++r)
                if (run_rgb(model, 64, 64, 50 + t) != expected[t]) ++bad;
        });
    }
    for (auto& th : pool) th.join();
    CHECK(bad == 0);
}

TEST_CASE("jobs on CUDA equal the synchronous calls; frames on CUDA allocate nothing once warm") {
    const limn::Model model(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
    constexpr int W = 96, H = 64, kJobs = 24;
    const limn::CartoonizeOptions options = limn::CartoonizeOptions().tile_size(32).strength(0.8f);
    std::vector<std::vector<uint8_t>> ins, sync_out, async_out;
    for (int i = 0; i < kJobs; ++i) {
        ins.push_back(limn_test::pattern(size_t(W) * H * 4, 300 + i));
        sync_out.emplace_back(ins.back().size());
        async_out.emplace_back(ins.back().size());
        limn_image a{ins[i].data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8};
        limn_image b{sync_out[i].data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8};
        model.cartoonize(a, b, options);
    }
    std::vector<limn_image> views_in, views_out;
    for (int i = 0; i < kJobs; ++i) {
        views_in.push_back(limn_image{ins[i].data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8});
        views_out.push_back(limn_image{async_out[i].data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8});
    }
    std::vector<limn::Job> jobs;
    for (int i = 0; i < kJobs; ++i) jobs.push_back(model.submit_cartoonize(views_in[i], views_out[i], options));
    for (const auto& j : jobs) j.get();
    for (int i = 0; i < kJobs; ++i) CHECK(async_out[i] == sync_out[i]);

    const limn::Frames frames(model, W, H, LIMN_PIXEL_RGBA8, options);
    for (int i = 0; i < 3; ++i) frames.run(views_in[i], views_out[i]);
    const uint64_t before = limn::memory_stats("cuda:0").allocations;
    for (int i = 0; i < kJobs; ++i) frames.run(views_in[i], views_out[i]);
    CHECK(limn::memory_stats("cuda:0").allocations == before);  // the caching allocator's device allocations
    for (int i = 0; i < kJobs; ++i) CHECK(async_out[i] == sync_out[i]);
}

TEST_CASE("pipelines on CUDA in fp32 and fp16 agree with the CPU") {
    const limn::Model cpu_model(limn_test::fixture("tiny_unet.pt"), limn_test::cpu());
    std::vector<uint8_t> in = limn_test::pattern(301 * 203 * 3, 9), ref(in.size());
    limn_image a{in.data(), 301, 203, 301 * 3, LIMN_PIXEL_RGB8}, r{ref.data(), 301, 203, 301 * 3, LIMN_PIXEL_RGB8};
    cpu_model.cartoonize(a, r, limn::CartoonizeOptions().tile_size(96));
    for (auto p : {LIMN_PRECISION_FP32, LIMN_PRECISION_FP16}) {
        CAPTURE(p);
        const limn::Model m(limn_test::fixture("tiny_unet.pt"), cuda().precision(p));
        std::vector<uint8_t> out(in.size());
        limn_image o{out.data(), 301, 203, 301 * 3, LIMN_PIXEL_RGB8};
        CHECK(m.cartoonize(a, o, limn::CartoonizeOptions().tile_size(96)).tiles > 1);
        CHECK(max_diff(out, ref) <= (p == LIMN_PRECISION_FP32 ? 2 : 6));
        const limn::Model face(limn_test::fixture("identity_face.pt"), cuda().precision(p));
        limn_face f{};
        const limn_model_info info = face.info();
        for (int i = 0; i < 10; ++i) f.landmarks[i] = info.face_template[i] * 1.5f + 20.0f;
        CHECK(face.restore_faces(a, o, {f}).faces == 1);
    }
}

TEST_CASE("RetinaFace on CUDA in fp32, fp16 and bf16 finds the CPU's face" *
          doctest::skip(!limn_test::detect_cases_present())) {
    const char* dir = std::getenv("LIMN_DETECT_CASES");
    REQUIRE(dir);
    const std::string model = std::string(dir) + "/retinaface.pt";
    std::vector<char> raw = limn_test::read_file(std::string(dir) + "/astronaut.rgb");
    REQUIRE(raw.size() == 512u * 512 * 3);
    limn_image photo{reinterpret_cast<uint8_t*>(raw.data()), 512, 512, 512 * 3, LIMN_PIXEL_RGB8};
    const std::vector<limn_face> ref =
        limn::Model(model, limn_test::cpu()).detect_faces(photo);
    REQUIRE(ref.size() == 1);
    for (auto p : {LIMN_PRECISION_FP32, LIMN_PRECISION_FP16, LIMN_PRECISION_BF16}) {
        CAPTURE(p);
        const limn::Model det(model, cuda().precision(p));  // loading also passes the self-test
        const std::vector<limn_face> got = det.detect_faces(photo);
        REQUIRE(got.size() == 1);
        const float tol = p == LIMN_PRECISION_FP32 ? 0.05f : 2.0f;
        for (int k = 0; k < 4; ++k) CHECK(std::fabs(got[0].box[k] - ref[0].box[k]) <= tol);
        for (int k = 0; k < 10; ++k) CHECK(std::fabs(got[0].landmarks[k] - ref[0].landmarks[k]) <= tol);
        CHECK(std::fabs(got[0].score - ref[0].score) <= 0.01f);
    }
}

TEST_CASE("device images: pitched RGBA and BGRA in and out of CUDA memory, in place, equal the host path") {
    const limn::Model unet(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
    constexpr int W = 301, H = 203;
    const auto on_device = limn::CartoonizeOptions().images_device("cuda:0").tile_size(96).strength(0.8f);
    const auto on_host = limn::CartoonizeOptions().tile_size(96).strength(0.8f);
    for (limn_pixel_format f : {LIMN_PIXEL_RGBA8, LIMN_PIXEL_BGRA8, LIMN_PIXEL_RGB8}) {
        CAPTURE(f);
        const int bpp = limn_pixel_format_bytes_per_pixel(f);
        std::vector<uint8_t> in = limn_test::pattern(size_t(W) * H * bpp, 21), ref(in.size());
        limn_image a{in.data(), W, H, size_t(W) * bpp, f}, r{ref.data(), W, H, size_t(W) * bpp, f};
        unet.cartoonize(a, r, on_host);
        const DeviceFrame din(W, H, bpp), dout(W, H, bpp);
        CHECK(din.pitch > size_t(W) * bpp);  // really pitched
        din.upload(in.data());
        limn_image di = din.image(f), dout_image = dout.image(f);
        CHECK(unet.cartoonize(di, dout_image, on_device).tiles > 1);
        CHECK(dout.download() == ref);  // alpha passed through, as on the host
        CHECK(din.download() == in);    // the input untouched
        unet.cartoonize(di, di, on_device);  // in place
        CHECK(din.download() == ref);
    }
    // The raw run (limn_model_run_with), one image and a batch of two, pitched, in and out of CUDA.
    {
        constexpr int RW = 128, RH = 96;
        std::vector<uint8_t> a0 = limn_test::pattern(size_t(RW) * RH * 4, 31), a1 = limn_test::pattern(a0.size(), 32);
        std::vector<uint8_t> h0(a0.size()), h1(a0.size());
        std::vector<limn_image> hin{{a0.data(), RW, RH, size_t(RW) * 4, LIMN_PIXEL_RGBA8},
                                    {a1.data(), RW, RH, size_t(RW) * 4, LIMN_PIXEL_RGBA8}};
        std::vector<limn_image> hout{{h0.data(), RW, RH, size_t(RW) * 4, LIMN_PIXEL_RGBA8},
                                     {h1.data(), RW, RH, size_t(RW) * 4, LIMN_PIXEL_RGBA8}};
        unet.run_batch(hin, hout);
        const DeviceFrame d0(RW, RH, 4), d1(RW, RH, 4), e0(RW, RH, 4), e1(RW, RH, 4);
        d0.upload(a0.data());
        d1.upload(a1.data());
        limn_image ins[2] = {d0.image(LIMN_PIXEL_RGBA8), d1.image(LIMN_PIXEL_RGBA8)};
        limn_image outs[2] = {e0.image(LIMN_PIXEL_RGBA8), e1.image(LIMN_PIXEL_RGBA8)};
        limn_run_options ro;
        REQUIRE(limn_run_options_init(&ro) == LIMN_OK);
        ro.images_device = "cuda:0";
        REQUIRE_MESSAGE(limn_model_run_with(unet.get(), ins, outs, 2, &ro) == LIMN_OK, limn_last_error());
        CHECK(e0.download() == h0);
        CHECK(e1.download() == h1);
        // In place, one image: against the host's run of that one image (a batch of one may take
        // other convolution kernels than a batch of two).
        std::vector<uint8_t> single(a0.size());
        limn_image single_out{single.data(), RW, RH, size_t(RW) * 4, LIMN_PIXEL_RGBA8};
        unet.run(hin[0], single_out);
        unet.run(ins[0], ins[0], limn::RunOptions().images_device("cuda"));  // in place
        CHECK(d0.download() == single);
    }

    // Restoration and detection on device images: the host path's results.
    std::vector<uint8_t> photo = limn_test::pattern(128 * 128 * 4, 9), ref(photo.size());
    limn_image p{photo.data(), 128, 128, 128 * 4, LIMN_PIXEL_RGBA8}, pr{ref.data(), 128, 128, 128 * 4, LIMN_PIXEL_RGBA8};
    const DeviceFrame dp(128, 128, 4), dq(128, 128, 4);
    dp.upload(photo.data());
    limn_image dpi = dp.image(LIMN_PIXEL_RGBA8), dqi = dq.image(LIMN_PIXEL_RGBA8);
    const limn::Model face(limn_test::fixture("tiny_face.pt"), cuda().precision(LIMN_PRECISION_FP32));
    limn_face one{};
    const float marks[10] = {50, 55, 78, 55, 64, 70, 53, 85, 75, 85};
    std::copy(marks, marks + 10, one.landmarks);
    CHECK(face.restore_faces(p, pr, {one}).faces == 1);
    CHECK(face.restore_faces(dpi, dqi, {one}, limn::RestoreFacesOptions().images_device("cuda")).faces == 1);
    CHECK(dq.download() == ref);
    const limn::Model detector(limn_test::fixture("tiny_detect.pt"), cuda().precision(LIMN_PRECISION_FP32));
    const std::vector<limn_face> host_faces = detector.detect_faces(p);
    const std::vector<limn_face> device_faces = detector.detect_faces(dpi, limn::DetectFacesOptions().images_device("cuda:0"));
    REQUIRE(device_faces.size() == host_faces.size());
    for (size_t i = 0; i < host_faces.size(); ++i) CHECK(std::memcmp(&device_faces[i], &host_faces[i], sizeof(limn_face)) == 0);

    // Wrong memory is refused before any work, naming what is wrong; the output is not written.
    std::vector<uint8_t> host(128 * 128 * 4);  // the output's size: the size check comes first
    limn_image not_device{host.data(), 128, 128, 128 * 4, LIMN_PIXEL_RGBA8};
    CHECK_THROWS_WITH_AS(unet.cartoonize(not_device, dqi, on_device), doctest::Contains("input image data is host memory"),
                         limn::Error);
    limn_image far_in = dp.image(LIMN_PIXEL_RGBA8), far_out = dq.image(LIMN_PIXEL_RGBA8);
    far_in.stride = far_out.stride = size_t{1} << 40;  // a second row 1 TiB on: past any GPU's memory
    CHECK_THROWS_WITH_AS(unet.cartoonize(far_in, far_out, limn::CartoonizeOptions().images_device("cuda")),
                         doctest::Contains("input image's byte"), limn::Error);
    CHECK_THROWS_WITH_AS(unet.cartoonize(dpi, dqi, limn::CartoonizeOptions().images_device("cuda:7")),
                         doctest::Contains("images_device is 'cuda:7', but model"), limn::Error);
    CHECK(dq.download() == ref);
}

TEST_CASE("device images on the caller's stream: queued after its work and before its later work, no host wait") {
    const limn::Model unet(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
    constexpr int W = 256, H = 192;
    cudaStream_t stream = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
    std::vector<uint8_t> first = limn_test::pattern(size_t(W) * H * 4, 1), second = limn_test::pattern(first.size(), 2);
    std::vector<uint8_t> ref(first.size());
    limn_image s{second.data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8}, r{ref.data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8};
    unet.cartoonize(s, r);
    uint8_t* pinned = nullptr;  // the caller's pinned staging (an engine's readback buffer)
    REQUIRE(cudaMallocHost(reinterpret_cast<void**>(&pinned), first.size()) == cudaSuccess);
    std::copy(second.begin(), second.end(), pinned);
    const DeviceFrame din(W, H, 4), dout(W, H, 4);
    const limn::Frames frames(unet, W, H, LIMN_PIXEL_RGBA8,
                              limn::CartoonizeOptions().images_device("cuda:0").cuda_stream(stream));
    limn_image di = din.image(LIMN_PIXEL_RGBA8), dout_image = dout.image(LIMN_PIXEL_RGBA8);
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        din.upload(first.data());  // the other frame, until the stream's copy below runs
        REQUIRE(cudaMemsetAsync(dout.data, 0, dout.pitch * H, stream) == cudaSuccess);
        REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
        {
            // Before: a kernel that keeps the stream busy (about a second), then the copy of the
            // frame into the input, both on the caller's stream.
            const c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromExternal(stream, 0));
            at::cuda::sleep(int64_t{2} << 30);
        }
        din.upload(pinned, stream);
        const uint64_t before = limn::memory_stats("cuda:0").allocations;
        if (round == 0) {
            // Queued: LibTorch may not synchronise the host anywhere in the call (it throws if it does).
            c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
            const limn_status st = limn_frames_run(frames.get(), &di, &dout_image);
            c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
            REQUIRE_MESSAGE(st == LIMN_OK, limn_last_error());
            const cudaError_t busy = cudaStreamQuery(stream);
            (void)cudaGetLastError();  // "not ready" is no error; leave none for LibTorch's next check
            CHECK(busy == cudaErrorNotReady);  // the call did not wait for the stream
            // After: the caller's copy of the output, on the stream.
            std::vector<uint8_t> back(first.size());
            dout.download(back.data(), stream);
            REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
            CHECK(back == ref);
            CHECK(limn::memory_stats("cuda:0").allocations == before);  // warm: nothing allocated
        } else {
            // A job on the stream: it waits (on the device) for the work queued before the submit,
            // and its end says the output is written.
            frames.submit(di, dout_image).get();
            CHECK(dout.download() == ref);
        }
    }
    // Ten more frames on the stream allocate nothing.
    const uint64_t before = limn::memory_stats("cuda:0").allocations;
    for (int i = 0; i < 10; ++i) frames.run(di, dout_image);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    CHECK(limn::memory_stats("cuda:0").allocations == before);
    CHECK(dout.download() == ref);
    cudaFreeHost(pinned);
    cudaStreamDestroy(stream);
}

TEST_CASE("the caller's stream: special handles and capture refused; host images wait for it; a free waits") {
    const limn::Model unet(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
    constexpr int W = 64, H = 48;
    const DeviceFrame din(W, H, 4), dout(W, H, 4);
    limn_image di = din.image(LIMN_PIXEL_RGBA8), dout_image = dout.image(LIMN_PIXEL_RGBA8);
    const auto with_stream = [](cudaStream_t s) {
        return limn::CartoonizeOptions().images_device("cuda").cuda_stream(s);
    };
    // The special handles: LibTorch's allocator could not tell their threads' work apart.
    CHECK_THROWS_WITH_AS(unet.cartoonize(di, dout_image, with_stream(cudaStreamLegacy)),
                         doctest::Contains("cudaStreamLegacy"), limn::Error);
    CHECK_THROWS_WITH_AS(unet.cartoonize(di, dout_image, with_stream(cudaStreamPerThread)),
                         doctest::Contains("cudaStreamPerThread"), limn::Error);
    cudaStream_t stream = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
    // Under graph capture: refused before anything is queued, and the capture still ends well.
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed) == cudaSuccess);
    CHECK_THROWS_WITH_AS(unet.cartoonize(di, dout_image, with_stream(stream)), doctest::Contains("being captured"),
                         limn::Error);
    cudaGraph_t graph = nullptr;
    CHECK(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
    if (graph) cudaGraphDestroy(graph);

    // Host images with the stream: the input is read after the stream's earlier work, here a busy
    // kernel and then the copy of the frame into the (pinned host) input.
    std::vector<uint8_t> first = limn_test::pattern(size_t(W) * H * 4, 5), second = limn_test::pattern(first.size(), 6);
    std::vector<uint8_t> ref(first.size()), out(first.size());
    limn_image s{second.data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8};
    limn_image r{ref.data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8};
    unet.cartoonize(s, r);
    din.upload(second.data());
    uint8_t* pinned = nullptr;
    REQUIRE(cudaMallocHost(reinterpret_cast<void**>(&pinned), first.size()) == cudaSuccess);
    std::copy(first.begin(), first.end(), pinned);
    {
        const c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromExternal(stream, 0));
        at::cuda::sleep(int64_t{1} << 30);
    }
    din.download(pinned, stream);  // the frame arrives in the host input once the kernel is done
    limn_image hin{pinned, W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8};
    limn_image hout{out.data(), W, H, size_t(W) * 4, LIMN_PIXEL_RGBA8};
    unet.cartoonize(hin, hout, limn::CartoonizeOptions().cuda_stream(stream));
    CHECK(out == ref);

    // Freeing a model waits until its calls queued on the caller's stream have run (they read its
    // weights), here a call queued behind a busy kernel.
    {
        const limn::Model queued(limn_test::fixture("tiny_unet.pt"), cuda().precision(LIMN_PRECISION_FP32));
        {
            const c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromExternal(stream, 0));
            at::cuda::sleep(int64_t{1} << 30);
        }
        queued.cartoonize(di, dout_image, with_stream(stream));
        const cudaError_t busy = cudaStreamQuery(stream);
        (void)cudaGetLastError();
        CHECK(busy == cudaErrorNotReady);
    }
    CHECK(cudaStreamQuery(stream) == cudaSuccess);
    cudaFreeHost(pinned);
    cudaStreamDestroy(stream);
}

TEST_CASE("a 4096x4096 photo completes under a 1 GiB cap by tiling; peak memory stays under it") {
    const char* dir = std::getenv("LIMN_PARITY_CASES");
    REQUIRE(dir);
    const limn::Model m(std::string(dir) + "/dctnet.pt", cuda().precision(LIMN_PRECISION_FP16));
    std::vector<uint8_t> in = limn_test::pattern(4096ull * 4096 * 3, 4), whole(in.size()), out(in.size());
    limn_image a{in.data(), 4096, 4096, 4096 * 3, LIMN_PIXEL_RGB8};
    limn_image w{whole.data(), 4096, 4096, 4096 * 3, LIMN_PIXEL_RGB8}, o{out.data(), 4096, 4096, 4096 * 3, LIMN_PIXEL_RGB8};
    // The reference: one pass, no cap.
    CHECK(m.cartoonize(a, w, limn::CartoonizeOptions().tile_size(4096)).tiles == 1);
    limn::release_cached_memory("cuda:0");
    limn::set_memory_limit("cuda:0", 1ull << 30);
    const Uncap uncap;
    limn::reset_peak_memory("cuda:0");
    const limn_pipeline_stats st = m.cartoonize(a, o);
    const limn_memory_stats mem = limn::memory_stats("cuda:0");
    limn::set_memory_limit("cuda:0", 0);
    double se = 0.0;
    for (size_t i = 0; i < out.size(); ++i) se += double(int(out[i]) - int(whole[i])) * double(int(out[i]) - int(whole[i]));
    const double mse = se / double(out.size());
    const double psnr = mse > 0.0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : 99.0;
    MESSAGE("4096x4096 DCT-Net fp16 under a 1 GiB cap: " << st.tiles << " tiles of " << st.tile_size << " px, "
                                                        << st.oom_retries << " OOM retries, " << st.seconds
                                                        << " s, peak allocated " << (mem.peak_allocated >> 20)
                                                        << " MiB, peak reserved " << (mem.peak_reserved >> 20)
                                                        << " MiB, PSNR " << psnr << " dB against one pass");
    CHECK(st.tiles > 1);
    CHECK(mem.peak_reserved <= (1ull << 30));
    CHECK(psnr >= 45.0);
}

int main(int argc, char** argv) {
    if (!limn_cuda_available()) {
        // On the GPU machine (tests/gpu/run.sh) a missing GPU is a failure, not a skip.
        const char* required = std::getenv("LIMN_REQUIRE_GPU");
        const bool must = required && std::string(required) == "1";
        std::printf("no usable CUDA device: GPU tests %s\n", must ? "FAILED (LIMN_REQUIRE_GPU=1)" : "skipped");
        return must ? 1 : 77;
    }
    if (!limn_test::detect_cases_present()) {
        std::printf("RetinaFace case skipped: no detection cases (they need ../shared/data/"
                    "retinaface-mobilenet0.25.pth)\n");
    }
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
