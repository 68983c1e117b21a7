// The restore-faces pipeline: for each face (5 landmarks), a similarity warp of the photo to the
// model's template, restoration, and an inverse warp pasted back with a feathered mask.
#pragma once

#include <cstddef>
#include <cstdint>

#include "align.h"
#include "detect_faces.h"
#include "limn/limn.h"
#include "pipeline.h"

namespace limn::core {

class Model;

struct RestoreFacesOptions {
    float strength = 1.0f;
    float min_face_size = 16.0f;  // side, in photo pixels, of the region a face's crop covers
    float feather = 0.1f;         // width of the mask's soft edge, as a fraction of the crop side
    uint32_t timeout_ms = 0;
    limn_progress_callback progress = nullptr;
    void* progress_user_data = nullptr;
    const Model* detector = nullptr;  // finds the faces when none are given
    DetectFacesOptions detect;
    ImageMemory memory;  // where input and output are
};

// The checks that need no model: Failure(LIMN_ERR_INVALID_ARGUMENT) naming the field.
void check_options(const RestoreFacesOptions& options);

// `output` (same size as `input`, any format, may be the same buffer) is written only on success.
// With no faces given and options.detector set, the faces are detected first.
void restore_faces(const Model& model, const limn_image& input, limn_image& output, const limn_face* faces,
                   size_t face_count, const RestoreFacesOptions& options, PipelineStats* stats);

}  // namespace limn::core
