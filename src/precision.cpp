#include "precision.h"

#include <string>

#include "error.h"
#include "names.h"

namespace limn::core {

const char* precision_name(limn_precision precision) {
    const char* name = name_of(LIMN_NAMES_PRECISION, precision);
    return name ? name : "unknown";
}

namespace {

// Throws UNSUPPORTED when a CUDA device is older than `needed` (major * 10 + minor).
void require_compute(limn_precision p, const DeviceDescription& device, int needed) {
    const int cc = device.compute_capability;
    if (!device.device.is_cuda() || cc >= needed) return;
    fail(LIMN_ERR_UNSUPPORTED, std::string("precision ") + precision_name(p) + " is not supported on " +
                                   device.device.id() + " (" + device.name + ", compute capability " +
                                   std::to_string(cc / 10) + "." + std::to_string(cc % 10) + "; " +
                                   precision_name(p) + " needs " + std::to_string(needed / 10) + "." +
                                   std::to_string(needed % 10) + " or newer)");
}

}  // namespace

limn_precision resolve_precision(limn_precision requested, const DeviceDescription& device) {
    switch (requested) {
        case LIMN_PRECISION_AUTO:
            if (device.device.is_cuda()) {
                return device.compute_capability >= 70 ? LIMN_PRECISION_FP16 : LIMN_PRECISION_FP32;
            }
            return device.cpu.bf16.empty() ? LIMN_PRECISION_FP32 : LIMN_PRECISION_BF16;
        case LIMN_PRECISION_FP32:
            return requested;
        case LIMN_PRECISION_FP16:
            require_compute(requested, device, 53);
            return requested;
        case LIMN_PRECISION_BF16:
            require_compute(requested, device, 80);
            return requested;
        case LIMN_PRECISION_TF32:
            if (!device.device.is_cuda()) {
                fail(LIMN_ERR_UNSUPPORTED, "precision tf32 is a mode of CUDA devices (compute capability 8.0 "
                                           "or newer), not of the CPU: ask for fp32 there");
            }
            require_compute(requested, device, 80);
            return requested;
    }
    fail(LIMN_ERR_INVALID_ARGUMENT,
         "invalid precision " + std::to_string(static_cast<int>(requested)) +
             ": expected LIMN_PRECISION_AUTO, _FP32, _FP16, _BF16 or _TF32");
}

std::string native_precision_list(const DeviceDescription& device) {
    std::string out = "fp32";
    if (device.device.is_cuda()) {
        if (device.compute_capability >= 53) out += " fp16";
        if (device.compute_capability >= 80) out += " bf16 tf32";
        return out;
    }
    if (!device.cpu.fp16.empty()) out += " fp16";
    if (!device.cpu.bf16.empty()) out += " bf16";
    return out;
}

std::string slow_precision_note(limn_precision precision, const DeviceDescription& device) {
    if (device.device.is_cuda()) return "";
    const bool bf16 = precision == LIMN_PRECISION_BF16;
    if (!bf16 && precision != LIMN_PRECISION_FP16) return "";
    if (!(bf16 ? device.cpu.bf16 : device.cpu.fp16).empty()) return "";
    const std::string name = precision_name(precision);
    return name + " is slow on this CPU: it has no " + (bf16 ? "AMX-BF16 or AVX512-BF16" : "AMX-FP16 or AVX512-FP16") +
           ", so LibTorch emulates " + name + " around fp32 arithmetic (4.5x to 44x slower than fp32 "
           "measured, with up to 8x the memory); precision fp32 or auto is faster here";
}

bool resolve_fp32_fallback(int requested, limn_precision requested_precision) {
    if (requested == 0 || requested == 1) return requested == 1;
    if (requested != -1) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid fp32_fallback " + std::to_string(requested) +
                                            ": expected 0, 1 or -1 (default)");
    }
    return requested_precision == LIMN_PRECISION_AUTO;
}

}  // namespace limn::core
