// `limn devices [--json]`: the CPU and the CUDA devices, their memory and precisions.
#include "cli.h"

#include <iostream>

namespace limn_cli {

int devices_command(const Args& a) {
    if (!a.inputs.empty()) throw UsageError("devices takes no arguments, not '" + a.inputs[0] + "'");
    if (a.json) {
        std::cout << "[";
        bool first = true;
        for (const limn_device_info& d : limn::devices()) {
            std::cout << (first ? "" : ", ") << "{\"id\": " << json_string(d.id) << ", \"name\": " << json_string(d.name)
                      << ", \"type\": \"" << (d.type == LIMN_DEVICE_CUDA ? "cuda" : "cpu")
                      << "\", \"total_memory\": " << d.total_memory << ", \"free_memory\": " << d.free_memory
                      << ", \"compute_capability\": " << d.compute_capability
                      << ", \"native_precisions\": " << json_string(d.native_precisions)
                      << ", \"auto_precision\": " << json_string(d.auto_precision) << "}";
            first = false;
        }
        std::cout << "]\n";
        return kOk;
    }
    for (const limn_device_info& d : limn::devices()) {
        std::cout << d.id << "  " << d.name << "  " << mib(d.total_memory) << " total, " << mib(d.free_memory) << " free";
        if (d.type == LIMN_DEVICE_CUDA) std::cout << ", compute " << d.compute_capability / 10 << "." << d.compute_capability % 10;
        std::cout << "\n    native precisions: " << d.native_precisions << "; auto picks " << d.auto_precision << "\n";
    }
    return kOk;
}

}  // namespace limn_cli
