#include "metadata.h"

#include <cmath>
#include <optional>

#include "error.h"
#include "names.h"

namespace limn::core {
namespace {

const MetaValue* find(const RawMetadata& raw, const char* key) {
    auto it = raw.find(key);
    return it == raw.end() ? nullptr : &it->second;
}

[[noreturn]] void bad(const std::string& origin, const std::string& what) {
    fail(LIMN_ERR_INVALID_MODEL, "model '" + origin + "': " + what);
}

int64_t get_int(const RawMetadata& raw, const char* key, const std::string& origin, bool required,
                int64_t fallback) {
    const MetaValue* v = find(raw, key);
    if (!v) {
        if (required) bad(origin, std::string("metadata attribute '") + key + "' is missing");
        return fallback;
    }
    if (const auto* i = std::get_if<int64_t>(v)) return *i;
    bad(origin, std::string("metadata attribute '") + key + "' must be an int");
}

std::string get_string(const RawMetadata& raw, const char* key, const std::string& origin,
                       bool required) {
    const MetaValue* v = find(raw, key);
    if (!v) {
        if (required) bad(origin, std::string("metadata attribute '") + key + "' is missing");
        return {};
    }
    if (const auto* s = std::get_if<std::string>(v)) return *s;
    bad(origin, std::string("metadata attribute '") + key + "' must be a str");
}

int checked_int(int64_t value, int64_t lo, int64_t hi, const char* key, const std::string& origin) {
    if (value < lo || value > hi) {
        bad(origin, std::string("metadata attribute '") + key + "' is " + std::to_string(value) +
                        ", expected " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    return static_cast<int>(value);
}

}  // namespace

const char* kind_name(limn_model_kind kind) {
    const char* name = name_of(LIMN_NAMES_MODEL_KIND, kind);
    return name ? name : "unknown";
}

namespace {

// limn_size_multiple, the fixed size and the tile margin.
void parse_sizes(const RawMetadata& raw, const std::string& origin, ModelMetadata& m) {
    constexpr int64_t kMaxSide = 1 << 16;
    m.size_multiple = checked_int(get_int(raw, "limn_size_multiple", origin, true, 1), 1, 4096,
                                  "limn_size_multiple", origin);
    m.fixed_height = checked_int(get_int(raw, "limn_fixed_height", origin, false, 0), 0, kMaxSide,
                                 "limn_fixed_height", origin);
    m.fixed_width = checked_int(get_int(raw, "limn_fixed_width", origin, false, 0), 0, kMaxSide,
                                "limn_fixed_width", origin);
    if ((m.fixed_height > 0) != (m.fixed_width > 0)) {
        bad(origin, "metadata gives only one of limn_fixed_height and limn_fixed_width");
    }
    if (m.fixed_width > 0 && (m.fixed_width % m.size_multiple || m.fixed_height % m.size_multiple)) {
        bad(origin, "metadata fixed size " + std::to_string(m.fixed_width) + "x" +
                        std::to_string(m.fixed_height) + " is not a multiple of limn_size_multiple " +
                        std::to_string(m.size_multiple));
    }
    m.tile_margin = checked_int(get_int(raw, "limn_tile_margin", origin, false, 0), 0, 4096,
                                "limn_tile_margin", origin);
}

// limn_face_template, and what face_restore models need.
void parse_face_template(const RawMetadata& raw, const std::string& origin, ModelMetadata& m) {
    if (const MetaValue* t = find(raw, "limn_face_template")) {
        const auto* values = std::get_if<std::vector<double>>(t);
        if (!values) bad(origin, "metadata attribute 'limn_face_template' must be a List[float]");
        if (!values->empty() && values->size() != 10) {
            bad(origin, "metadata attribute 'limn_face_template' has " + std::to_string(values->size()) +
                            " values; expected 10 (5 points) or none");
        }
        for (double v : *values) {
            if (!std::isfinite(v)) bad(origin, "metadata attribute 'limn_face_template' is not finite");
            m.face_template.push_back(static_cast<float>(v));
        }
    }
    if (m.kind == LIMN_MODEL_KIND_FACE_RESTORE) {
        if (m.face_template.empty()) bad(origin, "a face_restore model needs 'limn_face_template'");
        if (m.fixed_width == 0) bad(origin, "a face_restore model needs a fixed size");
    }
}

// limn_role and limn_crop_size: a head model is a cartoon model of aligned face crops.
void parse_role(const RawMetadata& raw, const std::string& origin, ModelMetadata& m) {
    m.role = get_string(raw, "limn_role", origin, false);
    m.crop_size = checked_int(get_int(raw, "limn_crop_size", origin, false, 0), 0, 1 << 16, "limn_crop_size",
                              origin);
    if (m.role == "head") {
        if (m.kind != LIMN_MODEL_KIND_CARTOON) bad(origin, "role 'head' is for cartoon models only");
        if (m.face_template.empty()) bad(origin, "a head model needs 'limn_face_template' (at its crop size)");
        if (m.crop_size == 0 || m.crop_size % m.size_multiple) {
            bad(origin, "a head model needs 'limn_crop_size' > 0, a multiple of limn_size_multiple " +
                            std::to_string(m.size_multiple));
        }
    } else if (!value_of(LIMN_NAMES_MODEL_ROLE, m.role)) {
        bad(origin, "unknown role '" + m.role.substr(0, 40) + "' (expected \"head\" or none)");
    } else if (m.crop_size != 0) {
        bad(origin, "'limn_crop_size' is for head models (limn_role \"head\") only");
    }
}

}  // namespace

ModelMetadata parse_metadata(const RawMetadata& raw, const std::string& origin) {
    if (!find(raw, "limn_format_version")) {
        bad(origin, "no limn metadata (attribute 'limn_format_version' is missing); "
                    "export the model with limn_models (python -m limn_models.export)");
    }
    ModelMetadata m;
    const int64_t version = get_int(raw, "limn_format_version", origin, true, 0);
    if (version != kMetadataFormatVersion) {
        bad(origin, "unknown metadata format version " + std::to_string(version) +
                        " (this limn reads version " + std::to_string(kMetadataFormatVersion) + ")");
    }
    m.format_version = static_cast<int>(version);
    const std::string kind = get_string(raw, "limn_kind", origin, true);
    const std::optional<int32_t> kind_value = value_of(LIMN_NAMES_MODEL_KIND, kind);
    if (!kind_value || *kind_value == LIMN_MODEL_KIND_ANY) {
        bad(origin, "unknown model kind '" + kind + "' (expected " + name_list(LIMN_NAMES_MODEL_KIND, LIMN_MODEL_KIND_ANY) + ")");
    }
    m.kind = static_cast<limn_model_kind>(*kind_value);
    m.name = get_string(raw, "limn_name", origin, true);
    if (m.name.empty()) bad(origin, "metadata attribute 'limn_name' is empty");
    parse_sizes(raw, origin, m);
    parse_face_template(raw, origin, m);
    parse_role(raw, origin, m);
    m.source = get_string(raw, "limn_source", origin, false);
    m.license = get_string(raw, "limn_license", origin, false);
    const MetaValue* in = find(raw, "limn_selftest_input");
    const MetaValue* out = find(raw, "limn_selftest_output");
    const auto present = [](const MetaValue* v) {
        const auto* p = v ? std::get_if<TensorPresence>(v) : nullptr;
        return p && p->present;
    };
    if (present(in) != present(out)) {
        bad(origin, "metadata has only one of limn_selftest_input and limn_selftest_output");
    }
    m.has_selftest = present(in);
    return m;
}

void check_kind(const ModelMetadata& meta, limn_model_kind expected, const std::string& origin) {
    if (expected == LIMN_MODEL_KIND_ANY || expected == meta.kind) return;
    fail(LIMN_ERR_WRONG_MODEL_KIND, "model '" + origin + "' is a " + kind_name(meta.kind) +
                                        " model; this call needs a " + kind_name(expected) + " model");
}

std::string size_rule_text(const ModelMetadata& meta) {
    if (meta.fixed_width > 0) {
        return "exactly " + std::to_string(meta.fixed_width) + "x" + std::to_string(meta.fixed_height);
    }
    if (meta.size_multiple == 1) return "any size";
    return "width and height multiples of " + std::to_string(meta.size_multiple);
}

void check_size_rule(const ModelMetadata& meta, int width, int height) {
    const bool ok = meta.fixed_width > 0
                        ? width == meta.fixed_width && height == meta.fixed_height
                        : width % meta.size_multiple == 0 && height % meta.size_multiple == 0;
    if (!ok) {
        fail(LIMN_ERR_SIZE_RULE, "image size " + std::to_string(width) + "x" + std::to_string(height) +
                                     " does not fit model '" + meta.name + "': it needs " +
                                     size_rule_text(meta));
    }
}

}  // namespace limn::core
