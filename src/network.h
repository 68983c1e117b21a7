// The one interface between limn and a model file format. TorchScript (torchscript.cpp) is the
// format today; a second one (e.g. torch.export / AOTInductor packages) implements the same
// interface and is picked by load_network().
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "metadata.h"

namespace at {
class Tensor;
}
namespace c10 {
struct Device;
enum class ScalarType : int8_t;
}  // namespace c10

namespace limn {

class Network {
public:
    virtual ~Network() = default;

    // The limn_* attributes of the file, as found (validated by parse_metadata).
    virtual const RawMetadata& metadata() const = 0;
    // The embedded self-test vector (float [1,3,H,W] on the CPU); undefined tensors if absent.
    virtual at::Tensor selftest_input() const = 0;
    virtual at::Tensor selftest_output() const = 0;

    // A runnable copy on `device` in `dtype` with inference-only optimizations applied (frozen,
    // parameters in channels-last layout if asked). This network is left unchanged.
    virtual std::unique_ptr<Network> prepare(const c10::Device& device, c10::ScalarType dtype,
                                             bool channels_last) const = 0;

    // Runs forward(x) as it is; throws Failure(LIMN_ERR_INVALID_MODEL) if the result is not a
    // tensor. Thread-safe on prepared networks.
    virtual at::Tensor forward(const at::Tensor& x) const = 0;
};

// Reads a model file (from `path`) or bytes (`data`, `size`); `origin` names it in messages.
// Throws Failure(LIMN_ERR_IO) when the file cannot be read and Failure(LIMN_ERR_INVALID_MODEL) when
// it is not a model file limn can read.
std::unique_ptr<Network> load_network_file(const std::string& path);
std::unique_ptr<Network> load_network_memory(const void* data, size_t size, const std::string& origin);

}  // namespace limn
