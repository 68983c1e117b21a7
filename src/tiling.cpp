#include "tiling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "error.h"

namespace limn {

std::vector<TileSpan> plan_axis(int64_t size, int64_t tile, int64_t overlap, int64_t align) {
    if (align < 1 || size < 1) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "tiling: invalid axis size " + std::to_string(size) +
                                            " or alignment " + std::to_string(align));
    }
    std::vector<TileSpan> spans;
    if (size <= tile) {
        spans.push_back(TileSpan{0, size, std::vector<float>(static_cast<size_t>(size), 1.0f)});
        return spans;
    }
    if (tile % align != 0 || tile <= overlap + align) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "tile side " + std::to_string(tile) +
                                            " must be a multiple of " + std::to_string(align) +
                                            " larger than the overlap " + std::to_string(overlap) +
                                            " plus " + std::to_string(align));
    }
    // Evenly spread starts, rounded down to the alignment; the step is kept `align` short of
    // tile - overlap so rounding never shrinks an overlap below `overlap`.
    const int64_t step = tile - overlap - align;
    const int64_t count = 1 + (size - tile + step - 1) / step;
    std::vector<int64_t> starts;
    for (int64_t i = 0; i < count; ++i) {
        const int64_t ideal = count == 1 ? 0 : (i * (size - tile)) / (count - 1);
        starts.push_back(std::min((ideal / align) * align, size - tile));
    }
    starts.back() = size - tile;  // the last tile ends at the edge (size may not be aligned)
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());

    std::vector<double> total(static_cast<size_t>(size), 0.0);
    for (size_t i = 0; i < starts.size(); ++i) {
        TileSpan s{starts[i], tile, std::vector<float>(static_cast<size_t>(tile))};
        const bool ramp_lo = i > 0, ramp_hi = i + 1 < starts.size();
        const int64_t ramp = std::max<int64_t>(1, i > 0 ? starts[i - 1] + tile - starts[i] : overlap);
        const int64_t ramp_next = ramp_hi ? std::max<int64_t>(1, s.start + tile - starts[i + 1]) : 1;
        for (int64_t p = 0; p < tile; ++p) {
            double w = 1.0;
            if (ramp_lo) w = std::min(w, (p + 1.0) / (ramp + 1.0));
            if (ramp_hi) w = std::min(w, (tile - p) / (ramp_next + 1.0));
            s.weights[static_cast<size_t>(p)] = static_cast<float>(w);
            total[static_cast<size_t>(s.start + p)] += w;
        }
        spans.push_back(std::move(s));
    }
    for (TileSpan& s : spans) {
        for (int64_t p = 0; p < s.length; ++p) {
            s.weights[static_cast<size_t>(p)] =
                static_cast<float>(s.weights[static_cast<size_t>(p)] / total[static_cast<size_t>(s.start + p)]);
        }
    }
    return spans;
}

int64_t tile_side_for_budget(double budget, const MemoryProfile& profile, int64_t align, int64_t min_side) {
    const int64_t floor_side = ((std::max<int64_t>(min_side, align) + align - 1) / align) * align;
    if (profile.bytes_per_pixel <= 0.0) return floor_side;
    const double pixels = (budget - profile.fixed_bytes) / profile.bytes_per_pixel;
    if (!(pixels > 0.0)) return floor_side;
    const double side = std::floor(std::sqrt(pixels));
    if (side >= 1e9) return (static_cast<int64_t>(1e9) / align) * align;
    return std::max(floor_side, (static_cast<int64_t>(side) / align) * align);
}

}  // namespace limn
