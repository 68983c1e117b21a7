// The cartoonize pipeline: a whole photo of any size through a cartoon model, with downscaling,
// padding to the size rule, feathered tiles sized by the memory budget, out-of-memory retries,
// strength, progress, cancellation and a deadline.
#pragma once

#include <cstdint>

#include "limn/limn.h"

namespace limn {

class Model;

struct CartoonizeOptions {
    float strength = 1.0f;
    int32_t max_side = 0;
    int32_t tile_size = 0;
    uint64_t memory_budget = 0;
    uint32_t timeout_ms = 0;
    limn_progress_callback progress = nullptr;
    void* progress_user_data = nullptr;
};

struct PipelineStats {
    int32_t tile_size = 0;    // side of the tiles the network ran on
    int32_t tiles = 0;        // network runs in the successful pass
    int32_t oom_retries = 0;  // passes restarted with smaller tiles after running out of memory
    int32_t width = 0;        // size the network worked at (after max_side)
    int32_t height = 0;
    int32_t faces = 0;        // faces restored (face pipeline)
    double seconds = 0.0;
};

// Validates everything first; `output` (same size as `input`, any format, may be the same buffer)
// is written only on success.
void cartoonize(const Model& model, const limn_image& input, limn_image& output,
                const CartoonizeOptions& options, PipelineStats* stats);

}  // namespace limn
