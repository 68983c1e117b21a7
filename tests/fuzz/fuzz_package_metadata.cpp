// libFuzzer target: the JSON and base64 readers behind a compiled package's extra/limn.json, the
// part of a .pt2 file the library parses itself, and the metadata validation every model goes
// through (parse_metadata, src/metadata.cpp), fed the limn_* attributes of the document as the
// package loader converts them. Must never crash, hang or read out of bounds; malformed JSON
// throws std::invalid_argument, bad metadata limn::core::Failure(LIMN_ERR_INVALID_MODEL).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "error.h"
#include "json.h"
#include "metadata.h"

namespace {

// As src/pt2.cpp converts a JSON value into a metadata attribute (a tensor object counts as present
// when it has a non-empty "data" string; the loader decodes it, which the base64 fuzzing covers).
limn::core::MetaValue convert(const limn::core::JsonValue& v) {
    using Type = limn::core::JsonValue::Type;
    switch (v.type) {
        case Type::Number:
            if (v.is_integer) return v.integer;
            return v.number;
        case Type::String: return v.string;
        case Type::Array: {
            std::vector<double> numbers;
            for (const limn::core::JsonValue& item : v.array) {
                if (item.type != Type::Number) return std::monostate{};
                numbers.push_back(item.number);
            }
            return numbers;
        }
        case Type::Object: {
            const limn::core::JsonValue* d = v.find("data");
            return limn::core::TensorPresence{d && d->type == Type::String && !d->string.empty()};
        }
        default: return std::monostate{};
    }
}

void check_metadata(const limn::core::JsonValue& doc) {
    if (doc.type != limn::core::JsonValue::Type::Object) return;
    limn::core::RawMetadata raw;
    for (const auto& [name, value] : doc.object) {
        if (name.rfind("limn_", 0) == 0) raw[name] = convert(value);
    }
    try {
        const limn::core::ModelMetadata m = limn::core::parse_metadata(raw, "<fuzz>");
        if (m.size_multiple < 1 || m.fixed_width < 0 || m.fixed_height < 0) __builtin_trap();
        (void)limn::core::size_rule_text(m);
        for (const int side : {1, 7, 64, 512}) {
            try {
                limn::core::check_size_rule(m, side, side);
            } catch (const limn::core::Failure& e) {
                if (e.status() != LIMN_ERR_SIZE_RULE) __builtin_trap();
            }
        }
    } catch (const limn::core::Failure& e) {
        if (e.status() != LIMN_ERR_INVALID_MODEL) __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const limn::core::JsonValue v = limn::core::parse_json(text);
        check_metadata(v);
        for (const auto& [key, value] : v.object) {
            if (const limn::core::JsonValue* d = value.find("data"); d && d->type == limn::core::JsonValue::Type::String) {
                (void)limn::core::decode_base64(d->string);
            }
            (void)key;
        }
    } catch (const std::invalid_argument&) {
    }
    try {
        (void)limn::core::decode_base64(text);
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
