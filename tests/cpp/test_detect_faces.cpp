// Face detection through the public API: thresholds, suppression and coordinate mapping on a
// fixture with fixed detections; RetinaFace (the published weights, exported at test time into
// $LIMN_DETECT_CASES by `python -m limn_models.detect_cases`) against the eager reference on real
// photos; and restore-faces finding its own faces.
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
using limn_test::status_of;

namespace {

limn::ModelOptions cpu() { return limn::ModelOptions().device("cpu").precision(LIMN_PRECISION_FP32); }

struct Rgb {
    int w = 0, h = 0;
    std::vector<uint8_t> px;
    limn_image view() { return limn_image{px.data(), w, h, static_cast<size_t>(w) * 3, LIMN_PIXEL_RGB8}; }
};

Rgb gray(int w, int h) { return Rgb{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3, 128)}; }

std::string cases_dir() {
    const char* d = std::getenv("LIMN_DETECT_CASES");
    if (!d || !*d) throw std::runtime_error("LIMN_DETECT_CASES is not set");
    return d;
}

struct Case {
    std::string name;
    Rgb photo;
    std::vector<float> faces;  // rows of 15: box, score, landmarks (the eager reference)
    size_t count() const { return faces.size() / 15; }
};

Case load_case(const std::string& name) {
    std::ifstream list(cases_dir() + "/cases.txt");
    std::string line;
    while (std::getline(list, line)) {
        std::istringstream s(line);
        Case c;
        size_t n = 0;
        s >> c.name >> c.photo.w >> c.photo.h >> n;
        if (c.name != name) continue;
        const std::vector<char> px = limn_test::read_file(cases_dir() + "/" + name + ".rgb");
        const std::vector<char> rows = limn_test::read_file(cases_dir() + "/" + name + ".faces.f32");
        REQUIRE(px.size() == static_cast<size_t>(c.photo.w) * c.photo.h * 3);
        REQUIRE(rows.size() == n * 15 * sizeof(float));
        c.photo.px.assign(px.begin(), px.end());
        c.faces.resize(n * 15);
        if (!rows.empty()) std::memcpy(c.faces.data(), rows.data(), rows.size());
        return c;
    }
    throw std::runtime_error("no detection case " + name);
}

float iou(const float* a, const float* b) {
    const float iw = std::min(a[2], b[2]) - std::max(a[0], b[0]);
    const float ih = std::min(a[3], b[3]) - std::max(a[1], b[1]);
    if (iw <= 0 || ih <= 0) return 0.0f;
    return iw * ih / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih);
}

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

TEST_CASE("RetinaFace in the library equals the eager reference on real photos, in both formats") {
  for (const std::string ext : {".pt", ".pt2"}) {
    CAPTURE(ext);
    const limn::Model det(cases_dir() + "/retinaface" + ext, cpu());
    CHECK(det.info().kind == LIMN_MODEL_KIND_FACE_DETECT);
    for (const char* name : {"astronaut", "astronaut_mirror", "coffee", "collage", "astronaut_x4"}) {
        CAPTURE(name);
        Case c = load_case(name);
        const std::vector<limn_face> f = det.detect_faces(c.photo.view(), limn::DetectFacesOptions().max_side(0));
        REQUIRE(f.size() == c.count());
        for (size_t i = 0; i < f.size(); ++i) {
            const float* ref = &c.faces[i * 15];
            for (int k = 0; k < 4; ++k) CHECK(std::fabs(f[i].box[k] - ref[k]) < 0.05f);
            CHECK(std::fabs(f[i].score - ref[4]) < 1e-4f);
            for (int k = 0; k < 10; ++k) CHECK(std::fabs(f[i].landmarks[k] - ref[5 + k]) < 0.05f);
        }
    }
    // The compiled detector's coarsest level needs 33 px: smaller photos are padded up to it.
    if (ext == ".pt2") CHECK(det.info().min_width == 33);
    Rgb small = gray(24, 20);
    CHECK(det.detect_faces(small.view(), limn::DetectFacesOptions().max_side(0)).empty());
  }
}

TEST_CASE("RetinaFace: one face on the portrait, landmarks in order, mirrored, none on coffee, four in a collage") {
    const limn::Model det(cases_dir() + "/retinaface.pt", cpu());
    Case astronaut = load_case("astronaut");
    const std::vector<limn_face> f = det.detect_faces(astronaut.photo.view());
    REQUIRE(f.size() == 1);
    const limn_face& a = f[0];
    const float* m = a.landmarks;  // left eye, right eye, nose, left mouth, right mouth
    CHECK(a.score >= 0.9f);
    CHECK(m[0] < m[2]);                                    // left eye left of the right eye
    CHECK(m[5] > std::max(m[1], m[3]));                    // nose below the eyes
    CHECK(m[5] < std::min(m[7], m[9]));                    // ... and above the mouth corners
    CHECK(m[6] < m[8]);                                    // mouth corners in order
    for (int k = 0; k < 5; ++k) {
        CHECK(m[2 * k] > a.box[0]);
        CHECK(m[2 * k] < a.box[2]);
        CHECK(m[2 * k + 1] > a.box[1]);
        CHECK(m[2 * k + 1] < a.box[3]);
    }

    Case mirror = load_case("astronaut_mirror");
    const std::vector<limn_face> g = det.detect_faces(mirror.photo.view());
    REQUIRE(g.size() == 1);
    const int swap[5] = {1, 0, 2, 4, 3};  // left and right trade places in a mirror
    for (int k = 0; k < 5; ++k) {
        CHECK(std::fabs(g[0].landmarks[2 * swap[k]] - (511.0f - m[2 * k])) < 4.0f);
        CHECK(std::fabs(g[0].landmarks[2 * swap[k] + 1] - m[2 * k + 1]) < 4.0f);
    }

    Case coffee = load_case("coffee");
    CHECK(det.detect_faces(coffee.photo.view()).empty());
    Case collage = load_case("collage");
    CHECK(det.detect_faces(collage.photo.view()).size() == 4);

    // 2048 x 2048 (4x): detected at the default working size (1024) and mapped back. The network
    // sees the face at twice the size, so the landmarks move a little (measured: up to 6% of the
    // face's width); at full size it would also find face parts (see the reference case).
    Case big = load_case("astronaut_x4");
    const std::vector<limn_face> b = det.detect_faces(big.photo.view());
    REQUIRE(b.size() == 1);
    const float scaled[4] = {a.box[0] * 4, a.box[1] * 4, a.box[2] * 4, a.box[3] * 4};
    CHECK(iou(b[0].box, scaled) > 0.85f);
    const float width = scaled[2] - scaled[0];
    for (int k = 0; k < 10; ++k) {
        CAPTURE(k);
        CHECK(std::fabs(b[0].landmarks[k] - ((m[k] + 0.5f) * 4 - 0.5f)) < 0.1f * width);
    }
}

TEST_CASE("restore faces finds its own faces with a detector, and reports the ones it skips") {
    const limn::Model det(cases_dir() + "/retinaface.pt", cpu());
    const limn::Model identity(fixture("identity_face.pt"), cpu());
    Case c = load_case("astronaut");
    Rgb out = c.photo;
    limn_image out_view = out.view();
    const limn_pipeline_stats st =
        identity.restore_faces(c.photo.view(), out_view, {}, limn::RestoreFacesOptions().detector(det));
    CHECK(st.faces_found == 1);
    CHECK(st.faces == 1);
    CHECK(st.faces_skipped == 0);
    // Far from the face nothing changed; on it the identity model gives back (nearly) the photo.
    for (int y : {5, 300, 500})
        for (int x : {5, 400, 500})
            for (int ch = 0; ch < 3; ++ch) CHECK(out.px[(y * 512 + x) * 3 + ch] == c.photo.px[(y * 512 + x) * 3 + ch]);
    CHECK(limn_test::psnr8(out.px, c.photo.px) > 35.0);

    const limn_pipeline_stats skipped = identity.restore_faces(
        c.photo.view(), out_view, {}, limn::RestoreFacesOptions().detector(det).min_face_size(2000.0f));
    CHECK(skipped.faces_found == 1);
    CHECK(skipped.faces == 0);
    CHECK(skipped.faces_skipped == 1);
    CHECK(out.px == c.photo.px);

    // A detector that is not one.
    CHECK(status_of([&] {
              identity.restore_faces(c.photo.view(), out_view, {}, limn::RestoreFacesOptions().detector(identity));
          }) == LIMN_ERR_WRONG_MODEL_KIND);
}
