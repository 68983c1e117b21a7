// Tiled inference geometry: where tiles go along an axis, how their outputs are feathered
// together, and how large a tile may be for a memory budget. No LibTorch here.
#pragma once

#include <cstdint>
#include <vector>

namespace limn::core {

// One tile along one axis: the network sees [start, start + length) of the (padded) axis.
struct TileSpan {
    int64_t start = 0;
    int64_t length = 0;
    // Blend weight of this tile for each of its positions; across all spans of an axis the
    // weights at every position sum to 1. A position gets weight only where the tile has the
    // network's full context around it (`margin` pixels, or the picture's border), so a network
    // whose receptive field fits the margin gives the one-pass result to float rounding; where two
    // tiles both have it, the weight ramps linearly from one to the other.
    std::vector<float> weights;
};

// `v` rounded up to a multiple of `m` (the size rules of networks).
inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// How much neighbouring tiles overlap for a network that needs `margin` pixels of context on each
// side: twice the margin, rounded up to `align`.
inline int64_t tile_overlap(int64_t margin, int64_t align) { return round_up(2 * margin, align); }

// Spans of `tile` (a multiple of `align`) covering [0, size), neighbours overlapping by at least
// tile_overlap(margin, align), starts on multiples of `align`. size <= tile gives one
// span of length `size`. Throws Failure(LIMN_ERR_INVALID_ARGUMENT) if the tile is not larger than
// that overlap plus `align`, or align < 1.
std::vector<TileSpan> plan_axis(int64_t size, int64_t tile, int64_t margin, int64_t align);

// What running the network costs, measured on the device: peak bytes ~= fixed + per_pixel * pixels.
struct MemoryProfile {
    double fixed_bytes = 0.0;
    double bytes_per_pixel = 0.0;
};

// The largest square tile side (a multiple of `align`, at least `min_side`) whose measured cost
// fits in `budget` bytes; `min_side` when nothing fits.
int64_t tile_side_for_budget(double budget, const MemoryProfile& profile, int64_t align, int64_t min_side);

}  // namespace limn::core
