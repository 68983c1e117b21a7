// The names of limn's enums, once (in the spirit of llama.cpp's llama-arch.cpp): statuses,
// precisions, model kinds and roles, file and pixel formats. Each value has the name files, the
// command line and the Python package spell it with, and the text messages use. Every other layer
// derives its names from here, through limn_name / limn_name_value / limn_names_entry (limn.h).
// No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "limn/limn.h"

namespace limn::core {

struct NameEntry {
    int32_t value;
    const char* name;  // as spelled in files and options: "fp32", "face_restore", "jpeg"
    const char* text;  // as messages say it: "JPEG", "I/O error"
};

// The entries of `table` in value order, and their count; nullptr for an unknown table.
const NameEntry* name_entries(limn_name_table table, size_t* count);

// The entry of `value`, or nullptr.
const NameEntry* name_entry(limn_name_table table, int32_t value);
inline const char* name_of(limn_name_table table, int32_t value) {
    const NameEntry* e = name_entry(table, value);
    return e ? e->name : nullptr;
}
inline const char* text_of(limn_name_table table, int32_t value) {
    const NameEntry* e = name_entry(table, value);
    return e ? e->text : nullptr;
}

// Entry `index` of `table` for listing: its entries in value order, then the other spellings
// value_of takes ("jpg"); nullptr past the last.
const char* name_at(limn_name_table table, size_t index, int32_t* value);

// The value `name` names (also the aliases: "jpg" for JPEG), or none.
std::optional<int32_t> value_of(limn_name_table table, const std::string& name);

// "auto, fp32, fp16, bf16 or tf32": the names of `table` for messages, all but `skip` (e.g. 0 for
// file formats' "auto").
std::string name_list(limn_name_table table, std::optional<int32_t> skip = std::nullopt);

}  // namespace limn::core
