// libFuzzer target: the JSON and base64 readers behind a compiled package's extra/limn.json, the
// part of a .pt2 file the library parses itself. Must never crash, hang or read out of bounds;
// malformed input throws std::invalid_argument.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const limn::core::JsonValue v = limn::core::parse_json(text);
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
