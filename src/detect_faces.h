// Face detection: a face_detect model over a whole photo, at a working resolution, with a score
// threshold and non-maximum suppression; results in the photo's pixel coordinates.
#pragma once

#include <cstdint>
#include <vector>

#include "device.h"
#include "limn/limn.h"

namespace limn::core {

class Model;

struct DetectFacesOptions {
    float score_threshold = 0.9f;  // GPEN's pipeline uses 0.9
    float nms_iou = 0.4f;          // RetinaFace's evaluation setting
    int32_t max_faces = 0;         // 0: all
    int32_t max_side = 1024;       // 0: full size
    ImageMemory memory;            // where the input is (inside another pipeline: that one's)
};

// Validates everything first; returns the faces best score first.
// The checks that need no model: Failure(LIMN_ERR_INVALID_ARGUMENT) naming the field.
void check_options(const DetectFacesOptions& options);

std::vector<limn_face> detect_faces(const Model& detector, const limn_image& input,
                                    const DetectFacesOptions& options);

}  // namespace limn::core
