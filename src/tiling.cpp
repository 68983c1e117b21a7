#include "tiling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "error.h"

namespace limn::core {

std::vector<TileSpan> plan_axis(int64_t size, int64_t tile, int64_t margin, int64_t align) {
    if (align < 1 || size < 1 || margin < 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "tiling: invalid axis size " + std::to_string(size) +
                                            ", margin " + std::to_string(margin) + " or alignment " +
                                            std::to_string(align));
    }
    std::vector<TileSpan> spans;
    if (size <= tile) {
        spans.push_back(TileSpan{0, size, std::vector<float>(static_cast<size_t>(size), 1.0f)});
        return spans;
    }
    const int64_t overlap = tile_overlap(margin, align);
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

    // Between tiles i - 1 and i, both have full context on [start_i + margin, end_{i-1} - margin):
    // tile i's weight rises over it from 0 while tile i - 1's falls to 0 (a cut when it is empty).
    const auto rise = [](int64_t g, int64_t a, int64_t b) {
        if (g < a) return 0.0;
        if (g >= b) return 1.0;
        return (g - a + 1.0) / (b - a + 1.0);
    };
    std::vector<double> total(static_cast<size_t>(size), 0.0);
    for (size_t i = 0; i < starts.size(); ++i) {
        TileSpan s{starts[i], tile, std::vector<float>(static_cast<size_t>(tile))};
        for (int64_t p = 0; p < tile; ++p) {
            const int64_t g = s.start + p;
            double w = 1.0;
            if (i > 0) w = std::min(w, rise(g, starts[i] + margin, starts[i - 1] + tile - margin));
            if (i + 1 < starts.size()) {
                w = std::min(w, 1.0 - rise(g, starts[i + 1] + margin, starts[i] + tile - margin));
            }
            s.weights[static_cast<size_t>(p)] = static_cast<float>(w);
            total[static_cast<size_t>(g)] += w;
        }
        spans.push_back(std::move(s));
    }
    // Where more than two tiles meet (starts closer than the step), normalise to a partition.
    for (TileSpan& s : spans) {
        for (int64_t p = 0; p < s.length; ++p) {
            const double t = total[static_cast<size_t>(s.start + p)];
            s.weights[static_cast<size_t>(p)] = static_cast<float>(s.weights[static_cast<size_t>(p)] / t);
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

}  // namespace limn::core
