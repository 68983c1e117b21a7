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

}  // namespace limn::core
