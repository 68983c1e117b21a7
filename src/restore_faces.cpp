#include "restore_faces.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "align.h"
#include "error.h"
#include "image.h"
#include "memory.h"
#include "model.h"
#include "pipeline.h"

namespace limn::core {
namespace {

// Sampling grid [1, rows, cols, 2] for grid_sampler (align_corners = true): for each output pixel
// (x0 + i, y0 + j), the point `t` maps it to, normalised to a source of size src_w x src_h.
at::Tensor grid_for(const Similarity& t, int64_t x0, int64_t y0, int64_t cols, int64_t rows, int64_t src_w,
                    int64_t src_h, const c10::Device& device) {
    const auto f = at::TensorOptions().dtype(at::kFloat).device(device);
    const at::Tensor x = at::arange(x0, x0 + cols, f).view({1, -1});
    const at::Tensor y = at::arange(y0, y0 + rows, f).view({-1, 1});
    // u = a x - b y + tx, v = b x + a y + ty, then to [-1, 1] over the source's pixel centres.
    const double sx = src_w > 1 ? 2.0 / double(src_w - 1) : 0.0;
    const double sy = src_h > 1 ? 2.0 / double(src_h - 1) : 0.0;
    const at::Tensor u = (x * t.a - y * t.b + t.tx) * sx - (src_w > 1 ? 1.0 : 0.0);
    const at::Tensor v = (x * t.b + y * t.a + t.ty) * sy - (src_h > 1 ? 1.0 : 0.0);
    return at::stack({u, v}, -1).unsqueeze(0);
}

}  // namespace

FaceRegion face_region(const Similarity& to_crop, int64_t crop, int64_t width, int64_t height) {
    const Similarity from = to_crop.inverse();
    double lo_x = 1e300, lo_y = 1e300, hi_x = -1e300, hi_y = -1e300;
    const double e = double(crop - 1);
    for (const auto& c : {std::pair<double, double>{0, 0}, {e, 0}, {0, e}, {e, e}}) {
        double x, y;
        from.apply(c.first, c.second, x, y);
        lo_x = std::min(lo_x, x);
        lo_y = std::min(lo_y, y);
        hi_x = std::max(hi_x, x);
        hi_y = std::max(hi_y, y);
    }
    FaceRegion r;
    r.x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(lo_x)) - 1);
    r.y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(lo_y)) - 1);
    r.x1 = std::min<int64_t>(width - 1, static_cast<int64_t>(std::ceil(hi_x)) + 1);
    r.y1 = std::min<int64_t>(height - 1, static_cast<int64_t>(std::ceil(hi_y)) + 1);
    return r;
}

void blend_face(const Model& model, const RegionSource& photo, at::Tensor& result, const Similarity& to_crop,
                const FaceRegion& region, double feather_px, float strength, bool white_border) {
    const int64_t S = model.metadata().fixed_width > 0 ? model.metadata().fixed_width : model.metadata().crop_size;
    const c10::Device device = result.device();
    const int64_t rw = region.x1 - region.x0 + 1, rh = region.y1 - region.y0 + 1;
    const at::Tensor source = photo(region.y0, region.y1 + 1, region.x0, region.x1 + 1);
    Similarity crop_to_region = to_crop.inverse();
    crop_to_region.tx -= double(region.x0);
    crop_to_region.ty -= double(region.y0);
    const at::Tensor grid_in = grid_for(crop_to_region, 0, 0, S, S, rw, rh, device);
    // Crop pixels outside the photo: white (1 - a zero-padded sample of 1 - photo), or the
    // photo's edge mirrored.
    const at::Tensor crop = white_border
                                ? at::grid_sampler(1.0 - source, grid_in, /*bilinear*/ 0, /*zeros*/ 0, true).neg_().add_(1.0)
                                : at::grid_sampler(source, grid_in, /*bilinear*/ 0, /*reflection*/ 2, true);
    const at::Tensor styled = model.checked([&] { return model.forward(crop); });
    // Back into the picture: each region pixel samples the crop's result, weighted by a mask that
    // fades out over `feather_px` towards the crop's edges.
    const at::Tensor grid = grid_for(to_crop, region.x0, region.y0, rw, rh, S, S, device);
    const at::Tensor back = at::grid_sampler(styled, grid, 0, /*zeros*/ 0, true);
    const at::Tensor q = grid.add(1.0).mul_(0.5 * double(S - 1));  // crop pixel coordinates
    const at::Tensor edge = at::minimum(q, (double(S - 1) - q)).amin(-1);  // [1, rh, rw]
    at::Tensor mask = feather_px > 0.0 ? edge.div(feather_px).clamp_(0.0, 1.0) : edge.ge(0.0).to(at::kFloat);
    mask = mask.mul_(edge.ge(0.0)).mul_(strength).unsqueeze(1);  // [1, 1, rh, rw]
    at::Tensor target = result.narrow(2, region.y0, rh).narrow(3, region.x0, rw);
    target.add_(back.sub(target).mul_(mask));
}

namespace {

void check_options(const RestoreFacesOptions& o) {
    check_strength(o.strength);
    if (!std::isfinite(o.min_face_size) || o.min_face_size < 0.0f) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid min_face_size " + std::to_string(o.min_face_size));
    }
    if (!std::isfinite(o.feather) || o.feather < 0.0f || o.feather > 0.5f) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid feather " + std::to_string(o.feather) + ": expected 0..0.5");
    }
}

}  // namespace

void restore_faces(const Model& model, const limn_image& input, limn_image& output, const limn_face* faces,
                   size_t face_count, const RestoreFacesOptions& options, PipelineStats* stats_out) {
    const Progress progress(options.progress, options.progress_user_data, options.timeout_ms);
    check_options(options);
    const ModelMetadata& meta = model.metadata();
    if (meta.kind != LIMN_MODEL_KIND_FACE_RESTORE) {
        fail(LIMN_ERR_WRONG_MODEL_KIND, "model '" + model.origin() + "' is not a face_restore model");
    }
    if (meta.fixed_width <= 0 || meta.fixed_width != meta.fixed_height || meta.face_template.size() != 10) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + model.origin() + "' needs a fixed square size and a 5-point "
                                     "face template to restore faces");
    }
    if (face_count > 0 && !faces) fail(LIMN_ERR_INVALID_ARGUMENT, "faces is NULL but face_count is " + std::to_string(face_count));
    check_image_pair(input, output, "input", "output", model.max_pixels());
    std::vector<limn_face> detected;
    if (face_count == 0 && options.detector) {
        detected = detect_faces(*options.detector, input, options.detect);
        faces = detected.data();
        face_count = detected.size();
    }
    // Transforms first, so bad landmarks fail before any work.
    std::vector<Similarity> to_crop(face_count);
    for (size_t i = 0; i < face_count; ++i) {
        try {
            to_crop[i] = estimate_similarity(faces[i].landmarks, meta.face_template.data(), 5);
        } catch (const Failure& e) {
            fail(e.status(), "face " + std::to_string(i) + ": " + e.what());
        }
    }

    PipelineStats stats;
    const int64_t H = input.height, W = input.width, S = meta.fixed_width;
    c10::InferenceMode guard;
    const StreamScope stream(model.device());
    const c10::Device device = model.tensor_device();
    const at::Tensor pixels = images_to_device(&input, 1, device);
    const double feather_px = options.feather * double(S);
    const int32_t total = static_cast<int32_t>(face_count);
    const at::Tensor result = model.checked([&] {
        stats.faces = stats.faces_skipped = 0;  // a rerun in fp32 counts again
        at::Tensor result = to_network_input(pixels, input.format).contiguous();
        progress.step(0, total, "restore faces");
        for (size_t i = 0; i < face_count; ++i) {
            const FaceRegion region = face_region(to_crop[i], S, W, H);
            const bool big_enough = double(S) / to_crop[i].scale() >= options.min_face_size;
            if (big_enough && !region.empty() && options.strength > 0.0f) {
                // The crop comes from the photo as it was, even where an earlier face was pasted.
                const auto photo = [&](int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
                    return to_network_input(pixels.narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0), input.format)
                        .contiguous();
                };
                blend_face(model, photo, result, to_crop[i], region, feather_px, options.strength, false);
                ++stats.faces;
            } else if (!big_enough || region.empty()) {
                ++stats.faces_skipped;
            }
            progress.step(static_cast<int32_t>(i + 1), total, "restore faces");
        }
        return result;
    });
    write_images(result, pixels, input.format, &output, 1);
    stats.faces_found = static_cast<int32_t>(face_count);
    stats.width = static_cast<int32_t>(W);
    stats.height = static_cast<int32_t>(H);
    stats.tiles = stats.faces;
    stats.tile_size = static_cast<int32_t>(S);
    stats.seconds = progress.elapsed_seconds();
    if (stats_out) *stats_out = stats;
}

}  // namespace limn::core
