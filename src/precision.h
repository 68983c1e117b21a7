// Precision choice: which dtype a model runs in on a device. No LibTorch here.
#pragma once

#include "device.h"
#include "limn/limn.h"

namespace limn::core {

const char* precision_name(limn_precision precision);  // "fp32", "fp16", "bf16", "tf32", "auto"

// AUTO becomes fp16 on CUDA devices of compute capability >= 7.0 (tensor cores), bf16 on a CPU
// that computes bf16 in hardware (AMX-BF16 or AVX512-BF16), fp32 otherwise. The model then still
// has to earn a reduced precision at load (model.cpp). Explicit values are checked against the
// device: bf16 on CUDA needs compute capability >= 8.0, fp16 on CUDA >= 5.3, tf32 a CUDA device
// >= 8.0; failing that throws Failure(LIMN_ERR_UNSUPPORTED). On the CPU fp16 and bf16 are always
// accepted here and proven (or refused) by the warm-up run; slow_precision_note() says when slow.
limn_precision resolve_precision(limn_precision requested, const DeviceDescription& device);

// How close (PSNR, dB, on values in [0, 1]) an image model's self-test output in bf16 must come to
// its fp32 one for AUTO to take bf16 on the CPU. 45 dB is below what the eye can tell apart: the
// converted official DCT-Net measured 51 dB (BENCHMARKS.md).
constexpr double kAutoMinPsnr = 45.0;

// The precisions `device` computes in hardware, fastest last: "fp32 bf16" (a CPU with
// AVX512-BF16), "fp32 fp16 bf16 tf32" (CUDA, compute capability 8.0), ...
std::string native_precision_list(const DeviceDescription& device);

// "" or why `precision` on `device` runs many times slower than fp32: fp16 or bf16 on a CPU that
// emulates it. The model loads anyway (the caller asked for it by name); the note says why.
std::string slow_precision_note(limn_precision precision, const DeviceDescription& device);

// Whether a non-finite reduced-precision result is recomputed in fp32: the caller's choice
// (0 / 1), or for -1 the default: on for AUTO, off for an explicit precision.
bool resolve_fp32_fallback(int requested, limn_precision requested_precision);

}  // namespace limn::core
