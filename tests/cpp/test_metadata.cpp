// Metadata validation (white-box: src/metadata.h).
#include <doctest/doctest.h>

#include "error.h"
#include "metadata.h"

using limn::core::MetaValue;
using limn::core::RawMetadata;

static RawMetadata valid_cartoon() {
    RawMetadata r;
    r["limn_format_version"] = int64_t{1};
    r["limn_kind"] = std::string("cartoon");
    r["limn_name"] = std::string("test");
    r["limn_size_multiple"] = int64_t{8};
    r["limn_fixed_height"] = int64_t{0};
    r["limn_fixed_width"] = int64_t{0};
    r["limn_tile_margin"] = int64_t{16};
    r["limn_face_template"] = std::vector<double>{};
    r["limn_source"] = std::string("here");
    r["limn_license"] = std::string("CC0");
    return r;
}

static std::string error_of(const RawMetadata& r) {
    try {
        limn::core::parse_metadata(r, "m.pt");
        return "";
    } catch (const limn::core::Failure& e) {
        CHECK(e.status() == LIMN_ERR_INVALID_MODEL);
        CHECK(std::string(e.what()).rfind("model 'm.pt'", 0) == 0);
        return e.what();
    }
}

TEST_CASE("valid metadata parses") {
    const auto m = limn::core::parse_metadata(valid_cartoon(), "m.pt");
    CHECK(m.kind == LIMN_MODEL_KIND_CARTOON);
    CHECK(m.name == "test");
    CHECK(m.size_multiple == 8);
    CHECK(m.tile_margin == 16);
    CHECK(m.face_template.empty());
    CHECK(m.source == "here");
    CHECK_FALSE(m.has_selftest);
    CHECK(limn::core::size_rule_text(m) == "width and height multiples of 8");
}

TEST_CASE("face_restore needs a template and a fixed size") {
    auto r = valid_cartoon();
    r["limn_kind"] = std::string("face_restore");
    CHECK(error_of(r).find("limn_face_template") != std::string::npos);
    r["limn_face_template"] = std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(error_of(r).find("fixed size") != std::string::npos);
    r["limn_fixed_height"] = int64_t{512};
    r["limn_fixed_width"] = int64_t{512};
    const auto m = limn::core::parse_metadata(r, "m.pt");
    CHECK(m.face_template.size() == 10);
    CHECK(m.face_template[9] == 10.0f);
    CHECK(limn::core::size_rule_text(m) == "exactly 512x512");
}

TEST_CASE("each broken field is named") {
    struct Case {
        const char* key;
        MetaValue value;
        const char* expect;
    };
    const Case cases[] = {
        {"limn_format_version", int64_t{2}, "format version 2"},
        {"limn_format_version", std::string("1"), "must be an int"},
        {"limn_kind", std::string("painting"), "unknown model kind 'painting'"},
        {"limn_kind", int64_t{1}, "'limn_kind' must be a str"},
        {"limn_name", std::string(""), "'limn_name' is empty"},
        {"limn_size_multiple", int64_t{0}, "'limn_size_multiple' is 0"},
        {"limn_size_multiple", int64_t{-4}, "'limn_size_multiple' is -4"},
        {"limn_fixed_height", int64_t{64}, "only one of"},
        {"limn_tile_margin", int64_t{-1}, "'limn_tile_margin' is -1"},
        {"limn_face_template", std::vector<double>{1, 2, 3}, "has 3 values"},
        {"limn_face_template", std::string("x"), "List[float]"},
        {"limn_selftest_input", limn::core::TensorPresence{true}, "only one of limn_selftest"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.key);
        CAPTURE(c.expect);
        auto r = valid_cartoon();
        r[c.key] = c.value;
        CHECK(error_of(r).find(c.expect) != std::string::npos);
    }
}

TEST_CASE("missing metadata") {
    CHECK(error_of(RawMetadata{}).find("no limn metadata") != std::string::npos);
    for (const char* key : {"limn_kind", "limn_name", "limn_size_multiple"}) {
        auto r = valid_cartoon();
        r.erase(key);
        CAPTURE(key);
        CHECK(error_of(r).find(std::string("'") + key + "' is missing") != std::string::npos);
    }
    // Optional fields default.
    auto r = valid_cartoon();
    r.erase("limn_tile_margin");
    r.erase("limn_source");
    CHECK(limn::core::parse_metadata(r, "m.pt").tile_margin == 0);
}

TEST_CASE("kind and size rule checks") {
    const auto m = limn::core::parse_metadata(valid_cartoon(), "m.pt");
    CHECK_NOTHROW(limn::core::check_kind(m, LIMN_MODEL_KIND_ANY, "m.pt"));
    CHECK_NOTHROW(limn::core::check_kind(m, LIMN_MODEL_KIND_CARTOON, "m.pt"));
    try {
        limn::core::check_kind(m, LIMN_MODEL_KIND_FACE_RESTORE, "m.pt");
        FAIL("no exception");
    } catch (const limn::core::Failure& e) {
        CHECK(e.status() == LIMN_ERR_WRONG_MODEL_KIND);
        CHECK(std::string(e.what()).find("needs a face_restore model") != std::string::npos);
    }
    CHECK_NOTHROW(limn::core::check_size_rule(m, 64, 8));
    try {
        limn::core::check_size_rule(m, 63, 8);
        FAIL("no exception");
    } catch (const limn::core::Failure& e) {
        CHECK(e.status() == LIMN_ERR_SIZE_RULE);
        CHECK(std::string(e.what()).find("63x8") != std::string::npos);
    }
}

TEST_CASE("a head model: a cartoon role with its crop size and template, checked") {
    RawMetadata r = valid_cartoon();
    r["limn_size_multiple"] = int64_t{4};
    r["limn_role"] = std::string("head");
    r["limn_crop_size"] = int64_t{288};
    r["limn_face_template"] = std::vector<double>{111.8, 137.6, 179.7, 137.3, 146.0, 176.3, 118.1, 216.1, 174.3, 215.8};
    const auto m = limn::core::parse_metadata(r, "m.pt");
    CHECK(m.role == "head");
    CHECK(m.crop_size == 288);
    CHECK(m.face_template.size() == 10);
    CHECK(limn::core::parse_metadata(valid_cartoon(), "m.pt").role.empty());  // files from before: no role

    RawMetadata no_template = r;
    no_template["limn_face_template"] = std::vector<double>{};
    CHECK(error_of(no_template).find("needs 'limn_face_template'") != std::string::npos);
    RawMetadata odd = r;
    odd["limn_crop_size"] = int64_t{290};
    CHECK(error_of(odd).find("limn_crop_size") != std::string::npos);
    RawMetadata face = r;
    face["limn_kind"] = std::string("face_detect");
    CHECK(error_of(face).find("cartoon models only") != std::string::npos);
    RawMetadata unknown = r;
    unknown["limn_role"] = std::string("tail");
    CHECK(error_of(unknown).find("unknown role 'tail'") != std::string::npos);
    RawMetadata stray = valid_cartoon();
    stray["limn_crop_size"] = int64_t{64};
    CHECK(error_of(stray).find("head models") != std::string::npos);
}
