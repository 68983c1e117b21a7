#include "faces.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "error.h"
#include "model.h"

namespace limn::core {

void check_feather(float feather) {
    if (!std::isfinite(feather) || feather < 0.0f || feather > 0.5f) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid feather " + number_text(feather) + ": expected 0..0.5");
    }
}

void check_faces(const limn_face* given, size_t count) {
    if (count > 0 && !given) fail(LIMN_ERR_INVALID_ARGUMENT, "faces is NULL but face_count is " + std::to_string(count));
}

std::vector<limn_face> faces_for(const limn_face* given, size_t count, const Model* detector, const limn_image& input,
                                 const DetectFacesOptions& detect) {
    check_faces(given, count);
    if (count > 0) return std::vector<limn_face>(given, given + count);
    return detector ? detect_faces(*detector, input, detect) : std::vector<limn_face>();
}

std::vector<Similarity> crop_transforms(const std::vector<limn_face>& faces, const std::vector<float>& face_template,
                                        double sx, double sy) {
    std::vector<Similarity> to_crop(faces.size());
    for (size_t i = 0; i < faces.size(); ++i) {
        float points[10];
        for (int k = 0; k < 10; ++k) {
            const double s = k % 2 ? sy : sx;
            points[k] = static_cast<float>((faces[i].landmarks[k] + 0.5) * s - 0.5);
        }
        try {
            to_crop[i] = estimate_similarity(points, face_template.data(), 5);
        } catch (const Failure& e) {
            fail(e.status(), "face " + std::to_string(i) + ": " + e.what());
        }
    }
    return to_crop;
}

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

}  // namespace limn::core
