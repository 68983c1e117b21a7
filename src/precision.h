// Precision choice: which dtype a model runs in on a device. No LibTorch here.
#pragma once

#include "device.h"
#include "limn/limn.h"

namespace limn::core {

const char* precision_name(limn_precision precision);  // "fp32", "fp16", "bf16", "tf32", "auto"

// AUTO becomes fp16 on CUDA devices of compute capability >= 7.0 (tensor cores), fp32 otherwise.
// Explicit values are checked against the device: bf16 on CUDA needs compute capability >= 8.0,
// fp16 on CUDA >= 5.3, tf32 a CUDA device >= 8.0; failing that throws Failure(LIMN_ERR_UNSUPPORTED).
// On the CPU fp16 and bf16 are accepted here and proven (or refused) by the warm-up run.
limn_precision resolve_precision(limn_precision requested, const DeviceDescription& device);

// Whether a non-finite reduced-precision result is recomputed in fp32: the caller's choice
// (0 / 1), or for -1 the default: on for AUTO, off for an explicit precision.
bool resolve_fp32_fallback(int requested, limn_precision requested_precision);

}  // namespace limn::core
