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
#include "restore_faces.h"
#include "tiling.h"

namespace limn::core {
namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

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

void check_options(const CartoonizeOptions& o) {
    check_strength(o.strength);
    if (o.max_side < 0) fail(LIMN_ERR_INVALID_ARGUMENT, "invalid max_side " + std::to_string(o.max_side));
    if (o.tile_size < 0) fail(LIMN_ERR_INVALID_ARGUMENT, "invalid tile_size " + std::to_string(o.tile_size));
    if (o.working_size < 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid working_size " + std::to_string(o.working_size));
    }
    if (!std::isfinite(o.feather) || o.feather < 0.0f || o.feather > 0.5f) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid feather " + std::to_string(o.feather) + ": expected 0..0.5");
    }
    if (o.face_count > 0 && !o.faces) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "faces is NULL but face_count is " + std::to_string(o.face_count));
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

}  // namespace

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
    const ModelMetadata& meta = model.metadata();
    if (meta.kind != LIMN_MODEL_KIND_CARTOON) {
        fail(LIMN_ERR_WRONG_MODEL_KIND, "model '" + model.origin() + "' is not a cartoon model");
    }
    if (meta.fixed_width > 0) {
        fail(LIMN_ERR_UNSUPPORTED, "model '" + model.origin() + "' takes a fixed size; cartoonize needs a "
                                   "model that takes any size");
    }
    check_image_pair(input, output, "input", "output", model.max_pixels());
    const Model* head = options.head_model;
    std::vector<limn_face> faces;  // compound: in input pixels
    if (head) {
        check_head_model(model, options);
        faces = options.face_count > 0 ? std::vector<limn_face>(options.faces, options.faces + options.face_count)
                                       : detect_faces(*options.detector, input, options.detect);
    }
    PipelineStats stats;
    stats.faces_found = static_cast<int32_t>(faces.size());
    const int64_t H = input.height, W = input.width;
    c10::InferenceMode guard;
    const StreamScope stream(model.device());
    const c10::Device device = model.tensor_device();
    const at::Tensor pixels = images_to_device(&input, 1, device);  // [1, H, W, C]
    if (options.strength == 0.0f) {
        // Nothing of the cartoon is kept: the input, exactly, in the output's format.
        write_images(to_network_input(pixels, input.format), pixels, input.format, &output, 1);
        stats.seconds = progress.elapsed_seconds();
        if (stats_out) *stats_out = stats;
        return;
    }

    // The picture the network works on: the input, or a copy downscaled with antialiasing (its
    // longer side to max_side; with a head model, its shorter side to working_size).
    int64_t h = H, w = W;
    at::Tensor small;
    double scale = 1.0;
    if (options.max_side > 0 && std::max(H, W) > options.max_side) {
        scale = static_cast<double>(options.max_side) / static_cast<double>(std::max(H, W));
    }
    if (head && options.working_size > 0 && std::min(H, W) > options.working_size) {
        scale = std::min(scale, static_cast<double>(options.working_size) / static_cast<double>(std::min(H, W)));
    }
    if (scale < 1.0) {
        h = std::max<int64_t>(1, std::llround(H * scale));
        w = std::max<int64_t>(1, std::llround(W * scale));
        small = at::_upsample_bilinear2d_aa(to_network_input(pixels, input.format).contiguous(), {h, w},
                                            /*align_corners=*/false);
    }
    const Source source = [&](int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
        if (small.defined()) return small.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0);
        return to_network_input(pixels.narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0), input.format,
                                model.input_channels_last());
    };
    stats.width = static_cast<int32_t>(w);
    stats.height = static_cast<int32_t>(h);
    // Each face's transform to the head model's crop, in the working picture's pixels (pixel
    // centres at integers), computed first so bad landmarks fail before any work.
    std::vector<Similarity> to_crop(faces.size());
    for (size_t i = 0; i < faces.size(); ++i) {
        float points[10];
        for (int k = 0; k < 10; ++k) {
            const double s = k % 2 ? double(h) / double(H) : double(w) / double(W);
            points[k] = static_cast<float>((faces[i].landmarks[k] + 0.5) * s - 0.5);
        }
        try {
            to_crop[i] = estimate_similarity(points, head->metadata().face_template.data(), 5);
        } catch (const Failure& e) {
            fail(e.status(), "face " + std::to_string(i) + ": " + e.what());
        }
    }

    // Tiles: as given, or the largest the memory budget allows after the whole-picture buffers
    // (input pixels, accumulated result, blend) are accounted for.
    const int64_t m = meta.size_multiple;
    const int64_t overlap = tile_overlap(meta.tile_margin, m);
    // The area the tiles cover: the picture padded to the size rule and the smallest input.
    const int64_t plan_h = std::max(round_up(h, m), round_up(model.min_height(), m));
    const int64_t plan_w = std::max(round_up(w, m), round_up(model.min_width(), m));
    const int64_t smallest = round_up(std::max(model.min_height(), model.min_width()), m);
    const int64_t min_side = std::max({round_up(2 * overlap + m, m), round_up(32, m), smallest});
    const int64_t whole = std::max(plan_h, plan_w);
    int64_t side;
    if (options.tile_size > 0) {
        side = std::min(whole, std::max(smallest, options.tile_size / m * m));
        if (side < whole && options.tile_size < smallest_tile_size(model)) {
            fail(LIMN_ERR_INVALID_ARGUMENT, "tile_size " + std::to_string(options.tile_size) +
                                                " is too small for model '" + model.origin() +
                                                "': tiles must be larger than " + std::to_string(overlap + m) +
                                                " (twice its tile margin plus its size multiple)");
        }
    } else {
        const double budget = options.memory_budget > 0 ? static_cast<double>(options.memory_budget)
                                                        : static_cast<double>(available_memory(model.device()));
        const double picture_bytes =
            static_cast<double>(H * W) * (bytes_per_pixel(input.format) + 2 * 12.0) + static_cast<double>(h * w) * 12.0;
        const MemoryProfile profile = model.memory_profile();
        const double tile_budget = budget - picture_bytes;
        const double whole_cost = profile.fixed_bytes + profile.bytes_per_pixel * double(plan_h * plan_w);
        side = whole_cost <= tile_budget ? whole
                                         : std::min(whole, tile_side_for_budget(tile_budget, profile, m, min_side));
    }

    const int32_t face_steps = static_cast<int32_t>(faces.size());
    const at::Tensor result = model.checked([&] {
        at::Tensor r;
        for (;;) {
            try {
                r = run_tiles(model, source, h, w, plan_h, plan_w, side, face_steps, progress, stats);
                break;
            } catch (const std::exception& e) {
                // The failed pass's tensors are back in the allocator's cache for the next one.
                if (!is_out_of_memory(e) || side <= min_side) throw;
                side = std::max(min_side, side / 2 / m * m);
                ++stats.oom_retries;
            }
        }
        if (head) {
            // Each face: aligned from the working picture (white beyond its edges, as DCT-Net's
            // pipeline pads), stylized by the head model, blended back over the result.
            r = r.contiguous();
            stats.faces = stats.faces_skipped = 0;  // a rerun in fp32 counts again
            const int64_t S = head->metadata().crop_size;
            for (size_t i = 0; i < faces.size(); ++i) {
                const FaceRegion region = face_region(to_crop[i], S, w, h);
                if (region.empty()) {
                    ++stats.faces_skipped;
                } else {
                    blend_face(*head, source, r, to_crop[i], region, options.feather * double(S), 1.0f, true);
                    ++stats.faces;
                }
                progress.step(stats.tiles + static_cast<int32_t>(i) + 1, stats.tiles + face_steps, "cartoonize");
            }
        }
        if (small.defined()) r = at::upsample_bilinear2d(r, {H, W}, /*align_corners=*/false);
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
