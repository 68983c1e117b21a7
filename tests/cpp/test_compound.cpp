// DCT-Net's compound stylization through the public C++ wrapper, with tiny fixtures: a whole-photo
// cartoon model (tiny_unet.pt), a head model (tiny_head.pt: role "head", 64 px crops on GPEN's
// template) and a detector with fixed detections (tiny_detect.pt). The eager reference comparison
// is in tests/package (test_compound_cartoonize_matches_the_eager_reference).
#include <doctest/doctest.h>
#include <limn/limn.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "fixtures.h"

using limn_test::fixture;
using limn_test::status_of;

using limn_test::cpu;

namespace {

// A face whose 5 landmarks are the head template (at 64 px) scaled by `k` and moved to (x, y).
limn_face face_at(const limn::Model& head, float k, float x, float y) {
    limn_face f{};
    const limn_model_info i = head.info();
    for (int p = 0; p < 5; ++p) {
        f.landmarks[2 * p] = i.face_template[2 * p] * k + x;
        f.landmarks[2 * p + 1] = i.face_template[2 * p + 1] * k + y;
    }
    return f;
}

struct Photo {
    int w, h;
    std::vector<uint8_t> px;
    limn_image view() { return limn_image{px.data(), w, h, static_cast<size_t>(w) * 3, LIMN_PIXEL_RGB8}; }
};

Photo photo(int w, int h, unsigned seed) { return Photo{w, h, limn_test::pattern(size_t(w) * h * 3, seed)}; }

}  // namespace

TEST_CASE("compound cartoonize: faces are stylized by the head model; far from them, the background result") {
    const limn::Model bg(fixture("tiny_unet.pt"), cpu());
    const limn::Model head(fixture("tiny_head.pt"), cpu());
    Photo in = photo(240, 160, 3), plain = in, both = in;
    limn_image p = plain.view(), b = both.view();
    bg.cartoonize(in.view(), p);
    // One face inside (its crop covers about x 20..148, y 10..138), one partly outside the photo.
    const std::vector<limn_face> faces{face_at(head, 2.0f, 20.0f, 10.0f), face_at(head, 1.0f, 200.0f, -20.0f)};
    int steps = 0, total = 0;
    const limn_pipeline_stats st = bg.cartoonize(
        in.view(), b, limn::CartoonizeOptions().head_model(head).faces(faces).progress([&](int32_t d, int32_t t) {
            steps = d;
            total = t;
            return true;
        }));
    CHECK(st.faces_found == 2);
    CHECK(st.faces == 2);
    CHECK(st.faces_skipped == 0);
    CHECK(total == st.tiles + 2);
    CHECK(steps == total);
    CHECK(st.width == 240);  // under the working size: full size
    // Far from both faces the pixels are the background-only result, exactly.
    for (int y : {150, 155})
        for (int x : {5, 100, 170})
            for (int c = 0; c < 3; ++c) CHECK(both.px[(y * 240 + x) * 3 + c] == plain.px[(y * 240 + x) * 3 + c]);
    // On the faces the head model's output shows.
    int changed = 0;
    for (int y = 40; y < 110; ++y)
        for (int x = 50; x < 120; ++x) changed += both.px[(y * 240 + x) * 3] != plain.px[(y * 240 + x) * 3];
    CHECK(changed > 70 * 70 / 2);
    changed = 0;
    for (int y = 0; y < 20; ++y)
        for (int x = 215; x < 240; ++x) changed += both.px[(y * 240 + x) * 3] != plain.px[(y * 240 + x) * 3];
    CHECK(changed > 0);
}

TEST_CASE("compound cartoonize: no face found, faces outside, a detector, the working size") {
    const limn::Model bg(fixture("tiny_unet.pt"), cpu());
    const limn::Model head(fixture("tiny_head.pt"), cpu());
    const limn::Model det(fixture("tiny_detect.pt"), cpu());
    Photo in = photo(256, 128, 5), plain = in, out = in;
    limn_image p = plain.view(), o = out.view();
    bg.cartoonize(in.view(), p);
    // The detector finds nothing at this threshold: the background-only result.
    limn_pipeline_stats st = bg.cartoonize(
        in.view(), o, limn::CartoonizeOptions().head_model(head).detector(det, limn::DetectFacesOptions().score_threshold(0.99f)));
    CHECK(st.faces_found == 0);
    CHECK(out.px == plain.px);
    // A face entirely outside the photo is skipped.
    st = bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(head).faces({face_at(head, 1.0f, 400.0f, 300.0f)}));
    CHECK(st.faces_skipped == 1);
    CHECK(st.faces == 0);
    CHECK(out.px == plain.px);
    // The detector's two faces (its fixed detections A and C survive suppression).
    st = bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(head).detector(det));
    CHECK(st.faces_found == 2);
    CHECK(st.faces == 2);
    CHECK(out.px != plain.px);
    // Working size: the shorter side to 64, then back to the photo's size.
    st = bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(head).detector(det).working_size(64));
    CHECK(st.height == 64);
    CHECK(st.width == 128);
    CHECK(out.w == 256);
}

TEST_CASE("compound cartoonize: strength and alpha as in cartoonize") {
    const limn::Model bg(fixture("tiny_unet.pt"), cpu());
    const limn::Model head(fixture("tiny_head.pt"), cpu());
    const int w = 120, h = 96;
    std::vector<uint8_t> in = limn_test::pattern(size_t(w) * h * 4, 9), out(in.size());
    limn_image a{in.data(), w, h, size_t(w) * 4, LIMN_PIXEL_RGBA8}, o{out.data(), w, h, size_t(w) * 4, LIMN_PIXEL_RGBA8};
    const auto options = [&] { return limn::CartoonizeOptions().head_model(head).faces({face_at(head, 1.2f, 10.0f, 5.0f)}); };
    bg.cartoonize(a, o, options());
    for (size_t i = 3; i < in.size(); i += 4) CHECK(out[i] == in[i]);  // alpha passes through
    bg.cartoonize(a, o, options().strength(0.0f));
    CHECK(out == in);
}

TEST_CASE("compound cartoonize: a head model without faces or detector, or of the wrong role, is refused") {
    const limn::Model bg(fixture("tiny_unet.pt"), cpu());
    const limn::Model head(fixture("tiny_head.pt"), cpu());
    const limn::Model plain(fixture("tiny_unet.pt"), cpu());
    const limn::Model det(fixture("tiny_detect.pt"), cpu());
    Photo in = photo(64, 64, 1), out = in;
    limn_image o = out.view();
    CHECK(status_of([&] { bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(head)); }) ==
          LIMN_ERR_INVALID_ARGUMENT);
    CHECK(std::string(limn_last_error()).find("needs the faces") != std::string::npos);
    CHECK(status_of([&] { bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(plain).detector(det)); }) ==
          LIMN_ERR_WRONG_MODEL_KIND);
    CHECK(std::string(limn_last_error()).find("role 'head'") != std::string::npos);
    CHECK(status_of([&] { bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(det).detector(det)); }) ==
          LIMN_ERR_WRONG_MODEL_KIND);
    CHECK(status_of([&] { bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(head).detector(head)); }) ==
          LIMN_ERR_WRONG_MODEL_KIND);
    CHECK(status_of([&] {
              bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(head).detector(det).working_size(-1));
          }) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(status_of([&] {
              bg.cartoonize(in.view(), o, limn::CartoonizeOptions().head_model(head).detector(det).feather(0.7f));
          }) == LIMN_ERR_INVALID_ARGUMENT);
    CHECK(out.px == in.px);  // nothing written on failure
}
