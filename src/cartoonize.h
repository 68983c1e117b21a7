// The cartoonize pipeline: a whole photo of any size through a cartoon model, with downscaling,
// padding to the size rule, feathered tiles sized by the memory budget, out-of-memory retries,
// strength, progress, cancellation and a deadline.
#pragma once

#include <cstddef>
#include <cstdint>

#include "detect_faces.h"
#include "limn/limn.h"
#include "pipeline.h"

namespace limn::core {

class Model;

struct CartoonizeOptions {
    float strength = 1.0f;
    int32_t max_side = 0;
    int32_t tile_size = 0;
    uint64_t memory_budget = 0;
    uint32_t timeout_ms = 0;
    limn_progress_callback progress = nullptr;
    void* progress_user_data = nullptr;
    // DCT-Net's compound stylization: with a head model (a cartoon model of role "head"), each
    // face is aligned to its template, stylized at its crop size, and blended over the result.
    const Model* head_model = nullptr;
    const Model* detector = nullptr;  // finds the faces when none are given
    DetectFacesOptions detect;
    const limn_face* faces = nullptr;  // caller-given faces, in input pixels
    size_t face_count = 0;
    int32_t working_size = 720;  // with a head model: the shorter side at most this; 0: full size
    float feather = 0.1f;        // soft edge of the head mask, a fraction of the crop side
    ImageMemory memory;          // where input and output are
};

// The checks that need no model (values and ranges): Failure(LIMN_ERR_INVALID_ARGUMENT) naming the
// field. cartoonize() makes them first; limn_cartoonize_options_check offers them to wrappers.
void check_options(const CartoonizeOptions& options);

// The smallest tile_size that works for every picture larger than one tile (a smaller one is
// refused; a picture that fits one tile takes any).
int32_t smallest_tile_size(const Model& model);

// Validates everything first; `output` (same size as `input`, any format, may be the same buffer)
// is written only on success.
void cartoonize(const Model& model, const limn_image& input, limn_image& output,
                const CartoonizeOptions& options, PipelineStats* stats);

}  // namespace limn::core
