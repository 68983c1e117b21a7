#include "restore_faces.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "align.h"
#include "faces.h"
#include "error.h"
#include "image.h"
#include "memory.h"
#include "model.h"
#include "pipeline.h"

namespace limn::core {

namespace {

void check_model(const Model& model) {
    const ModelMetadata& meta = model.metadata();
    if (meta.kind != LIMN_MODEL_KIND_FACE_RESTORE) {
        fail(LIMN_ERR_WRONG_MODEL_KIND, "model '" + model.origin() + "' is not a face_restore model");
    }
    if (meta.fixed_width <= 0 || meta.fixed_width != meta.fixed_height || meta.face_template.size() != 10) {
        fail(LIMN_ERR_INVALID_MODEL, "model '" + model.origin() + "' needs a fixed square size and a 5-point "
                                     "face template to restore faces");
    }
}

// Each face restored and pasted over `result` (the photo as float [1, 3, H, W]); the crops come
// from the photo as it was, even where an earlier face was pasted.
void restore_each(const Model& model, const RegionSource& photo, at::Tensor& result,
                  const std::vector<Similarity>& to_crop, const RestoreFacesOptions& options,
                  const Progress& progress, PipelineStats& stats) {
    const int64_t S = model.metadata().fixed_width, H = result.size(2), W = result.size(3);
    const int32_t total = static_cast<int32_t>(to_crop.size());
    stats.faces = stats.faces_skipped = 0;  // a rerun in fp32 counts again
    progress.step(0, total, "restore faces");
    for (size_t i = 0; i < to_crop.size(); ++i) {
        const FaceRegion region = face_region(to_crop[i], S, W, H);
        const bool big_enough = double(S) / to_crop[i].scale() >= options.min_face_size;
        if (big_enough && !region.empty() && options.strength > 0.0f) {
            blend_face(model, photo, result, to_crop[i], region, options.feather * double(S), options.strength, false);
            ++stats.faces;
        } else if (!big_enough || region.empty()) {
            ++stats.faces_skipped;
        }
        progress.step(static_cast<int32_t>(i + 1), total, "restore faces");
    }
}

}  // namespace

void check_options(const RestoreFacesOptions& o) {
    check_strength(o.strength);
    if (!std::isfinite(o.min_face_size) || o.min_face_size < 0.0f) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid min_face_size " + number_text(o.min_face_size));
    }
    check_feather(o.feather);
}

void restore_faces(const Model& model, const limn_image& input, limn_image& output, const limn_face* faces,
                   size_t face_count, const RestoreFacesOptions& options, PipelineStats* stats_out) {
    const Progress progress(options.progress, options.progress_user_data, options.timeout_ms);
    check_options(options);
    check_model(model);
    check_faces(faces, face_count);
    check_image_pair(input, output, "input", "output", model.max_pixels());
    const ImagesScope images(options.memory, model.device(), model.origin(),
                             {{&input, "input"}, {&output, "output"}});
    const std::vector<limn_face> found =
        faces_for(faces, face_count, options.detector, input, with_memory(options.detect, options.memory));
    // Transforms first, so bad landmarks fail before any work.
    const std::vector<Similarity> to_crop = crop_transforms(found, model.metadata().face_template);

    PipelineStats stats;
    c10::InferenceMode guard;
    const StreamScope stream(model.device());
    const at::Tensor pixels = images_to_device(&input, 1, model.tensor_device());
    const RegionSource photo = [&](int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
        return to_network_input(pixels.narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0), input.format).contiguous();
    };
    const at::Tensor result = model.checked([&] {
        at::Tensor result = to_network_input(pixels, input.format).contiguous();
        restore_each(model, photo, result, to_crop, options, progress, stats);
        return result;
    });
    write_images(result, pixels, input.format, &output, 1);
    stats.faces_found = static_cast<int32_t>(found.size());
    stats.width = input.width;
    stats.height = input.height;
    stats.tiles = stats.faces;
    stats.tile_size = model.metadata().fixed_width;
    stats.seconds = progress.elapsed_seconds();
    if (stats_out) *stats_out = stats;
}

}  // namespace limn::core
