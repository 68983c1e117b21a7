#include "cartoonize.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "align.h"
#include "error.h"
#include "image.h"
#include "memory.h"
#include "model.h"
#include "pipeline.h"
#include "faces.h"
#include "tiling.h"

namespace limn::core {
namespace {

// float [1, 3, y1 - y0, x1 - x0] RGB in [0, 1]: a region of the picture the network works on.
using Source = std::function<at::Tensor(int64_t y0, int64_t y1, int64_t x0, int64_t x1)>;

// The blend weights of every span of both axes, uploaded in one copy (from pinned memory on CUDA),
// and each span's part of them: no host round trip between tiles.
struct DeviceWeights {
    at::Tensor all;
    std::vector<int64_t> row_at, col_at;

    DeviceWeights(const std::vector<TileSpan>& rows, const std::vector<TileSpan>& cols, const c10::Device& device) {
        int64_t n = 0;
        for (const auto& r : rows) n += r.length;
        for (const auto& c : cols) n += c.length;
        at::Tensor host = at::empty({n}, at::TensorOptions().dtype(at::kFloat).pinned_memory(device.is_cuda()));
        float* p = host.data_ptr<float>();
        int64_t at = 0;
        for (const auto* axis : {&rows, &cols}) {
            for (const TileSpan& s : *axis) {
                (axis == &rows ? row_at : col_at).push_back(at);
                std::copy(s.weights.begin(), s.weights.end(), p + at);
                at += s.length;
            }
        }
        all = device.is_cpu() ? host : host.to(device, /*non_blocking=*/true);
    }
    // The first `n` weights of row span i ([1, 1, n, 1]) or column span i ([1, 1, 1, n]).
    at::Tensor row(size_t i, int64_t n) const { return all.narrow(0, row_at[i], n).view({1, 1, -1, 1}); }
    at::Tensor col(size_t i, int64_t n) const { return all.narrow(0, col_at[i], n).view({1, 1, 1, -1}); }
};

// Runs the model over an h x w picture in tiles of `side` (one tile when it fits) and returns
// float [1, 3, h, w]. The tiles cover plan_h x plan_w: positions past the picture (to the size
// rule and the model's smallest input) repeat its edge and are cropped away.
// Progress counts the tiles, then `later_steps` more (the faces of a compound stylization).
at::Tensor run_tiles(const Model& model, const Source& source, int64_t h, int64_t w, int64_t plan_h,
                     int64_t plan_w, int64_t side, int32_t later_steps, const Progress& progress,
                     PipelineStats& stats) {
    const int64_t m = model.metadata().size_multiple;
    const c10::Device device = model.tensor_device();
    const int64_t margin = model.metadata().tile_margin;
    const auto rows = plan_axis(plan_h, side, margin, m);
    const auto cols = plan_axis(plan_w, side, margin, m);
    const int32_t tiles = static_cast<int32_t>(rows.size() * cols.size());
    const int32_t total = tiles + later_steps;
    stats.tiles = tiles;
    stats.tile_size = static_cast<int32_t>(tiles == 1 ? std::max(rows[0].length, cols[0].length) : side);
    const auto run_tile = [&](const TileSpan& r, const TileSpan& c, int64_t y1, int64_t x1) {
        at::Tensor x = source(r.start, y1, c.start, x1);
        if (y1 - r.start < r.length || x1 - c.start < c.length) {
            x = at::pad(x, {0, c.length - (x1 - c.start), 0, r.length - (y1 - r.start)}, "replicate");
        }
        return model.forward(x).narrow(2, 0, y1 - r.start).narrow(3, 0, x1 - c.start);
    };
    progress.step(0, total, "cartoonize");
    if (tiles == 1) {  // one pass: the network's output is the result, nothing to blend
        at::Tensor y = run_tile(rows[0], cols[0], h, w);
        progress.step(1, total, "cartoonize");
        return y;
    }
    at::Tensor acc = at::zeros({1, 3, h, w}, at::TensorOptions().dtype(at::kFloat).device(device));
    const DeviceWeights weights(rows, cols, device);
    int32_t done = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
        const TileSpan& r = rows[i];
        const int64_t y1 = std::min(r.start + r.length, h);
        const at::Tensor wy = weights.row(i, y1 - r.start);
        for (size_t j = 0; j < cols.size(); ++j) {
            const TileSpan& c = cols[j];
            const int64_t x1 = std::min(c.start + c.length, w);
            const at::Tensor y = run_tile(r, c, y1, x1);
            const at::Tensor wx = weights.col(j, x1 - c.start);
            // One pass over the tile: acc += y * (wy x wx), the weight map being one channel.
            acc.narrow(2, r.start, y1 - r.start).narrow(3, c.start, x1 - c.start).addcmul_(y, wy * wx);
            progress.step(++done, total, "cartoonize");
        }
    }
    return acc;
}

void check_model(const Model& model) {
    if (model.metadata().kind != LIMN_MODEL_KIND_CARTOON) {
        fail(LIMN_ERR_WRONG_MODEL_KIND, "model '" + model.origin() + "' is not a cartoon model");
    }
    if (model.metadata().fixed_width > 0) {
        fail(LIMN_ERR_UNSUPPORTED, "model '" + model.origin() + "' takes a fixed size; cartoonize needs a "
                                   "model that takes any size");
    }
}

// The compound pipeline's head model: a cartoon model of role "head" on the main model's device.
void check_head_model(const Model& model, const CartoonizeOptions& o) {
    const Model& head = *o.head_model;
    const ModelMetadata& hm = head.metadata();
    if (hm.kind != LIMN_MODEL_KIND_CARTOON || hm.role != "head") {
        fail(LIMN_ERR_WRONG_MODEL_KIND, "head model '" + head.origin() + "' is a " + kind_name(hm.kind) +
                                            (hm.role.empty() ? "" : " " + hm.role) +
                                            " model; a head model is a cartoon model of role 'head' "
                                            "(convert_dctnet writes cartoon_h.pb so)");
    }
    if (head.device().id() != model.device().id()) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "head model '" + head.origin() + "' is on " + head.device().id() +
                                            " but model '" + model.origin() + "' on " + model.device().id() +
                                            ": load both on one device");
    }
    if (o.face_count == 0 && !o.detector) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "a head model needs the faces: give them (faces) or a face_detect "
                                        "model that finds them (detector)");
    }
}

// The sizes a run works at: the photo (H x W), the picture the network sees (h x w, downscaled
// for max_side and, with a head model, working_size), the area the tiles cover (plan_h x plan_w:
// the picture padded to the size rule and the smallest input), and the tiles' side.
struct Plan {
    int64_t H = 0, W = 0, h = 0, w = 0, plan_h = 0, plan_w = 0;
    double scale = 1.0;
    int64_t side = 0, min_side = 0, multiple = 1;
};

// Sizes, and the tile side: as given, or the largest the memory budget allows after the
// whole-picture buffers (input pixels, accumulated result, blend) are accounted for.
Plan plan_run(const Model& model, const limn_image& input, const CartoonizeOptions& options) {
    const ModelMetadata& meta = model.metadata();
    Plan p;
    p.H = input.height;
    p.W = input.width;
    p.scale = max_side_scale(p.H, p.W, options.max_side);
    if (options.head_model && options.working_size > 0 && std::min(p.H, p.W) > options.working_size) {
        p.scale = std::min(p.scale, double(options.working_size) / double(std::min(p.H, p.W)));
    }
    p.h = p.scale < 1.0 ? std::max<int64_t>(1, std::llround(double(p.H) * p.scale)) : p.H;
    p.w = p.scale < 1.0 ? std::max<int64_t>(1, std::llround(double(p.W) * p.scale)) : p.W;
    const int64_t m = p.multiple = meta.size_multiple;
    p.plan_h = std::max(round_up(p.h, m), round_up(model.min_height(), m));
    p.plan_w = std::max(round_up(p.w, m), round_up(model.min_width(), m));
    const int64_t overlap = tile_overlap(meta.tile_margin, m);
    const int64_t smallest = round_up(std::max(model.min_height(), model.min_width()), m);
    p.min_side = std::max({round_up(2 * overlap + m, m), round_up(32, m), smallest});
    const int64_t whole = std::max(p.plan_h, p.plan_w);
    if (options.tile_size > 0) {
        p.side = std::min(whole, std::max(smallest, options.tile_size / m * m));
        if (p.side < whole && options.tile_size < smallest_tile_size(model)) {
            fail(LIMN_ERR_INVALID_ARGUMENT, "tile_size " + std::to_string(options.tile_size) +
                                                " is too small for model '" + model.origin() +
                                                "': tiles must be larger than " + std::to_string(overlap + m) +
                                                " (twice its tile margin plus its size multiple)");
        }
        return p;
    }
    const double budget = options.memory_budget > 0 ? static_cast<double>(options.memory_budget)
                                                    : static_cast<double>(available_memory(model.device()));
    const double picture_bytes = static_cast<double>(p.H * p.W) * (bytes_per_pixel(input.format) + 2 * 12.0) +
                                 static_cast<double>(p.h * p.w) * 12.0;
    const MemoryProfile profile = model.memory_profile();
    const double tile_budget = budget - picture_bytes;
    const double whole_cost = profile.fixed_bytes + profile.bytes_per_pixel * double(p.plan_h * p.plan_w);
    p.side = whole_cost <= tile_budget ? whole
                                       : std::min(whole, tile_side_for_budget(tile_budget, profile, m, p.min_side));
    return p;
}

// The tiles, run again with tiles half the side after running out of memory (down to the
// smallest the model takes).
at::Tensor run_with_retries(const Model& model, const Source& source, Plan& plan, int32_t later_steps,
                            const Progress& progress, PipelineStats& stats) {
    for (;;) {
        try {
            return run_tiles(model, source, plan.h, plan.w, plan.plan_h, plan.plan_w, plan.side, later_steps,
                             progress, stats);
        } catch (const std::exception& e) {
            // The failed pass's tensors are back in the allocator's cache for the next one.
            if (!is_out_of_memory(e) || plan.side <= plan.min_side) throw;
            plan.side = std::max(plan.min_side, plan.side / 2 / plan.multiple * plan.multiple);
            ++stats.oom_retries;
        }
    }
}

// Each face: aligned from the working picture (white beyond its edges, as DCT-Net's pipeline
// pads), stylized by the head model, blended back over the result.
void stylize_faces(const Model& head, const Source& source, at::Tensor& result, const std::vector<Similarity>& to_crop,
                   const Plan& plan, float feather, const Progress& progress, PipelineStats& stats) {
    stats.faces = stats.faces_skipped = 0;  // a rerun in fp32 counts again
    const int64_t S = head.metadata().crop_size;
    const int32_t total = stats.tiles + static_cast<int32_t>(to_crop.size());
    for (size_t i = 0; i < to_crop.size(); ++i) {
        const FaceRegion region = face_region(to_crop[i], S, plan.w, plan.h);
        if (region.empty()) {
            ++stats.faces_skipped;
        } else {
            blend_face(head, source, result, to_crop[i], region, feather * double(S), 1.0f, true);
            ++stats.faces;
        }
        progress.step(stats.tiles + static_cast<int32_t>(i) + 1, total, "cartoonize");
    }
}

}  // namespace

void check_options(const CartoonizeOptions& o) {
    check_strength(o.strength);
    if (o.max_side < 0) fail(LIMN_ERR_INVALID_ARGUMENT, "invalid max_side " + std::to_string(o.max_side));
    if (o.tile_size < 0) fail(LIMN_ERR_INVALID_ARGUMENT, "invalid tile_size " + std::to_string(o.tile_size));
    if (o.working_size < 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid working_size " + std::to_string(o.working_size));
    }
    check_feather(o.feather);
    check_faces(o.faces, o.face_count);
}

int32_t smallest_tile_size(const Model& model) {
    const int64_t m = model.metadata().size_multiple;
    const int64_t overlap = tile_overlap(model.metadata().tile_margin, m);
    const int64_t smallest = round_up(std::max(model.min_height(), model.min_width()), m);
    // A tile is tile_size rounded down to the size multiple, at least `smallest`, and must be
    // larger than the overlap plus one multiple.
    return static_cast<int32_t>(smallest > overlap + m ? 1 : ((overlap + m) / m + 1) * m);
}

void cartoonize(const Model& model, const limn_image& input, limn_image& output,
                const CartoonizeOptions& options, PipelineStats* stats_out) {
    const Progress progress(options.progress, options.progress_user_data, options.timeout_ms);
    check_options(options);
    check_model(model);
    check_image_pair(input, output, "input", "output", model.max_pixels());
    const Model* head = options.head_model;
    if (head) check_head_model(model, options);
    const ImagesScope images(options.memory, model.device(), model.origin(),
                             {{&input, "input"}, {&output, "output"}});
    // Compound: the faces in input pixels, then (once the sizes are known, and before any work)
    // their transforms to the head model's crop in the working picture's pixels.
    const std::vector<limn_face> faces =
        head ? faces_for(options.faces, options.face_count, options.detector, input,
                         with_memory(options.detect, options.memory))
             : std::vector<limn_face>();
    PipelineStats stats;
    stats.faces_found = static_cast<int32_t>(faces.size());
    c10::InferenceMode guard;
    const StreamScope stream(model.device());
    const at::Tensor pixels = images_to_device(&input, 1, model.tensor_device());  // [1, H, W, C]
    if (options.strength == 0.0f) {
        // Nothing of the cartoon is kept: the input, exactly, in the output's format.
        write_images(to_network_input(pixels, input.format), pixels, input.format, &output, 1);
        stats.seconds = progress.elapsed_seconds();
        if (stats_out) *stats_out = stats;
        return;
    }
    Plan plan = plan_run(model, input, options);
    const at::Tensor small = plan.scale < 1.0 ? downscale(to_network_input(pixels, input.format), plan.scale) : at::Tensor();
    const Source source = [&](int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
        if (small.defined()) return small.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0);
        return to_network_input(pixels.narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0), input.format,
                                model.input_channels_last());
    };
    stats.width = static_cast<int32_t>(plan.w);
    stats.height = static_cast<int32_t>(plan.h);
    const std::vector<Similarity> to_crop =
        head ? crop_transforms(faces, head->metadata().face_template, double(plan.w) / double(plan.W),
                               double(plan.h) / double(plan.H))
             : std::vector<Similarity>();
    const at::Tensor result = model.checked([&] {
        at::Tensor r = run_with_retries(model, source, plan, static_cast<int32_t>(faces.size()), progress, stats);
        if (head) {
            r = r.contiguous();
            stylize_faces(*head, source, r, to_crop, plan, options.feather, progress, stats);
        }
        if (small.defined()) r = at::upsample_bilinear2d(r, {plan.H, plan.W}, /*align_corners=*/false);
        if (options.strength < 1.0f) {
            r.mul_(options.strength).add_(to_network_input(pixels, input.format), 1.0f - options.strength);
        }
        return r;
    });
    write_images(result, pixels, input.format, &output, 1);
    stats.seconds = progress.elapsed_seconds();
    if (stats_out) *stats_out = stats;
}

}  // namespace limn::core
