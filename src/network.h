// The one interface between limn and a model file format: TorchScript archives (torchscript.cpp)
// and compiled .pt2 packages (pt2.cpp, torch.export + AOTInductor). load_network_file() and
// load_network_memory() (network.cpp) tell them apart by content, not by name.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "limn/limn.h"
#include "metadata.h"

namespace at {
class Tensor;
}
namespace c10 {
struct Device;
enum class ScalarType : int8_t;
}  // namespace c10

namespace torch::jit {
struct Block;
}

namespace caffe2::serialize {
class PyTorchStreamReader;
class ReadAdapterInterface;
}  // namespace caffe2::serialize

namespace limn::core {

// The tensor dtype a precision runs in (AUTO: float).
c10::ScalarType dtype_of(limn_precision precision);

// What a compiled package was built for: it runs on that device kind, in that precision only.
struct CompiledFor {
    limn_device_type device = LIMN_DEVICE_CPU;
    limn_precision precision = LIMN_PRECISION_FP32;
};

// How a model's convolutions run on CUDA, chosen per model (the CPU ignores both).
struct ConvSettings {
    bool cudnn_benchmark = false;  // cuDNN times its algorithms for each new input shape
    bool allow_tf32 = false;       // fp32 convolutions in TF32 (10-bit mantissa): opt-in only
};

class Network {
public:
    virtual ~Network() = default;

    // The limn_* attributes of the file, as found (validated by parse_metadata).
    virtual const RawMetadata& metadata() const = 0;
    // The embedded self-test vector (float [1,3,H,W] on the CPU); undefined tensors if absent.
    virtual at::Tensor selftest_input() const = 0;
    virtual at::Tensor selftest_output() const = 0;
    // "torchscript" or "pt2".
    virtual const char* format() const = 0;
    // The smallest input (height, width) the network takes: a compiled package's graph may hold
    // on to sizes above 1 (e.g. 33 for a detector with a stride-32 level). TorchScript: (1, 1).
    virtual std::pair<int64_t, int64_t> min_size() const { return {1, 1}; }
    // The input layout a compiled package was exported for (true: channels-last); TorchScript
    // takes either, so the model option decides.
    virtual std::optional<bool> fixed_channels_last() const { return std::nullopt; }
    // Set for compiled packages (fixed device kind and precision); TorchScript runs anywhere.
    virtual std::optional<CompiledFor> compiled_for() const { return std::nullopt; }

    // A runnable copy on `device` in `dtype` with inference-only optimizations applied (frozen,
    // parameters in channels-last layout if asked), its convolutions run as `conv` says. This
    // network is left unchanged. A compiled package runs only where and how compiled_for() says;
    // Model checks that first.
    virtual std::unique_ptr<Network> prepare(const c10::Device& device, c10::ScalarType dtype,
                                             bool channels_last, const ConvSettings& conv) const = 0;

    // Runs forward(x) as it is; throws Failure(LIMN_ERR_INVALID_MODEL) if the result is not a
    // tensor. Thread-safe on prepared networks.
    virtual at::Tensor forward(const at::Tensor& x) const = 0;
};

// Rewrites every convolution in `block` and the blocks inside it (aten::conv1d/2d/3d,
// conv_transpose1d/2d/3d, convolution, _convolution) as aten::_convolution with the cuDNN benchmark
// and TF32 flags of `conv` stated in the node. Left alone, each convolution reads them from
// LibTorch's process-wide context when it runs: TF32 on by default, and whatever the host set.
// Convolutions with string padding ("same") cannot be stated so and keep reading the context;
// returns how many of those there are. TorchScript networks are prepared with it.
int state_conv_settings(torch::jit::Block& block, const ConvSettings& conv);

// Reads a model file (from `path`) or bytes (`data`, `size`); `origin` names it in messages.
// Throws Failure(LIMN_ERR_IO) when the file cannot be read and Failure(LIMN_ERR_INVALID_MODEL) when
// it is not a model file limn can read.
std::unique_ptr<Network> load_network_file(const std::string& path);
std::unique_ptr<Network> load_network_memory(const void* data, size_t size, const std::string& origin);

// The formats, for network.cpp. TorchScript: `origin` names the source in messages.
std::unique_ptr<Network> load_torchscript(const std::string& path);
std::unique_ptr<Network> load_torchscript(std::shared_ptr<caffe2::serialize::ReadAdapterInterface> bytes,
                                          const std::string& origin);
// Compiled packages: a PT2 archive holds extra/limn.json or AOTInductor code. A package given in
// memory is copied to a private temporary file, because LibTorch's loader reads a path.
bool is_pt2_archive(caffe2::serialize::PyTorchStreamReader& reader);
std::unique_ptr<Network> load_pt2(caffe2::serialize::PyTorchStreamReader& reader, const std::string& path,
                                  const std::string& origin);
std::unique_ptr<Network> load_pt2_memory(caffe2::serialize::PyTorchStreamReader& reader, const void* data,
                                         size_t size, const std::string& origin);

}  // namespace limn::core
