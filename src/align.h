// Face alignment geometry: least-squares similarity transforms between landmark sets.
// Coordinates put pixel centres at integers (OpenCV's convention). No LibTorch here.
#pragma once

namespace limn::core {

// p -> (a*x - b*y + tx, b*x + a*y + ty): rotation, uniform scale and translation.
struct Similarity {
    double a = 1.0, b = 0.0, tx = 0.0, ty = 0.0;

    void apply(double x, double y, double& ox, double& oy) const {
        ox = a * x - b * y + tx;
        oy = b * x + a * y + ty;
    }
    double scale() const;
    Similarity inverse() const;  // throws Failure(LIMN_ERR_INVALID_ARGUMENT) for a zero scale
};

// The similarity that maps src[i] closest to dst[i] in least squares (no reflection); points are
// n (x, y) pairs. Throws Failure(LIMN_ERR_INVALID_ARGUMENT) for non-finite or coincident points.
Similarity estimate_similarity(const float* src, const float* dst, int n);

}  // namespace limn::core
