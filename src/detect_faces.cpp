#include "detect_faces.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "error.h"
#include "image.h"
#include "memory.h"
#include "model.h"
#include "tiling.h"

namespace limn::core {
namespace {

// Candidates considered by the suppression, best first (RetinaFace's reference code keeps 5000).
constexpr int64_t kMaxCandidates = 5000;

float iou(const limn_face& a, const limn_face& b) {
    const float iw = std::min(a.box[2], b.box[2]) - std::max(a.box[0], b.box[0]);
    const float ih = std::min(a.box[3], b.box[3]) - std::max(a.box[1], b.box[1]);
    if (iw <= 0.0f || ih <= 0.0f) return 0.0f;
    const float inter = iw * ih;
    const float area_a = (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]);
    const float area_b = (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]);
    return inter / (area_a + area_b - inter);
}

}  // namespace

void check_options(const DetectFacesOptions& o) {
    if (!(o.score_threshold >= 0.0f && o.score_threshold <= 1.0f)) {
        fail(LIMN_ERR_INVALID_ARGUMENT,
             "invalid score_threshold " + number_text(o.score_threshold) + ": expected 0..1");
    }
    if (!(o.nms_iou > 0.0f && o.nms_iou <= 1.0f)) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid nms_iou " + number_text(o.nms_iou) + ": expected (0, 1]");
    }
    if (o.max_faces < 0) fail(LIMN_ERR_INVALID_ARGUMENT, "invalid max_faces " + std::to_string(o.max_faces));
    if (o.max_side < 0 || (o.max_side > 0 && o.max_side < 16)) {
        fail(LIMN_ERR_INVALID_ARGUMENT,
             "invalid max_side " + std::to_string(o.max_side) + ": expected 0 (full size) or >= 16");
    }
}

std::vector<limn_face> detect_faces(const Model& detector, const limn_image& input,
                                    const DetectFacesOptions& options) {
    check_options(options);
    const ModelMetadata& meta = detector.metadata();
    if (meta.kind != LIMN_MODEL_KIND_FACE_DETECT) {
        fail(LIMN_ERR_WRONG_MODEL_KIND, "model '" + detector.origin() + "' is not a face_detect model");
    }
    if (meta.fixed_width > 0) {
        fail(LIMN_ERR_UNSUPPORTED, "model '" + detector.origin() + "': face_detect models of a fixed size "
                                   "are not supported; a detector must take any size");
    }
    check_image(&input, "input", detector.max_pixels());
    const ImagesScope images(options.memory, detector.device(), detector.origin(), {{&input, "input"}});

    c10::InferenceMode guard;
    const StreamScope stream(detector.device());
    const int64_t H = input.height, W = input.width;
    const at::Tensor pixels = images_to_device(&input, 1, detector.tensor_device());
    at::Tensor x = to_network_input(pixels, input.format);
    // Working size: the longer side at most max_side, keeping the aspect ratio.
    const double scale = max_side_scale(H, W, options.max_side);
    if (scale < 1.0) x = downscale(x, scale);
    const int64_t h = x.size(2), w = x.size(3);
    // The size rule and the smallest input: pad the bottom and right edges with black (detections
    // stay in place).
    const int64_t m = meta.size_multiple;
    const int64_t ph = round_up(std::max(h, detector.min_height()), m);
    const int64_t pw = round_up(std::max(w, detector.min_width()), m);
    if (ph != h || pw != w) x = at::constant_pad_nd(x, {0, pw - w, 0, ph - h}, 0.0);

    const at::Tensor y = detector.checked([&] { return detector.forward(x)[0]; });  // [P, 15]
    at::Tensor keep = at::nonzero(y.select(1, 4) >= options.score_threshold).squeeze(1);
    at::Tensor found = y.index_select(0, keep);
    found = found.index_select(0, at::argsort(found.select(1, 4), /*stable=*/true, 0, /*descending=*/true));
    if (found.size(0) > kMaxCandidates) found = found.narrow(0, 0, kMaxCandidates);
    found = found.to(at::kCPU, at::kFloat).contiguous();

    // Back to the photo: box edges scale, landmarks (pixel centres) scale about the half pixel.
    const double sx = double(W) / double(w), sy = double(H) / double(h);
    std::vector<limn_face> candidates(static_cast<size_t>(found.size(0)));
    const float* row = found.data_ptr<float>();
    for (auto& f : candidates) {
        for (int k = 0; k < 4; ++k) f.box[k] = float(row[k] * (k % 2 ? sy : sx));
        f.score = row[4];
        for (int k = 0; k < 10; ++k) {
            const double s = k % 2 ? sy : sx;
            f.landmarks[k] = float((row[5 + k] + 0.5) * s - 0.5);
        }
        row += kDetectionColumns;
    }
    // Greedy suppression, best first.
    std::vector<limn_face> faces;
    for (const limn_face& c : candidates) {
        bool suppressed = false;
        for (const limn_face& kept : faces) {
            if (iou(c, kept) > options.nms_iou) {
                suppressed = true;
                break;
            }
        }
        if (suppressed) continue;
        faces.push_back(c);
        if (options.max_faces > 0 && faces.size() >= static_cast<size_t>(options.max_faces)) break;
    }
    return faces;
}

}  // namespace limn::core
