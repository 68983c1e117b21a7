// A model prepared for a stream of frames of one size (limn_frames): the cartoonize pipeline with
// its own CPU arena, from which every tensor of a frame comes, so that once warm a frame takes no
// memory from the system (on CUDA the caching allocator reuses its blocks the same way, cached per
// stream: the frames' warm-up runs on the stream the frames will run on).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cartoonize.h"
#include "limn/limn.h"
#include "pipeline.h"
#include "pixels.h"

namespace limn::core {

class CpuArena;

class FrameStream {
public:
    // `keep`: what the options point into (a head model, a detector), held for the stream's life.
    // Runs one frame of mid-gray to warm up; Failure if the model, size or options cannot work.
    FrameStream(std::shared_ptr<const Model> model, int32_t width, int32_t height, limn_pixel_format format,
                const CartoonizeOptions& options, std::vector<std::shared_ptr<const void>> keep);

    // One frame: input and output of the stream's size and pixel format (may be one buffer).
    // `progress` (with its user data) and `memory` (a job's: see job_memory in c_api.cpp), if
    // given, replace the options' own for this frame.
    void run(const limn_image& input, limn_image& output, PipelineStats* stats,
             limn_progress_callback progress = nullptr, void* progress_user_data = nullptr,
             const ImageMemory* memory = nullptr) const;
    const CartoonizeOptions& options() const { return options_; }
    const std::vector<std::shared_ptr<const void>>& uses() const { return uses_; }
    const Model& model() const { return *model_; }

private:
    void check_frame(const limn_image& image, const char* what) const;
    void warm_up_on_device();

    std::shared_ptr<const Model> model_;
    int32_t width_, height_;
    limn_pixel_format format_;
    CartoonizeOptions options_;
    std::vector<limn_face> faces_;
    std::vector<std::shared_ptr<const void>> uses_;  // the model and `keep`
    std::shared_ptr<CpuArena> arena_;
};

}  // namespace limn::core
