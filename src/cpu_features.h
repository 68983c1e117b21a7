// The x86 instruction-set features a compiled (.pt2) CPU package may use, and whether this CPU
// has them: AOTInductor compiles CPU packages with -march=native, so a package built on one
// machine can hold instructions another lacks. No LibTorch here.
#pragma once

#include <string>
#include <vector>

namespace limn::core {

// Which of `wanted` (names as in /proc/cpuinfo, e.g. "avx2", "avx512_bf16") this CPU and the
// operating system do not support. Names this library does not know are reported as missing.
std::vector<std::string> missing_cpu_features(const std::vector<std::string>& wanted);

// The known features this CPU has, space-separated (for messages and build info).
std::string cpu_feature_list();

// The reduced precisions a CPU with `features` computes in hardware, each as the feature that
// provides it ("" where none does): bf16 with AMX-BF16 or AVX512-BF16, fp16 with AMX-FP16 or
// AVX512-FP16. Without it LibTorch emulates the type with conversions around fp32 arithmetic:
// right, but many times slower than fp32 (4.5x to 44x measured on AVX2, BENCHMARKS.md).
struct NativePrecisions {
    std::string bf16;
    std::string fp16;
};
NativePrecisions native_precisions(const std::vector<std::string>& features);

// This CPU's known features, and what they give.
std::vector<std::string> cpu_features_present();
NativePrecisions cpu_native_precisions();

// $LIMN_CPU_DISABLE: feature names (space or comma separated) limn treats as absent here, for
// tests and comparisons: precision AUTO, limn devices and the package checks then act as on a CPU
// without them. LibTorch's own kernel choice is not affected (ONEDNN_MAX_CPU_ISA does that).
// Read once, at the first question about the CPU.

}  // namespace limn::core
