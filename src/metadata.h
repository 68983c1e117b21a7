// The metadata a limn model file carries (format described in models/FORMAT.md), and its
// validation. torchscript.cpp and pt2.cpp read the attributes out of a model file into RawMetadata;
// everything here is plain C++ so it can be tested without a model.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "limn/limn.h"

namespace limn::core {

constexpr int kMetadataFormatVersion = 1;

struct TensorPresence {
    bool present = false;  // a non-empty tensor attribute
};

// One attribute as found in the file; monostate = an attribute of a type limn does not read.
using MetaValue =
    std::variant<std::monostate, int64_t, double, std::string, std::vector<double>, TensorPresence>;
using RawMetadata = std::map<std::string, MetaValue>;

struct ModelMetadata {
    int format_version = 0;
    limn_model_kind kind = LIMN_MODEL_KIND_ANY;
    std::string name;
    int size_multiple = 1;
    int fixed_width = 0;
    int fixed_height = 0;
    int tile_margin = 0;
    std::vector<float> face_template;  // empty, or 10 values
    // "" (the kind's own use), or "head": a cartoon network for aligned face crops of crop_size
    // pixels, the face placed on face_template (DCT-Net's head network).
    std::string role;
    int crop_size = 0;
    std::string source;
    std::string license;
    bool has_selftest = false;
};

// Validates the attributes; throws Failure(LIMN_ERR_INVALID_MODEL) with a message that starts with
// `origin` (the file name) and says which attribute is missing or wrong.
ModelMetadata parse_metadata(const RawMetadata& raw, const std::string& origin);

const char* kind_name(limn_model_kind kind);  // "cartoon", ..., "any"

// Throws Failure(LIMN_ERR_WRONG_MODEL_KIND) when `expected` is not ANY and differs.
void check_kind(const ModelMetadata& meta, limn_model_kind expected, const std::string& origin);

// Throws Failure(LIMN_ERR_SIZE_RULE) when width x height does not fit the model's size rule.
void check_size_rule(const ModelMetadata& meta, int width, int height);

// Describes the size rule, e.g. "multiple of 8" or "exactly 512x512".
std::string size_rule_text(const ModelMetadata& meta);

}  // namespace limn::core
