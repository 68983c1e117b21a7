// Loading, metadata, precision and failure handling through the public C++ wrapper.
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <cmath>
#include <cstring>

#include "fixtures.h"

namespace {

using limn_test::run_rgb;

// The CPU in fp32 (AUTO may pick bf16 on a CPU with native bf16: tested on its own).
limn::ModelOptions cpu() { return limn::ModelOptions().device("cpu").precision(LIMN_PRECISION_FP32); }



limn_status load_status(const std::string& path, const limn::ModelOptions& o, std::string* msg = nullptr) {
    try {
        limn::Model m(path, o);
        return LIMN_OK;
    } catch (const limn::Error& e) {
        if (msg) *msg = e.what();
        return e.status();
    }
}

}  // namespace

TEST_CASE("load from memory equals load from path") {
    const limn::Model from_path(limn_test::fixture("tiny_unet.pt"), cpu());
    const std::vector<char> bytes = limn_test::read_file(limn_test::fixture("tiny_unet.pt"));
    const limn::Model from_memory = limn::Model::from_memory(bytes.data(), bytes.size(), cpu());
    CHECK(run_rgb(from_path, 48, 34, 7) == run_rgb(from_memory, 48, 34, 7));
    CHECK(std::string(from_memory.info().name) == "tiny-unet");
}

TEST_CASE("model info reports kind, name, device, precision and size rule") {
    const limn::Model face(limn_test::fixture("tiny_face.pt"), cpu());
    const limn_model_info i = face.info();
    CHECK(i.kind == LIMN_MODEL_KIND_FACE_RESTORE);
    CHECK(std::string(i.name) == "tiny-face");
    CHECK(std::string(i.device) == "cpu");
    CHECK(i.precision == LIMN_PRECISION_FP32);
    CHECK(i.fixed_width == 64);
    CHECK(i.fixed_height == 64);
    CHECK(i.has_face_template == 1);
    CHECK(i.face_template[0] == doctest::Approx(202.0 * 64 / 512));
    CHECK(i.face_template[9] == doctest::Approx(366.3 * 64 / 512));
    CHECK(std::string(i.license).find("CC0") != std::string::npos);

    // A caller that knows an older, shorter struct gets only those bytes written.
    limn_model_info small{};
    std::memset(&small, 0x5A, sizeof small);
    small.struct_size = offsetof(limn_model_info, name);
    REQUIRE(limn_model_get_info(face.get(), &small) == LIMN_OK);
    CHECK(small.kind == LIMN_MODEL_KIND_FACE_RESTORE);
    CHECK(static_cast<unsigned char>(small.name[0]) == 0x5A);
    CHECK(small.struct_size == offsetof(limn_model_info, name));
}

TEST_CASE("auto device says what it chose; auto precision on the CPU is what the device says") {
    const limn::Model m(limn_test::fixture("identity.pt"), limn::ModelOptions().device("auto"));
    const limn_model_info i = m.info();
    CHECK(std::string(i.device) == (limn::cuda_available() ? "cuda:0" : "cpu"));
    // The identity is within 45 dB of fp32 in bf16: AUTO takes the device's own choice.
    if (!limn::cuda_available()) {
        CHECK(std::string(limn_precision_name(i.precision)) == limn::devices().at(0).auto_precision);
    }
}

TEST_CASE("reduced precision on the CPU runs close to fp32 or is refused with UNSUPPORTED") {
    const limn::Model fp32(limn_test::fixture("tiny_unet.pt"), cpu());
    const auto ref = run_rgb(fp32, 64, 48, 3);
    for (auto p : {LIMN_PRECISION_FP16, LIMN_PRECISION_BF16}) {
        CAPTURE(p);
        std::string msg;
        const limn_status st = load_status(limn_test::fixture("tiny_unet.pt"), cpu().precision(p), &msg);
        if (st == LIMN_ERR_UNSUPPORTED) {
            CHECK(msg.find(p == LIMN_PRECISION_FP16 ? "fp16" : "bf16") != std::string::npos);
            continue;
        }
        REQUIRE(st == LIMN_OK);
        const limn::Model m(limn_test::fixture("tiny_unet.pt"), cpu().precision(p));
        CHECK(m.info().precision == p);
        const auto out = run_rgb(m, 64, 48, 3);
        CHECK(limn_test::psnr8(ref, out) >= (p == LIMN_PRECISION_FP16 ? 40.0 : 30.0));
    }
}

TEST_CASE("non-finite results: reported, or recomputed in fp32 when allowed") {
    // overflow_half.pt returns its input in fp32 but Inf in fp16.
    const std::string path = limn_test::fixture("overflow_half.pt");
    std::string msg;
    const limn_status st = load_status(path, cpu().precision(LIMN_PRECISION_FP16).fp32_fallback(false), &msg);
    if (st == LIMN_ERR_UNSUPPORTED) return;  // no fp16 on this CPU build: covered by the GPU tests
    CHECK(st == LIMN_ERR_NON_FINITE);  // found by the self-test at load time
    CHECK(msg.find("fp16") != std::string::npos);
    CHECK(msg.find("fp32 fallback") != std::string::npos);

    // Without the warm-up the same failure appears at the first run.
    const limn::Model lazy(path, cpu().precision(LIMN_PRECISION_FP16).fp32_fallback(false).warmup(false));
    try {
        run_rgb(lazy, 8, 8, 1);
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_NON_FINITE);
    }

    const limn::Model fallback(path, cpu().precision(LIMN_PRECISION_FP16).fp32_fallback(true));
    std::vector<uint8_t> in = limn_test::pattern(8 * 8 * 3, 5), out(in.size());
    limn_image a{in.data(), 8, 8, 24, LIMN_PIXEL_RGB8}, b{out.data(), 8, 8, 24, LIMN_PIXEL_RGB8};
    fallback.run(a, b);
    CHECK(in == out);
}

TEST_CASE("fp16/bf16 convert floating-point tensors only: integer buffers stay, plain attributes follow") {
    // mixed_attributes.pt indexes channels with an int64 buffer and convolves with a kernel held as
    // a plain tensor attribute: converting the index to a float, or leaving the kernel in fp32,
    // makes the run fail.
    const limn::Model fp32(limn_test::fixture("mixed_attributes.pt"), cpu());
    const auto ref = run_rgb(fp32, 24, 16, 7);
    for (auto p : {LIMN_PRECISION_FP16, LIMN_PRECISION_BF16}) {
        CAPTURE(p);
        // A CPU build without the precision at all is the test above's case.
        if (load_status(limn_test::fixture("tiny_unet.pt"), cpu().precision(p)) == LIMN_ERR_UNSUPPORTED) continue;
        std::string msg;
        REQUIRE_MESSAGE(load_status(limn_test::fixture("mixed_attributes.pt"), cpu().precision(p), &msg) == LIMN_OK, msg);
        const limn::Model m(limn_test::fixture("mixed_attributes.pt"), cpu().precision(p));
        const auto out = run_rgb(m, 24, 16, 7);
        CHECK(limn_test::psnr8(ref, out) >= 35.0);
    }
}

TEST_CASE("a non-finite tile reruns the whole picture in fp32 when allowed, else fails") {
    const std::string path = limn_test::fixture("overflow_half.pt");
    std::string msg;
    if (load_status(path, cpu().precision(LIMN_PRECISION_FP16).fp32_fallback(true), &msg) != LIMN_OK) return;
    std::vector<uint8_t> in = limn_test::pattern(70 * 50 * 3, 11), out(in.size());
    limn_image a{in.data(), 70, 50, 70 * 3, LIMN_PIXEL_RGB8}, b{out.data(), 70, 50, 70 * 3, LIMN_PIXEL_RGB8};
    const limn::Model fallback(path, cpu().precision(LIMN_PRECISION_FP16).fp32_fallback(true));
    int calls = 0;
    const limn_pipeline_stats st = fallback.cartoonize(
        a, b, limn::CartoonizeOptions().tile_size(32).progress([&](int32_t, int32_t) { return ++calls > 0; }));
    CHECK(st.tiles > 1);
    CHECK(in == out);
    CHECK(calls == 2 * (st.tiles + 1));  // the fp16 pass, then the fp32 one
    // Tiles planned from the memory profile: its probes overflow in fp16 too, and only measure.
    std::fill(out.begin(), out.end(), 0);
    fallback.cartoonize(a, b);
    CHECK(in == out);
    const limn::Model strict(path, cpu().precision(LIMN_PRECISION_FP16).fp32_fallback(false).warmup(false));
    try {
        strict.cartoonize(a, b, limn::CartoonizeOptions().tile_size(32));
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_NON_FINITE);
    }
}

TEST_CASE("a model whose forward returns the wrong shape") {
    std::string msg;
    CHECK(load_status(limn_test::fixture("wrong_shape.pt"), cpu(), &msg) == LIMN_ERR_INVALID_MODEL);
    CHECK(msg.find("[1, 1,") != std::string::npos);
    const limn::Model m(limn_test::fixture("wrong_shape.pt"), cpu().warmup(false));
    try {
        run_rgb(m, 4, 4, 1);
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_INVALID_MODEL);
        CHECK(std::string(e.what()).find("must return the input's shape") != std::string::npos);
    }
}

TEST_CASE("bad options are refused with a message naming the option") {
    std::string msg;
    limn_model_options o;
    limn_model_options_init(&o);
    o.device = "cpu";
    o.channels_last = 5;
    limn_model* m = nullptr;
    CHECK(limn_model_load(limn_test::fixture("identity.pt").c_str(), &o, &m) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(std::string(limn_last_error()).find("channels_last") != std::string::npos);
    CHECK(m == nullptr);
    o.channels_last = -1;
    o.warmup = 7;
    CHECK(limn_model_load(limn_test::fixture("identity.pt").c_str(), &o, &m) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(std::string(limn_last_error()).find("warmup") != std::string::npos);
    o.warmup = 1;
    o.fp32_fallback = 3;
    CHECK(limn_model_load(limn_test::fixture("identity.pt").c_str(), &o, &m) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(std::string(limn_last_error()).find("fp32_fallback") != std::string::npos);
    CHECK(m == nullptr);
}

TEST_CASE("channels-last on the CPU gives the same pixels") {
    const limn::Model plain(limn_test::fixture("tiny_unet.pt"), cpu().channels_last(false));
    const limn::Model cl(limn_test::fixture("tiny_unet.pt"), cpu().channels_last(true));
    CHECK(limn_test::psnr8(run_rgb(plain, 40, 30, 9), run_rgb(cl, 40, 30, 9)) >= 50.0);
}

TEST_CASE("the C++ wrapper throws limn::Error with status and message; close() frees") {
    try {
        limn::Model m(limn_test::fixture("missing.pt"), cpu());
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_IO);
        CHECK(std::string(e.what()).find("missing.pt") != std::string::npos);
    }
    limn::Model m(limn_test::fixture("identity.pt"), cpu());
    m.close();
    try {
        m.info();
        FAIL("no exception");
    } catch (const limn::Error& e) {
        CHECK(e.status() == LIMN_ERR_INVALID_ARGUMENT);
        CHECK(std::string(e.what()).find("closed") != std::string::npos);
    }
    CHECK(limn::devices().at(0).type == LIMN_DEVICE_CPU);
    CHECK(limn::resolve_device("cpu") == "cpu");
    CHECK(limn::version() == LIMN_VERSION_STRING);
}

TEST_CASE("a head model says its role, crop size and template; other models have no role") {
    const limn::Model head(limn_test::fixture("tiny_head.pt"), cpu());
    const limn_model_info i = head.info();
    CHECK(std::string(i.role) == "head");
    CHECK(i.crop_size == 64);
    CHECK(i.has_face_template == 1);
    CHECK(i.kind == LIMN_MODEL_KIND_CARTOON);
    const limn_model_info plain = limn::Model(limn_test::fixture("tiny_unet.pt"), cpu()).info();
    CHECK(std::string(plain.role).empty());
    CHECK(plain.crop_size == 0);
}

namespace {
bool cpu_has_native_bf16() { return std::string(limn::devices().at(0).auto_precision) == "bf16"; }
}  // namespace

TEST_CASE("auto on a CPU with native bf16: image models in bf16 when within 45 dB, detectors in fp32" *
          doctest::skip(!cpu_has_native_bf16())) {
    const limn::ModelOptions cpu_auto = limn::ModelOptions().device("cpu");
    const limn::Model unet(limn_test::fixture("tiny_unet.pt"), cpu_auto);
    const limn_model_info ui = unet.info();
    if (ui.precision == LIMN_PRECISION_BF16) {
        CHECK(std::string(ui.precision_note).empty());
    } else {
        // The tiny random UNet may itself be too far from fp32: then the note says by how much.
        CHECK(std::string(ui.precision_note).find("dB from its fp32 self-test output") != std::string::npos);
    }
    const limn::Model detector(limn_test::fixture("tiny_detect.pt"), cpu_auto);
    CHECK(detector.info().precision == LIMN_PRECISION_FP32);
    CHECK(std::string(detector.info().precision_note).empty());
    // Within the reduced-precision self-test tolerance, but ~40 dB from fp32: fp32, with the reason.
    const limn::Model coarse(limn_test::fixture("coarse_bf16.pt"), cpu_auto);
    CHECK(coarse.info().precision == LIMN_PRECISION_FP32);
    const std::string note = coarse.info().precision_note;
    CHECK(note.find("precision auto chose fp32: bf16 failed at load") != std::string::npos);
    CHECK(note.find("dB from its fp32 self-test output (auto needs 45 dB)") != std::string::npos);
    // Asked for by name, bf16 is taken as it is, without a note (it is native here).
    const limn::Model asked(limn_test::fixture("coarse_bf16.pt"), cpu().precision(LIMN_PRECISION_BF16));
    CHECK(asked.info().precision == LIMN_PRECISION_BF16);
    CHECK(std::string(asked.info().precision_note).empty());
    // fp32 stays available and exact on request.
    const limn::Model exact(limn_test::fixture("identity.pt"), cpu().precision(LIMN_PRECISION_FP32));
    CHECK(exact.info().precision == LIMN_PRECISION_FP32);
    CHECK(run_rgb(exact, 40, 24, 5) == limn_test::pattern(40 * 24 * 3, 5));
}

TEST_CASE("auto on a CPU without native bf16: fp32; bf16 asked for loads, with a note that it is slow" *
          doctest::skip(cpu_has_native_bf16())) {
    CHECK(limn::Model(limn_test::fixture("tiny_unet.pt"), limn::ModelOptions().device("cpu")).info().precision ==
          LIMN_PRECISION_FP32);
    const limn::Model slow(limn_test::fixture("tiny_unet.pt"), cpu().precision(LIMN_PRECISION_BF16));
    CHECK(slow.info().precision == LIMN_PRECISION_BF16);
    CHECK(std::string(slow.info().precision_note).find("bf16 is slow on this CPU") != std::string::npos);
}
