// The restore-faces pipeline through the public C++ wrapper, with synthetic photos and faces
// placed by known similarity transforms of the model's template.
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "fixtures.h"

using limn_test::cpu;

namespace {

// A smooth synthetic RGB8 photo (resampling it twice loses little).
struct Photo {
    int w, h;
    std::vector<uint8_t> px;
    limn_image img{};
    Photo(int w_, int h_) : w(w_), h(h_), px(static_cast<size_t>(w_) * h_ * 3) {
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c)
                    px[(y * w + x) * 3 + c] = static_cast<uint8_t>(
                        128.0 + 90.0 * std::sin(x / (9.0 + c)) * std::cos(y / (7.0 + 2 * c)));
        img = limn_image{px.data(), w, h, static_cast<size_t>(w) * 3, LIMN_PIXEL_RGB8};
    }
};

// The model's template, scaled by 1/scale, rotated by `angle` and centred at (cx, cy): a face
// whose aligned crop covers 64/scale photo pixels across.
limn_face face_at(const limn::Model& m, double cx, double cy, double size, double angle) {
    const limn_model_info info = m.info();
    const double k = size / info.fixed_width;
    limn_face f{};
    for (int i = 0; i < 5; ++i) {
        const double x = info.face_template[2 * i] - info.fixed_width / 2.0;
        const double y = info.face_template[2 * i + 1] - info.fixed_height / 2.0;
        f.landmarks[2 * i] = static_cast<float>(cx + k * (x * std::cos(angle) - y * std::sin(angle)));
        f.landmarks[2 * i + 1] = static_cast<float>(cy + k * (x * std::sin(angle) + y * std::cos(angle)));
    }
    f.score = 1.0f;
    return f;
}


// Pixels differing from `ref`, and whether all of them lie within `r` of (cx, cy).
bool changes_within(const std::vector<uint8_t>& out, const std::vector<uint8_t>& ref, int w, double cx, double cy,
                    double r, int* changed) {
    *changed = 0;
    bool inside = true;
    for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] == ref[i]) continue;
        ++*changed;
        const int p = static_cast<int>(i / 3);
        inside = inside && std::hypot(p % w - cx, p / w - cy) <= r;
    }
    return inside;
}


}  // namespace

TEST_CASE("restore faces: an identity model round-trips the face through warp and paste-back") {
    const limn::Model model(limn_test::fixture("identity_face.pt"), cpu());
    const Photo photo(200, 160);
    std::vector<uint8_t> out(photo.px.size());
    limn_image o{out.data(), 200, 160, 600, LIMN_PIXEL_RGB8};
    const auto st = model.restore_faces(photo.img, o, {face_at(model, 97.5, 81.0, 80.0, 0.35)});
    CHECK(st.faces == 1);
    int changed = 0;
    // The crop is an 80 px square around the centre: nothing beyond its corners changes.
    CHECK(changes_within(out, photo.px, 200, 97.5, 81.0, 80.0 * 0.7072 + 3, &changed));
    CHECK(changed > 0);
    const double db = limn_test::psnr8(out, photo.px);
    MESSAGE("identity face round trip: " << db << " dB");
    CHECK(db >= 35.0);
}

TEST_CASE("restore faces: strength 0, no faces and faces outside the photo leave it unchanged") {
    const limn::Model model(limn_test::fixture("tiny_face.pt"), cpu());
    const Photo photo(120, 90);
    std::vector<uint8_t> out(photo.px.size(), 1);
    limn_image o{out.data(), 120, 90, 360, LIMN_PIXEL_RGB8};

    model.restore_faces(photo.img, o, {face_at(model, 60, 45, 50, 0.0)}, limn::RestoreFacesOptions().strength(0.0f));
    CHECK(out == photo.px);
    std::fill(out.begin(), out.end(), 1);
    CHECK(model.restore_faces(photo.img, o, {}).faces == 0);
    CHECK(out == photo.px);
    std::fill(out.begin(), out.end(), 1);
    CHECK(model.restore_faces(photo.img, o, {face_at(model, 400, -300, 50, 0.0)}).faces == 0);
    CHECK(out == photo.px);
    // Under the minimum face size.
    CHECK(model.restore_faces(photo.img, o, {face_at(model, 60, 45, 12, 0.0)}).faces == 0);
    CHECK(model.restore_faces(photo.img, o, {face_at(model, 60, 45, 50, 0.0)},
                              limn::RestoreFacesOptions().min_face_size(60.0f))
              .faces == 0);
    CHECK(out == photo.px);
}

TEST_CASE("restore faces: several faces, faces across the border, in place; a compiled package alike") {
    const limn::Model model(limn_test::fixture("tiny_face.pt"), cpu());
    {
        // The same network as a compiled package restores the same faces (within a rounding step).
        const limn::Model compiled(limn_test::fixture("tiny_face.pt2"), cpu());
        Photo a(160, 120), b(160, 120);
        const std::vector<limn_face> faces = {face_at(model, 40, 40, 48, 0.1), face_at(model, 150, 110, 64, -0.5)};
        CHECK(model.restore_faces(a.img, a.img, faces).faces == 2);
        CHECK(compiled.restore_faces(b.img, b.img, faces).faces == 2);
        int worst = 0;
        for (size_t i = 0; i < a.px.size(); ++i) worst = std::max(worst, std::abs(int(a.px[i]) - int(b.px[i])));
        CHECK(worst <= 1);
    }
    Photo photo(160, 120);
    const std::vector<uint8_t> before = photo.px;
    const std::vector<limn_face> faces = {face_at(model, 40, 40, 48, 0.1), face_at(model, 150, 110, 64, -0.5)};
    const auto st = model.restore_faces(photo.img, photo.img, faces);
    CHECK(st.faces == 2);
    int changed = 0;
    changes_within(photo.px, before, 160, 0, 0, 1e9, &changed);
    CHECK(changed > 500);
    // Far from both faces nothing moved.
    for (int y = 80; y < 90; ++y)
        for (int x = 0; x < 20; ++x)
            for (int c = 0; c < 3; ++c) REQUIRE(photo.px[(y * 160 + x) * 3 + c] == before[(y * 160 + x) * 3 + c]);
}

TEST_CASE("restore faces: progress per face, cancellation, bad input") {
    const limn::Model model(limn_test::fixture("tiny_face.pt"), cpu());
    const Photo photo(100, 100);
    std::vector<uint8_t> out(photo.px.size(), 7);
    limn_image o{out.data(), 100, 100, 300, LIMN_PIXEL_RGB8};
    const std::vector<limn_face> faces(3, face_at(model, 50, 50, 40, 0.0));
    std::vector<int> seen;
    model.restore_faces(photo.img, o, faces, limn::RestoreFacesOptions().progress([&](int32_t d, int32_t t) {
        CHECK(t == 3);
        seen.push_back(d);
        return true;
    }));
    CHECK(seen == std::vector<int>{0, 1, 2, 3});
    std::fill(out.begin(), out.end(), 7);
    CHECK(limn_test::status_of([&] {
              model.restore_faces(photo.img, o, faces,
                                  limn::RestoreFacesOptions().progress([](int32_t d, int32_t) { return d < 1; }));
          }) == LIMN_ERR_CANCELLED);
    CHECK(out == std::vector<uint8_t>(out.size(), 7));

    limn_face bad = faces[0];
    bad.landmarks[3] = NAN;
    CHECK(limn_test::status_of([&] { model.restore_faces(photo.img, o, {faces[0], bad}); }) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(std::string(limn_last_error()).find("face 1") != std::string::npos);
    CHECK(limn_test::status_of([&] { model.restore_faces(photo.img, o, faces, limn::RestoreFacesOptions().feather(0.9f)); }) ==
          LIMN_ERR_INVALID_ARGUMENT);
    CHECK(limn_restore_faces(model.get(), &photo.img, &o, nullptr, 2, nullptr, nullptr) == LIMN_ERR_INVALID_ARGUMENT);

    const limn::Model cartoon(limn_test::fixture("tiny_unet.pt"), cpu());
    CHECK(limn_test::status_of([&] { cartoon.restore_faces(photo.img, o, faces); }) == LIMN_ERR_WRONG_MODEL_KIND);
}

TEST_CASE("restore faces: the crop is aligned to the template (marks land on the landmarks)") {
    // The model paints white squares on its template points; after paste-back they must sit on
    // the landmarks given, for a rotated, scaled face.
    const limn::Model model(limn_test::fixture("template_marks.pt"), cpu());
    std::vector<uint8_t> black(240 * 200 * 3, 0), out(black.size());
    limn_image in{black.data(), 240, 200, 720, LIMN_PIXEL_RGB8};
    limn_image o{out.data(), 240, 200, 720, LIMN_PIXEL_RGB8};
    const limn_face face = face_at(model, 120, 95, 128, -0.6);  // crop twice the model size
    model.restore_faces(in, o, {face}, limn::RestoreFacesOptions().feather(0.0f));
    for (int i = 0; i < 5; ++i) {
        CAPTURE(i);
        const int x = static_cast<int>(std::lround(face.landmarks[2 * i]));
        const int y = static_cast<int>(std::lround(face.landmarks[2 * i + 1]));
        CHECK(out[(y * 240 + x) * 3] >= 200);
        // Away from every landmark (12 px, beyond the 2x-scaled square) the photo stays dark.
        CHECK(out[((y + 12) * 240 + x) * 3] < 40);
    }
}
