// The JSON reader for compiled packages' metadata (extra/limn.json): what limn writes, strictness
// on what it does not, and base64.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "json.h"

using limn::core::JsonValue;
using limn::core::parse_json;

TEST_CASE("json: the values a package's metadata holds") {
    const JsonValue v = parse_json(
        R"({"limn_format_version": 1, "limn_name": "dct\u00e9 \"net\"\n", "limn_face_template": [202.0, -1.5e2, 3],
            "limn_prior_clip": false, "t": {"shape": [1, 3], "data": "AAAA"}, "n": null, "big": 12345678901234567890})");
    REQUIRE(v.type == JsonValue::Type::Object);
    CHECK(v.find("limn_format_version")->is_integer);
    CHECK(v.find("limn_format_version")->integer == 1);
    CHECK(v.find("limn_name")->string == "dct\xc3\xa9 \"net\"\n");
    const JsonValue* t = v.find("limn_face_template");
    REQUIRE(t->array.size() == 3);
    CHECK_FALSE(t->array[0].is_integer);  // written with a fraction: a float
    CHECK(t->array[1].number == -150.0);
    CHECK(t->array[2].is_integer);
    CHECK(v.find("limn_prior_clip")->type == JsonValue::Type::Bool);
    CHECK(v.find("t")->find("shape")->array[1].integer == 3);
    CHECK(v.find("n")->type == JsonValue::Type::Null);
    CHECK_FALSE(v.find("big")->is_integer);  // does not fit int64: a number only
    CHECK(v.find("missing") == nullptr);
    CHECK(parse_json(R"("\ud83d\ude00")").string == "\xf0\x9f\x98\x80");  // a surrogate pair
    CHECK(parse_json(" [ ] ").array.empty());
}

TEST_CASE("json: malformed documents are refused with the byte offset") {
    for (const char* bad : {"", "{", "{\"a\": }", "[1,]", "{\"a\" 1}", "01", "1.", "1e", "-", "tru", "\"abc",
                            "\"\\x\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\nb\"", "{} x", "\"\xff\"",
                            "\"\xc0\x80\"", "[\"\xed\xa0\x80\"]"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parse_json(bad), std::invalid_argument);
    }
    try {
        parse_json("{\"a\": [1, 2, }");
        FAIL("accepted");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("byte 13") != std::string::npos);
    }
    // Nesting is bounded, so a hostile file cannot exhaust the stack.
    CHECK_THROWS_AS(parse_json(std::string(100000, '[')), std::invalid_argument);
    CHECK_NOTHROW(parse_json(std::string(60, '[') + std::string(60, ']')));
}

TEST_CASE("base64 decoding") {
    CHECK(limn::core::decode_base64("") == "");
    CHECK(limn::core::decode_base64("Zg==") == "f");
    CHECK(limn::core::decode_base64("Zm8=") == "fo");
    CHECK(limn::core::decode_base64("Zm9v") == "foo");
    CHECK(limn::core::decode_base64("AACAPw==") == std::string("\x00\x00\x80\x3f", 4));  // 1.0f
    CHECK_THROWS_AS(limn::core::decode_base64("Zm9v!"), std::invalid_argument);
    CHECK_THROWS_AS(limn::core::decode_base64("Z"), std::invalid_argument);
}
