// Similarity transforms from landmarks.
#include <doctest/doctest.h>

#include <cmath>

#include "align.h"
#include "error.h"

TEST_CASE("landmarks mapped by a known similarity recover it, and its inverse") {
    const float src[10] = {101.5f, 120.0f, 160.0f, 118.0f, 131.0f, 150.0f, 110.0f, 182.0f, 155.0f, 181.0f};
    for (double angle : {0.0, 0.3, -1.2, 3.0}) {
        for (double scale : {0.25, 1.0, 3.7}) {
            limn::core::Similarity t;
            t.a = scale * std::cos(angle);
            t.b = scale * std::sin(angle);
            t.tx = 17.25;
            t.ty = -40.5;
            float dst[10];
            for (int i = 0; i < 5; ++i) {
                double x, y;
                t.apply(src[2 * i], src[2 * i + 1], x, y);
                dst[2 * i] = static_cast<float>(x);
                dst[2 * i + 1] = static_cast<float>(y);
            }
            const limn::core::Similarity e = limn::core::estimate_similarity(src, dst, 5);
            CHECK(e.a == doctest::Approx(t.a).epsilon(1e-5));
            CHECK(e.b == doctest::Approx(t.b).epsilon(1e-5));
            CHECK(e.tx == doctest::Approx(t.tx).epsilon(1e-4));
            CHECK(e.ty == doctest::Approx(t.ty).epsilon(1e-4));
            CHECK(e.scale() == doctest::Approx(scale).epsilon(1e-5));
            const limn::core::Similarity inv = e.inverse();
            double x, y, bx, by;
            e.apply(3.0, 4.0, x, y);
            inv.apply(x, y, bx, by);
            CHECK(bx == doctest::Approx(3.0));
            CHECK(by == doctest::Approx(4.0));
        }
    }
}

TEST_CASE("noisy landmarks give the least-squares fit; degenerate ones are refused") {
    // Two points mirrored around the centroid: the fit is exact for any pair, so add noise to a
    // five-point set and check the residual is no worse than the identity's.
    const float src[10] = {0, 0, 10, 0, 5, 5, 0, 10, 10, 10};
    const float dst[10] = {0.1f, -0.1f, 10.2f, 0.0f, 4.9f, 5.1f, -0.1f, 10.0f, 10.0f, 9.9f};
    const limn::core::Similarity e = limn::core::estimate_similarity(src, dst, 5);
    CHECK(e.scale() == doctest::Approx(1.0).epsilon(0.02));
    const float same[10] = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
    CHECK_THROWS_AS(limn::core::estimate_similarity(same, dst, 5), limn::core::Failure);
    const float bad[10] = {0, 0, NAN, 0, 5, 5, 0, 10, 10, 10};
    CHECK_THROWS_AS(limn::core::estimate_similarity(bad, dst, 5), limn::core::Failure);
}
