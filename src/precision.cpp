#include "precision.h"

#include <string>

#include "error.h"

namespace limn {

const char* precision_name(limn_precision precision) {
    switch (precision) {
        case LIMN_PRECISION_AUTO: return "auto";
        case LIMN_PRECISION_FP32: return "fp32";
        case LIMN_PRECISION_FP16: return "fp16";
        case LIMN_PRECISION_BF16: return "bf16";
    }
    return "unknown";
}

limn_precision resolve_precision(limn_precision requested, const DeviceDescription& device) {
    const bool cuda = device.device.is_cuda();
    const int cc = device.compute_capability;
    switch (requested) {
        case LIMN_PRECISION_AUTO:
            return cuda && cc >= 70 ? LIMN_PRECISION_FP16 : LIMN_PRECISION_FP32;
        case LIMN_PRECISION_FP32:
            return requested;
        case LIMN_PRECISION_FP16:
            if (cuda && cc < 53) {
                fail(LIMN_ERR_UNSUPPORTED, "precision fp16 is not supported on " + device.device.id() +
                                               " (" + device.name + ", compute capability " +
                                               std::to_string(cc / 10) + "." + std::to_string(cc % 10) +
                                               "; fp16 needs 5.3 or newer)");
            }
            return requested;
        case LIMN_PRECISION_BF16:
            if (cuda && cc < 80) {
                fail(LIMN_ERR_UNSUPPORTED, "precision bf16 is not supported on " + device.device.id() +
                                               " (" + device.name + ", compute capability " +
                                               std::to_string(cc / 10) + "." + std::to_string(cc % 10) +
                                               "; bf16 needs 8.0 or newer)");
            }
            return requested;
    }
    fail(LIMN_ERR_INVALID_ARGUMENT,
         "invalid precision " + std::to_string(static_cast<int>(requested)) +
             ": expected LIMN_PRECISION_AUTO, _FP32, _FP16 or _BF16");
}

bool resolve_fp32_fallback(int requested, limn_precision requested_precision) {
    if (requested == 0 || requested == 1) return requested == 1;
    if (requested != -1) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid fp32_fallback " + std::to_string(requested) +
                                            ": expected 0, 1 or -1 (default)");
    }
    return requested_precision == LIMN_PRECISION_AUTO;
}

}  // namespace limn
