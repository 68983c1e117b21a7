#include "align.h"

#include <cmath>
#include <string>

#include "error.h"

namespace limn::core {

double Similarity::scale() const { return std::hypot(a, b); }

Similarity Similarity::inverse() const {
    const double d = a * a + b * b;
    if (!(d > 0.0) || !std::isfinite(d)) fail(LIMN_ERR_INVALID_ARGUMENT, "a face transform has zero scale");
    Similarity r;
    r.a = a / d;
    r.b = -b / d;
    r.tx = -(r.a * tx - r.b * ty);
    r.ty = -(r.b * tx + r.a * ty);
    return r;
}

Similarity estimate_similarity(const float* src, const float* dst, int n) {
    double msx = 0, msy = 0, mdx = 0, mdy = 0;
    for (int i = 0; i < n; ++i) {
        if (!std::isfinite(src[2 * i]) || !std::isfinite(src[2 * i + 1])) {
            fail(LIMN_ERR_INVALID_ARGUMENT, "face landmark " + std::to_string(i) + " is not a finite number");
        }
        msx += src[2 * i];
        msy += src[2 * i + 1];
        mdx += dst[2 * i];
        mdy += dst[2 * i + 1];
    }
    msx /= n;
    msy /= n;
    mdx /= n;
    mdy /= n;
    double ss = 0, sa = 0, sb = 0;
    for (int i = 0; i < n; ++i) {
        const double x = src[2 * i] - msx, y = src[2 * i + 1] - msy;
        const double u = dst[2 * i] - mdx, v = dst[2 * i + 1] - mdy;
        ss += x * x + y * y;
        sa += x * u + y * v;
        sb += x * v - y * u;
    }
    if (!(ss > 1e-12)) fail(LIMN_ERR_INVALID_ARGUMENT, "face landmarks all coincide; a face needs distinct points");
    Similarity s;
    s.a = sa / ss;
    s.b = sb / ss;
    s.tx = mdx - (s.a * msx - s.b * msy);
    s.ty = mdy - (s.b * msx + s.a * msy);
    return s;
}

}  // namespace limn::core
