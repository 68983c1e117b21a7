// What the pipelines that work on faces share (restore-faces, and cartoonize with a head model):
// the faces given or detected, their alignment to a model's template, the photo region a crop
// covers, and one face through a crop model and pasted back. Pipelines use this; none reaches into
// another.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "align.h"
#include "detect_faces.h"
#include "limn/limn.h"

namespace at {
class Tensor;
}

namespace limn::core {

class Model;

// Failure(LIMN_ERR_INVALID_ARGUMENT) unless 0 <= feather <= 0.5 (a fraction of the crop side).
void check_feather(float feather);

// Failure(LIMN_ERR_INVALID_ARGUMENT) for a NULL array with a count.
void check_faces(const limn_face* given, size_t count);

// `detect` for a detection inside a pipeline: on the pipeline's images.
inline DetectFacesOptions with_memory(DetectFacesOptions detect, const ImageMemory& memory) {
    detect.memory = memory;
    return detect;
}

// The faces given (count > 0), else those `detector` finds in `input` (none without a detector).
std::vector<limn_face> faces_for(const limn_face* given, size_t count, const Model* detector, const limn_image& input,
                                 const DetectFacesOptions& detect);

// Each face's similarity to `face_template` (5 points), its landmarks first scaled from the
// photo's pixels to a picture sx, sy times the size (pixel centres at integers). Fails naming
// the face for landmarks that cannot be aligned, before any work is done.
std::vector<Similarity> crop_transforms(const std::vector<limn_face>& faces, const std::vector<float>& face_template,
                                        double sx = 1.0, double sy = 1.0);

// The photo pixels an aligned crop of S x S covers (inclusive bounds, clamped to the picture);
// empty when the crop lies entirely outside it.
struct FaceRegion {
    int64_t x0 = 0, y0 = 0, x1 = -1, y1 = -1;
    bool empty() const { return x0 > x1 || y0 > y1; }
};
FaceRegion face_region(const Similarity& to_crop, int64_t crop, int64_t width, int64_t height);

// float [1, 3, y1 - y0, x1 - x0] RGB in [0, 1]: a region of the picture crops are taken from.
using RegionSource = std::function<at::Tensor(int64_t y0, int64_t y1, int64_t x0, int64_t x1)>;

// One face through a crop model and back: warps the picture (`photo`) by `to_crop` (picture ->
// crop similarity) to the model's S x S crop (its fixed size, or a head model's crop size), runs
// the model, warps the result back and blends it into `result` (float [1, 3, H, W], the same
// picture's size) over `region`, with a mask fading out over `feather_px` towards the crop's
// edges, times `strength`. Crop pixels outside the picture are white with `white_border`
// (DCT-Net's pipeline), else the edge mirrored.
void blend_face(const Model& model, const RegionSource& photo, at::Tensor& result, const Similarity& to_crop,
                const FaceRegion& region, double feather_px, float strength, bool white_border);

}  // namespace limn::core
