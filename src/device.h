// Device strings, resolution and enumeration.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cpu_features.h"
#include "limn/limn.h"

namespace limn::core {

// What a device string asks for, before looking at the machine.
struct DeviceRequest {
    enum class Kind { Cpu, Cuda, Auto };
    Kind kind = Kind::Auto;
    int index = -1;  // for Cuda: the ordinal, or -1 for "cuda" (the current device)
};

// Parses "cpu", "cuda", "cuda:N", "auto" (case-sensitive; NULL or "" means "auto").
// Throws Failure(LIMN_ERR_INVALID_ARGUMENT) naming the string for anything else.
DeviceRequest parse_device(std::string_view text);

// A device that exists and can be used now.
struct Device {
    limn_device_type type = LIMN_DEVICE_CPU;
    int index = 0;
    std::string id() const;  // "cpu" or "cuda:N"
    bool is_cuda() const { return type == LIMN_DEVICE_CUDA; }
};

// Where a call's images are (options images_device and cuda_stream; see "Device images" in
// limn.h). Kind Cpu: host memory; Cuda: memory of the model's CUDA device (index -1: whichever that
// is).
struct ImageMemory {
    DeviceRequest where{DeviceRequest::Kind::Cpu, -1};
    void* cuda_stream = nullptr;  // a synchronous call's work is queued on it (a cudaStream_t)
    std::shared_ptr<void> ready;  // a job's: a CUDA event, recorded on the caller's stream at
                                  // submit, that the work waits for
    bool on_device() const { return where.kind == DeviceRequest::Kind::Cuda; }
};

// "cpu" or NULL: host memory; "cuda", "cuda:N": device memory. Anything else (and "auto") is
// Failure(LIMN_ERR_INVALID_ARGUMENT) naming `what` (the option).
ImageMemory parse_image_memory(const char* images_device, void* cuda_stream, const char* what);

// A call's images with the names its messages give them ("input", "output[2]", ...).
using NamedImages = std::vector<std::pair<const limn_image*, std::string>>;

// Failure(LIMN_ERR_INVALID_ARGUMENT) naming `what` ("input", ...) unless every byte the image's
// rows span is memory of the CUDA `device` (device or managed memory). Nothing for the CPU.
void check_device_image(const limn_image& image, const std::string& what, const Device& device);

int cuda_device_count();  // usable CUDA devices now (0 without a driver or GPU)

// Resolves a request on this machine. "auto" picks cuda:0 when usable, else the CPU; asking for
// CUDA where none is usable throws Failure(LIMN_ERR_DEVICE_UNAVAILABLE), never falls back.
Device resolve_device(const DeviceRequest& request);
Device resolve_device(const char* text);  // parse + resolve; NULL means "auto"

struct DeviceDescription {
    Device device;
    std::string name;
    uint64_t total_memory = 0;
    uint64_t free_memory = 0;
    int compute_capability = 0;  // major * 10 + minor
    int multiprocessors = 0;
    NativePrecisions cpu;        // the CPU's: which features give bf16 and fp16 in hardware
};

// The CPU first, then every usable CUDA device.
std::vector<DeviceDescription> list_devices();
DeviceDescription describe_device(const Device& device);

std::string build_info();

}  // namespace limn::core
