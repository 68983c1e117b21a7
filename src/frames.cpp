#include "frames.h"

#include <string>

#include <ATen/ATen.h>

#include "error.h"
#include "memory.h"
#include "model.h"
#include "pixels.h"

namespace limn::core {

FrameStream::FrameStream(std::shared_ptr<const Model> model, int32_t width, int32_t height,
                         limn_pixel_format format, const CartoonizeOptions& options,
                         std::vector<std::shared_ptr<const void>> keep)
    : model_(std::move(model)), width_(width), height_(height), format_(format), options_(options),
      faces_(options.faces, options.faces + options.face_count), uses_(std::move(keep)),
      arena_(make_cpu_arena()) {
    uses_.insert(uses_.begin(), model_);
    options_.faces = faces_.empty() ? nullptr : faces_.data();
    check_options(options_);
    if (width <= 0 || height <= 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid frame size " + std::to_string(width) + "x" + std::to_string(height));
    }
    // A first (black) frame, off the caller's clock: the arena and LibTorch's kernels warm up.
    if (options_.memory.on_device()) {
        warm_up_on_device();
    } else {
        const OwnedImage black = allocate_image(width, height, format);
        run(*black, *black, nullptr);
    }
}

void FrameStream::warm_up_on_device() {
    // In the memory of the model's device, on the stream the frames will run on (the caller's, or
    // limn's of this thread; a job's worker has its own, which warms up with its first frame).
    const Device device = model_->device();
    const ImagesScope images(options_.memory, device, model_->origin(), {});  // a wrong device fails here
    const StreamScope stream(device);
    const at::Tensor black = at::zeros({height_, int64_t{width_} * bytes_per_pixel(format_)},
                                       at::TensorOptions().dtype(at::kByte).device(model_->tensor_device()));
    limn_image image{black.data_ptr<uint8_t>(), width_, height_, static_cast<size_t>(black.stride(0)), format_};
    run(image, image, nullptr);
    synchronize(device);  // the frame's work has read the buffer before it goes back to the cache
}

void FrameStream::check_frame(const limn_image& image, const char* what) const {
    check_image(&image, what, model_->max_pixels());
    if (image.width != width_ || image.height != height_ || image.format != format_) {
        fail(LIMN_ERR_INVALID_ARGUMENT,
             std::string(what) + " is " + std::to_string(image.width) + "x" + std::to_string(image.height) + " " +
                 std::string(format_name(image.format)) + ", but these frames are " + std::to_string(width_) + "x" +
                 std::to_string(height_) + " " + format_name(format_));
    }
}

void FrameStream::run(const limn_image& input, limn_image& output, PipelineStats* stats,
                      limn_progress_callback progress, void* progress_user_data, const ImageMemory* memory) const {
    check_frame(input, "input");
    check_frame(output, "output");
    CartoonizeOptions options = options_;
    if (progress) {
        options.progress = progress;
        options.progress_user_data = progress_user_data;
    }
    if (memory) options.memory = *memory;
    const CpuArenaScope scope(arena_);
    const CpuArenaAllSizes all_sizes;
    cartoonize(*model_, input, output, options, stats);
}

}  // namespace limn::core
