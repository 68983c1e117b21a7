// A loaded limn model: a network (TorchScript or compiled package) on a device and precision, plus
// its metadata.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "device.h"
#include "limn/limn.h"
#include "metadata.h"
#include "pixels.h"
#include "tiling.h"

namespace at {
class Tensor;
}
namespace c10 {
struct Device;
}

namespace limn::core {

struct ModelOptions {
    std::string device = "auto";
    limn_precision precision = LIMN_PRECISION_AUTO;
    limn_model_kind expected_kind = LIMN_MODEL_KIND_ANY;
    int fp32_fallback = -1;
    bool warmup = true;
    int channels_last = -1;
    int cudnn_benchmark = -1;
    uint64_t max_pixels = kDefaultMaxPixels;
    std::string name;  // how messages name a model loaded from memory
    std::string expected_sha256;  // "" or 64 hex digits the file's bytes must hash to
};

// Columns of a face_detect model's output [N, P, 15]: x0, y0, x1, y1, score, then (x, y) of 5
// landmarks, in pixels of its input.
constexpr int64_t kDetectionColumns = 15;

class Model {
public:
    static std::unique_ptr<Model> load_file(const std::string& path, const ModelOptions& options);
    // A file, or a model name fetched into the cache (model_names.h): the package compiled for this
    // CPU first where it applies, then the TorchScript file when the package cannot run here.
    static std::unique_ptr<Model> load_source(const std::string& source, const ModelOptions& options);
    static std::unique_ptr<Model> load_memory(const void* data, size_t size,
                                              const ModelOptions& options);
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const ModelMetadata& metadata() const;
    const Device& device() const;
    c10::Device tensor_device() const;  // device() as LibTorch names it
    limn_precision precision() const;
    const std::string& origin() const;  // the file name, or the name given for memory
    const char* format() const;         // "torchscript" or "pt2"
    uint64_t max_pixels() const;
    // The smallest image the network takes (1x1 but for some compiled packages); pipelines pad
    // smaller pictures up to it, a raw run refuses them with LIMN_ERR_SIZE_RULE.
    int64_t min_height() const;
    int64_t min_width() const;
    // The layout forward() takes its input in without a copy (true: channels-last).
    bool input_channels_last() const;

    // Validates the images (same size, fits the size rule, under max_pixels) and runs them as one
    // batch. Thread-safe.
    // The checks run() makes before any work (arguments, sizes, a batch of one size and format,
    // the size rule): Failure naming the image; the images with their names.
    NamedImages check_run(const limn_image* inputs, const limn_image* outputs, size_t count) const;
    // `memory`: where the images are (device images; see ImagesScope).
    void run(const limn_image* inputs, limn_image* outputs, size_t count,
             const ImageMemory& memory = ImageMemory()) const;

    // float [N, 3, H, W] RGB in [0, 1] on the model's device -> float [N, 3, H, W] in [0, 1]
    // (face_detect models: float [N, P, kDetectionColumns]).
    // Runs in the model's precision and checks the shape of the result. Inside checked(), its
    // finiteness is checked at the end of the call; outside, at once. Thread-safe. For the
    // pipelines built on top of the raw run.
    at::Tensor forward(const at::Tensor& rgb) const;

    // Runs `body`, the device part of one call, and checks once at its end (one host
    // synchronisation) that every forward() inside it gave finite values. If one did not, and the
    // fp32 fallback is allowed, `body` runs again with the network in fp32 (progress reports
    // restart); otherwise Failure(LIMN_ERR_NON_FINITE). Returns what `body` returned.
    at::Tensor checked(const std::function<at::Tensor()>& body) const;

    // Why precision() is not what AUTO gives on this device ("" when it is): fp16/bf16 failed the
    // load-time self-test, so the model runs in fp32.
    const std::string& precision_note() const;

    // What one network run costs on the device (peak bytes ~= fixed + per pixel * H * W),
    // measured once on the first call with two probe sizes and remembered. Thread-safe.
    MemoryProfile memory_profile() const;

    struct Impl;  // defined in model.cpp

private:
    explicit Model(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace limn::core
