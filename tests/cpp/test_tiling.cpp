// Tiling geometry: coverage, overlap, alignment and weights that sum to one.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "error.h"
#include "memory.h"
#include "tiling.h"

using limn::core::plan_axis;

TEST_CASE("an axis that fits one tile is one span with unit weights") {
    const auto spans = plan_axis(37, 64, 16, 4);
    REQUIRE(spans.size() == 1);
    CHECK(spans[0].start == 0);
    CHECK(spans[0].length == 37);
    for (float w : spans[0].weights) CHECK(w == 1.0f);
}

TEST_CASE("spans cover the axis, overlap enough, stay aligned and their weights sum to one") {
    for (int64_t size : {65, 100, 128, 257, 1000, 4096}) {
        for (int64_t tile : {48, 64, 96, 256}) {
            for (int64_t margin : {0, 3, 8}) {
                for (int64_t align : {1, 4, 8}) {
                    const int64_t overlap = (2 * margin + align - 1) / align * align;
                    if (tile % align != 0 || tile <= overlap + align || size % align != 0) continue;
                    CAPTURE(size);
                    CAPTURE(tile);
                    CAPTURE(margin);
                    CAPTURE(align);
                    const auto spans = plan_axis(size, tile, margin, align);
                    std::vector<double> sum(static_cast<size_t>(size), 0.0);
                    int64_t covered_to = 0;
                    for (size_t i = 0; i < spans.size(); ++i) {
                        const auto& s = spans[i];
                        CHECK(s.start % align == 0);
                        CHECK(s.length == std::min(tile, size));
                        CHECK(s.start + s.length <= size);
                        CHECK(s.start <= covered_to);  // no gap
                        if (i > 0) CHECK(spans[i - 1].start + tile - s.start >= overlap);
                        covered_to = s.start + s.length;
                        for (int64_t p = 0; p < s.length; ++p) {
                            CHECK(s.weights[p] >= 0.0f);
                            // Exactness: weight only where the tile has `margin` px of context
                            // on its interior sides.
                            if (s.weights[p] > 0.0f) {
                                if (i > 0) CHECK(p >= margin);
                                if (i + 1 < spans.size()) CHECK(s.length - 1 - p >= margin);
                            }
                            sum[s.start + p] += s.weights[p];
                        }
                    }
                    CHECK(covered_to == size);
                    for (double v : sum) REQUIRE(std::fabs(v - 1.0) < 1e-5);
                }
            }
        }
    }
}

TEST_CASE("weights: full at the image border, none within the margin of an interior edge, ramps between") {
    const auto spans = plan_axis(200, 96, 8, 4);  // overlap 16
    REQUIRE(spans.size() >= 2);
    const auto& first = spans.front();
    CHECK(first.weights.front() == doctest::Approx(1.0));  // image border: full weight
    for (int p = 0; p < 8; ++p) CHECK(first.weights[first.weights.size() - 1 - p] == 0.0f);
    const auto& last = spans.back();
    for (int p = 0; p < 8; ++p) CHECK(last.weights[p] == 0.0f);
    CHECK(last.weights.back() == doctest::Approx(1.0));
    // Where two tiles overlap by more than twice the margin, the hand-over is a ramp.
    int ramp = 0;
    for (float w : first.weights) ramp += (w > 0.0f && w < 1.0f) ? 1 : 0;
    CHECK(ramp > 0);
    // With no margin the ramp spans the whole overlap, as a plain feather.
    const auto feather = plan_axis(200, 96, 0, 4);
    CHECK(feather.front().weights.back() > 0.0f);
    CHECK(feather.front().weights.back() < 0.1f);
}

TEST_CASE("a tile no larger than its overlap is refused") {
    CHECK_THROWS_AS(plan_axis(500, 64, 32, 4), limn::core::Failure);  // overlap 64
    CHECK_THROWS_AS(plan_axis(500, 66, 8, 4), limn::core::Failure);   // not a multiple of the alignment
}

TEST_CASE("tile side for a memory budget") {
    const limn::core::MemoryProfile p{1e6, 100.0};
    // (budget - fixed) / bpp = 1e6 px -> side 1000, aligned to 8 -> 1000.
    CHECK(limn::core::tile_side_for_budget(101e6, p, 8, 64) == 1000);
    CHECK(limn::core::tile_side_for_budget(101e6, p, 64, 64) == 960);
    CHECK(limn::core::tile_side_for_budget(1e5, p, 4, 128) == 128);  // nothing fits: the minimum
    CHECK(limn::core::tile_side_for_budget(1e9, limn::core::MemoryProfile{0, 0}, 4, 30) == 32);
}

TEST_CASE("CUDA memory planning counts the cap against reserved bytes, with headroom") {
    using limn::core::plannable_bytes;
    constexpr uint64_t MiB = 1ull << 20;
    // No cap: free device memory plus half the unused cached blocks, less a fifth.
    CHECK(plannable_bytes(0, 1000 * MiB, 400 * MiB, 200 * MiB) == (1000 + 100) * MiB / 5 * 4);
    // A 1 GiB cap with 900 MiB reserved but only 100 MiB allocated: the allocator may grow by
    // 124 MiB, and half of its 800 MiB of unused blocks is reusable; planning against allocated
    // bytes would have promised 924 MiB.
    CHECK(plannable_bytes(1024 * MiB, 80000 * MiB, 900 * MiB, 100 * MiB) == (124 + 400) * MiB / 5 * 4);
    // Reserved at or over the cap: only the reusable cached blocks.
    CHECK(plannable_bytes(512 * MiB, 80000 * MiB, 600 * MiB, 600 * MiB) == 0);
    // The cap never promises more than the device has free.
    CHECK(plannable_bytes(64000 * MiB, 100 * MiB, 0, 0) == 100 * MiB / 5 * 4);
}
