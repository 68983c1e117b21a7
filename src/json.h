// A small, strict JSON reader for the metadata inside compiled model packages (extra/limn.json),
// which come from files the caller names and are therefore untrusted bytes. No LibTorch here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace limn::core {

struct JsonValue {
    enum class Type { Null, Bool, Number, String, Array, Object };
    Type type = Type::Null;
    bool boolean = false;
    double number = 0.0;
    bool is_integer = false;  // written without fraction or exponent and fits int64_t
    int64_t integer = 0;
    std::string string;       // UTF-8
    std::vector<JsonValue> array;
    std::vector<std::pair<std::string, JsonValue>> object;  // in file order

    // The member named `key` of an object, or nullptr.
    const JsonValue* find(std::string_view key) const;
};

// Parses one JSON document (RFC 8259; nesting at most 64 deep). Throws std::invalid_argument with
// the byte offset and what was wrong; the text of the document is never echoed.
JsonValue parse_json(std::string_view text);

// Decodes standard base64 (RFC 4648, padding optional, no whitespace). Throws
// std::invalid_argument on any other character.
std::string decode_base64(std::string_view text);

}  // namespace limn::core
