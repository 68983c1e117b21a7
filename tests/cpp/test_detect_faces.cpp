// Face detection through the public API: thresholds, suppression and coordinate mapping on a
// fixture with fixed detections, and bad input. RetinaFace on real photos: test_retinaface.cpp.
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fixtures.h"

using limn_test::fixture;
using limn_test::gray;
using limn_test::Rgb;
using limn_test::status_of;

using limn_test::cpu;

namespace {

// The fixed candidates of tiny_detect.pt, as fractions of its input (see fixtures.py).
constexpr float kA[4] = {0.10f, 0.10f, 0.40f, 0.40f}, kB[4] = {0.16f, 0.12f, 0.46f, 0.42f},
                kC[4] = {0.55f, 0.50f, 0.80f, 0.75f}, kD[4] = {0.70f, 0.05f, 0.90f, 0.25f};

void check_box(const limn_face& f, const float* frac, int w, int h, float tol) {
    CHECK(std::fabs(f.box[0] - frac[0] * w) <= tol);
    CHECK(std::fabs(f.box[1] - frac[1] * h) <= tol);
    CHECK(std::fabs(f.box[2] - frac[2] * w) <= tol);
    CHECK(std::fabs(f.box[3] - frac[3] * h) <= tol);
}

}  // namespace

TEST_CASE("detect faces: threshold, suppression, maximum and buffer size on fixed detections") {
  for (const std::string ext : {".pt", ".pt2"}) {
    CAPTURE(ext);
    const limn::Model det(fixture("tiny_detect" + ext), cpu());
    Rgb photo = gray(256, 128);  // a multiple of the fixture's 32: no padding
    const auto full = limn::DetectFacesOptions().max_side(0);

    std::vector<limn_face> f = det.detect_faces(photo.view(), full);
    REQUIRE(f.size() == 2);  // B overlaps A (IoU 0.6 > 0.4), D scores 0.5 < 0.9
    check_box(f[0], kA, 256, 128, 1e-3f);
    check_box(f[1], kC, 256, 128, 1e-3f);
    CHECK(f[0].score == doctest::Approx(0.95));
    CHECK(f[1].score == doctest::Approx(0.91));
    CHECK(f[0].landmarks[0] == doctest::Approx((0.10 + 0.3 * 0.3) * 256).epsilon(1e-5));

    f = det.detect_faces(photo.view(), limn::DetectFacesOptions(full).score_threshold(0.4f));
    REQUIRE(f.size() == 3);
    check_box(f[2], kD, 256, 128, 1e-3f);
    f = det.detect_faces(photo.view(), limn::DetectFacesOptions(full).nms_iou(0.7f));
    REQUIRE(f.size() == 3);
    check_box(f[1], kB, 256, 128, 1e-3f);
    f = det.detect_faces(photo.view(), limn::DetectFacesOptions(full).max_faces(1));
    REQUIRE(f.size() == 1);
    check_box(f[0], kA, 256, 128, 1e-3f);

    // A buffer too small: the best faces that fit, and the number found.
    limn_face one[1];
    size_t count = 0;
    limn_image view = photo.view();
    REQUIRE(limn_detect_faces(det.get(), &view, full.get(), one, 1, &count) == LIMN_OK);
    CHECK(count == 2);
    CHECK(one[0].score == doctest::Approx(0.95));
    REQUIRE(limn_detect_faces(det.get(), &view, full.get(), nullptr, 0, &count) == LIMN_OK);
    CHECK(count == 2);

    // Working resolution: detected on 64 x 32, mapped back to the photo (x4). The fixture places
    // its boxes as fractions of the input it sees, which a package's smallest input (64x64 here)
    // pads to; a real detector's pixel positions do not move with padding.
    f = det.detect_faces(photo.view(), limn::DetectFacesOptions().max_side(64));
    REQUIRE(f.size() == 2);
    const int seen_h = std::max(32, det.info().min_height);
    check_box(f[0], kA, 256, seen_h * 4, 1e-3f);
    CHECK(std::fabs(f[0].landmarks[0] - (0.10f + 0.3f * 0.3f) * 256) <= 2.0f);

    // A photo smaller than the size rule (and a package's smallest input) is padded with black.
    Rgb tiny = gray(20, 10);
    f = det.detect_faces(tiny.view(), full);
    REQUIRE(f.size() == 2);
    const int pw = (std::max(20, det.info().min_width) + 31) / 32 * 32;
    const int ph = (std::max(10, det.info().min_height) + 31) / 32 * 32;
    MESSAGE("tiny_detect" << ext << " takes at least " << det.info().min_width << "x" << det.info().min_height);
    check_box(f[0], kA, pw, ph, 1e-3f);
  }
}

TEST_CASE("detect faces: bad input gets clear statuses") {
    const limn::Model det(fixture("tiny_detect.pt"), cpu());
    Rgb photo = gray(64, 64);
    const limn_image view = photo.view();
    const auto detect = [&](const limn::DetectFacesOptions& o) {
        return status_of([&] { det.detect_faces(view, o); });
    };
    CHECK(detect(limn::DetectFacesOptions().score_threshold(1.5f)) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(detect(limn::DetectFacesOptions().score_threshold(-0.1f)) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(detect(limn::DetectFacesOptions().score_threshold(std::nanf(""))) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(detect(limn::DetectFacesOptions().nms_iou(0.0f)) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(detect(limn::DetectFacesOptions().nms_iou(1.5f)) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(detect(limn::DetectFacesOptions().max_faces(-1)) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(detect(limn::DetectFacesOptions().max_side(8)) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(std::string(limn_last_error()).find("max_side") != std::string::npos);

    size_t count = 0;
    limn_face faces[4];
    limn_image empty = view;
    empty.width = 0;
    CHECK(limn_detect_faces(det.get(), &empty, nullptr, faces, 4, &count) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(limn_detect_faces(det.get(), &view, nullptr, faces, 4, nullptr) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(limn_detect_faces(det.get(), &view, nullptr, nullptr, 4, &count) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(limn_detect_faces(nullptr, &view, nullptr, faces, 4, &count) == LIMN_ERR_INVALID_ARGUMENT);

    // Not a detector.
    const limn::Model cartoon(fixture("identity.pt"), cpu());
    CHECK(status_of([&] { cartoon.detect_faces(view); }) == LIMN_ERR_WRONG_MODEL_KIND);
    CHECK(std::string(limn_last_error()).find("face_detect") != std::string::npos);
}
