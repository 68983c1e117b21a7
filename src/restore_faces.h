// The restore-faces pipeline: for each face (5 landmarks), a similarity warp of the photo to the
// model's template, restoration, and an inverse warp pasted back with a feathered mask.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "align.h"
#include "detect_faces.h"
#include "limn/limn.h"
#include "pipeline.h"

namespace at {
class Tensor;
}

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
};

// The photo pixels an aligned crop of S x S covers (inclusive bounds, clamped to the picture);
// empty when the crop lies entirely outside it.
struct FaceRegion {
    int64_t x0 = 0, y0 = 0, x1 = -1, y1 = -1;
    bool empty() const { return x0 > x1 || y0 > y1; }
};
FaceRegion face_region(const Similarity& to_crop, int64_t crop, int64_t width, int64_t height);

// float [1, 3, y1 - y0, x1 - x0] RGB in [0, 1]: a region of the picture crops are taken from.
using RegionSource = std::function<at::Tensor(int64_t y0, int64_t y1, int64_t x0, int64_t x1)>;

// One face through a crop model and back, shared by restore-faces and compound cartoonize: warps
// the picture (`photo`) by `to_crop` (picture -> crop similarity) to the model's S x S crop (its
// fixed size, or a head model's crop size), runs the model, warps the result back and blends it
// into `result` (float [1, 3, H, W], the same picture's size) over `region`, with a mask fading
// out over `feather_px` towards the crop's edges, times `strength`. Crop pixels outside the
// picture are white with `white_border` (DCT-Net's pipeline), else the edge mirrored.
void blend_face(const Model& model, const RegionSource& photo, at::Tensor& result, const Similarity& to_crop,
                const FaceRegion& region, double feather_px, float strength, bool white_border);

// `output` (same size as `input`, any format, may be the same buffer) is written only on success.
// With no faces given and options.detector set, the faces are detected first.
void restore_faces(const Model& model, const limn_image& input, limn_image& output, const limn_face* faces,
                   size_t face_count, const RestoreFacesOptions& options, PipelineStats* stats);

}  // namespace limn::core
