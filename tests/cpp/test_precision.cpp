// Precision resolution (white-box: src/precision.h).
#include <doctest/doctest.h>

#include "error.h"
#include "precision.h"

static limn::core::DeviceDescription cuda_with(int cc) {
    limn::core::DeviceDescription d;
    d.device = limn::core::Device{LIMN_DEVICE_CUDA, 0};
    d.name = "test GPU";
    d.compute_capability = cc;
    return d;
}

static limn_status status_of(limn_precision p, const limn::core::DeviceDescription& d) {
    try {
        limn::core::resolve_precision(p, d);
        return LIMN_OK;
    } catch (const limn::core::Failure& e) {
        return e.status();
    }
}

TEST_CASE("auto precision: fp32 on the CPU and old GPUs, fp16 on tensor-core GPUs") {
    limn::core::DeviceDescription cpu;
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_AUTO, cpu) == LIMN_PRECISION_FP32);
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_AUTO, cuda_with(61)) == LIMN_PRECISION_FP32);
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_AUTO, cuda_with(70)) == LIMN_PRECISION_FP16);
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_AUTO, cuda_with(90)) == LIMN_PRECISION_FP16);
}

TEST_CASE("explicit precisions are kept or refused with UNSUPPORTED") {
    limn::core::DeviceDescription cpu;
    for (auto p : {LIMN_PRECISION_FP32, LIMN_PRECISION_FP16, LIMN_PRECISION_BF16}) {
        CHECK(limn::core::resolve_precision(p, cpu) == p);
        CHECK(limn::core::resolve_precision(p, cuda_with(90)) == p);
    }
    CHECK(status_of(LIMN_PRECISION_BF16, cuda_with(75)) == LIMN_ERR_UNSUPPORTED);
    CHECK(status_of(LIMN_PRECISION_FP16, cuda_with(50)) == LIMN_ERR_UNSUPPORTED);
    CHECK(status_of(static_cast<limn_precision>(9), cpu) == LIMN_ERR_INVALID_ARGUMENT);
    try {
        limn::core::resolve_precision(LIMN_PRECISION_BF16, cuda_with(75));
    } catch (const limn::core::Failure& e) {
        CHECK(std::string(e.what()).find("bf16") != std::string::npos);
        CHECK(std::string(e.what()).find("7.5") != std::string::npos);
    }
}

TEST_CASE("tf32 is an explicit CUDA mode of compute capability 8.0 or newer, never the CPU's") {
    limn::core::DeviceDescription cpu;
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_TF32, cuda_with(80)) == LIMN_PRECISION_TF32);
    CHECK(status_of(LIMN_PRECISION_TF32, cuda_with(75)) == LIMN_ERR_UNSUPPORTED);
    CHECK(status_of(LIMN_PRECISION_TF32, cpu) == LIMN_ERR_UNSUPPORTED);
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_AUTO, cuda_with(90)) != LIMN_PRECISION_TF32);
    CHECK(std::string(limn::core::precision_name(LIMN_PRECISION_TF32)) == "tf32");
}

TEST_CASE("fp32 fallback defaults to on for auto precision only") {
    CHECK(limn::core::resolve_fp32_fallback(-1, LIMN_PRECISION_AUTO));
    CHECK_FALSE(limn::core::resolve_fp32_fallback(-1, LIMN_PRECISION_FP16));
    CHECK(limn::core::resolve_fp32_fallback(1, LIMN_PRECISION_FP16));
    CHECK_FALSE(limn::core::resolve_fp32_fallback(0, LIMN_PRECISION_AUTO));
    CHECK_THROWS_AS(limn::core::resolve_fp32_fallback(2, LIMN_PRECISION_AUTO), limn::core::Failure);
    CHECK(std::string(limn::core::precision_name(LIMN_PRECISION_BF16)) == "bf16");
}

TEST_CASE("error summaries: one meaningful line, LibTorch's advice dropped, cut between words") {
    CHECK(limn::core::error_summary("first line\nsecond") == "first line");
    const std::string traceback =
        "The following operation failed in the TorchScript interpreter.\nTraceback...\n  code\nRuntimeError: the cause\n";
    CHECK(limn::core::error_summary(traceback) == "RuntimeError: the cause");
    CHECK(limn::core::error_summary("CUDA out of memory. Tried to allocate 2.00 GiB. If reserved but unallocated memory is "
                              "large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True") ==
          "CUDA out of memory. Tried to allocate 2.00 GiB.");
    CHECK(limn::core::error_summary("Bad input. If you are seeing this error, open an issue") == "Bad input.");
    std::string words;
    for (int i = 0; i < 80; ++i) words += "word" + std::to_string(i) + " ";
    const std::string cut = limn::core::error_summary(words);
    CHECK(cut.size() <= 243);
    CHECK(cut.substr(cut.size() - 3) == "...");
    CHECK(cut[cut.size() - 4] != ' ');
    CHECK(words.compare(0, cut.size() - 3, cut, 0, cut.size() - 3) == 0);  // a prefix, ending at a word
    CHECK(words[cut.size() - 3] == ' ');
}

TEST_CASE("messages are valid UTF-8: well-formed sequences kept, other bytes escaped") {
    CHECK(limn::core::valid_utf8("plain ascii") == "plain ascii");
    CHECK(limn::core::valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82");
    CHECK(limn::core::valid_utf8("a\xff" "b") == "a\\xffb");
    CHECK(limn::core::valid_utf8("\xc0\xaf") == "\\xc0\\xaf");          // overlong '/'
    CHECK(limn::core::valid_utf8("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
    CHECK(limn::core::valid_utf8("\xe2\x82") == "\\xe2\\x82");          // cut short
    CHECK(limn::core::valid_utf8("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
    CHECK(limn::core::valid_utf8(std::string("nul\0byte", 8)) == std::string("nul\0byte", 8));
}

TEST_CASE("the CPU's native precisions come from its features: AMX first, then AVX-512") {
    using limn::core::native_precisions;
    const auto avx2 = native_precisions({"sse4_2", "fma", "avx", "avx2", "f16c"});
    CHECK(avx2.bf16.empty());
    CHECK(avx2.fp16.empty());  // F16C converts; it does not compute
    CHECK(native_precisions({"avx2", "avx512f", "avx512_bf16"}).bf16 == "avx512_bf16");
    const auto spr = native_precisions({"avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"});
    CHECK(spr.bf16 == "amx_bf16");
    CHECK(spr.fp16 == "avx512_fp16");
    CHECK(native_precisions({"amx_tile", "amx_fp16", "avx512_fp16"}).fp16 == "amx_fp16");
    // What this CPU reports is one of those answers, and the list holds only known names.
    const auto here = limn::core::cpu_native_precisions();
    CHECK((here.bf16.empty() || here.bf16 == "amx_bf16" || here.bf16 == "avx512_bf16"));
    CHECK(limn::core::missing_cpu_features(limn::core::cpu_features_present()).empty());
}

TEST_CASE("auto precision on the CPU: bf16 where it is native, fp32 where it is emulated") {
    limn::core::DeviceDescription plain;
    limn::core::DeviceDescription avx512;
    avx512.cpu = limn::core::native_precisions({"avx512f", "avx512_bf16"});
    limn::core::DeviceDescription amx;
    amx.cpu = limn::core::native_precisions({"amx_tile", "amx_bf16", "avx512_bf16", "avx512_fp16"});
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_AUTO, plain) == LIMN_PRECISION_FP32);
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_AUTO, avx512) == LIMN_PRECISION_BF16);
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_AUTO, amx) == LIMN_PRECISION_BF16);  // not fp16
    // fp32 stays fp32 on request.
    CHECK(limn::core::resolve_precision(LIMN_PRECISION_FP32, amx) == LIMN_PRECISION_FP32);
    CHECK(limn::core::native_precision_list(plain) == "fp32");
    CHECK(limn::core::native_precision_list(avx512) == "fp32 bf16");
    CHECK(limn::core::native_precision_list(amx) == "fp32 fp16 bf16");
    CHECK(limn::core::native_precision_list(cuda_with(86)) == "fp32 fp16 bf16 tf32");
}

TEST_CASE("an emulated bf16 or fp16 on the CPU loads, with a note saying it is slow and why") {
    limn::core::DeviceDescription plain;
    limn::core::DeviceDescription avx512;
    avx512.cpu = limn::core::native_precisions({"avx512f", "avx512_bf16"});
    const std::string bf16 = limn::core::slow_precision_note(LIMN_PRECISION_BF16, plain);
    CHECK(bf16.find("bf16 is slow on this CPU") != std::string::npos);
    CHECK(bf16.find("AVX512-BF16") != std::string::npos);
    CHECK(limn::core::slow_precision_note(LIMN_PRECISION_FP16, avx512).find("AVX512-FP16") != std::string::npos);
    CHECK(limn::core::slow_precision_note(LIMN_PRECISION_BF16, avx512).empty());
    CHECK(limn::core::slow_precision_note(LIMN_PRECISION_FP32, plain).empty());
    CHECK(limn::core::slow_precision_note(LIMN_PRECISION_FP16, cuda_with(70)).empty());
}
