// The cartoonize pipeline: a whole photo of any size through a cartoon model, with downscaling,
// padding to the size rule, feathered tiles sized by the memory budget, out-of-memory retries,
// strength, progress, cancellation and a deadline.
#pragma once

#include <cstdint>

#include "limn/limn.h"
#include "pipeline.h"

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

// Validates everything first; `output` (same size as `input`, any format, may be the same buffer)
// is written only on success.
void cartoonize(const Model& model, const limn_image& input, limn_image& output,
                const CartoonizeOptions& options, PipelineStats* stats);

}  // namespace limn
