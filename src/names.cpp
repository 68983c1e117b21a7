#include "names.h"

#include <cstring>

namespace limn::core {
namespace {

constexpr NameEntry kTables[] = {
    {LIMN_NAMES_TABLES, "tables", "name tables"},
    {LIMN_NAMES_STATUS, "status", "statuses"},
    {LIMN_NAMES_PRECISION, "precision", "precisions"},
    {LIMN_NAMES_MODEL_KIND, "model_kind", "model kinds"},
    {LIMN_NAMES_MODEL_ROLE, "model_role", "model roles"},
    {LIMN_NAMES_FILE_FORMAT, "file_format", "file formats"},
    {LIMN_NAMES_PIXEL_FORMAT, "pixel_format", "pixel formats"},
};

constexpr NameEntry kStatuses[] = {
    {LIMN_OK, "ok", "ok"},
    {LIMN_ERR_INVALID_ARGUMENT, "invalid_argument", "invalid argument"},
    {LIMN_ERR_IO, "io", "I/O error"},
    {LIMN_ERR_INVALID_MODEL, "invalid_model", "invalid model"},
    {LIMN_ERR_WRONG_MODEL_KIND, "wrong_model_kind", "wrong model kind"},
    {LIMN_ERR_DEVICE_UNAVAILABLE, "device_unavailable", "device unavailable"},
    {LIMN_ERR_UNSUPPORTED, "unsupported", "unsupported"},
    {LIMN_ERR_OUT_OF_MEMORY, "out_of_memory", "out of memory"},
    {LIMN_ERR_IMAGE_TOO_LARGE, "image_too_large", "image too large"},
    {LIMN_ERR_SIZE_RULE, "size_rule", "image size does not fit the model"},
    {LIMN_ERR_NON_FINITE, "non_finite", "non-finite result"},
    {LIMN_ERR_CANCELLED, "cancelled", "cancelled"},
    {LIMN_ERR_TIMEOUT, "timeout", "deadline expired"},
    {LIMN_ERR_INTERNAL, "internal", "internal error"},
    {LIMN_ERR_INVALID_IMAGE, "invalid_image", "invalid image"},
};

constexpr NameEntry kPrecisions[] = {
    {LIMN_PRECISION_AUTO, "auto", "auto"}, {LIMN_PRECISION_FP32, "fp32", "fp32"},
    {LIMN_PRECISION_FP16, "fp16", "fp16"}, {LIMN_PRECISION_BF16, "bf16", "bf16"},
    {LIMN_PRECISION_TF32, "tf32", "tf32"},
};

constexpr NameEntry kModelKinds[] = {
    {LIMN_MODEL_KIND_ANY, "any", "any"},
    {LIMN_MODEL_KIND_CARTOON, "cartoon", "cartoon"},
    {LIMN_MODEL_KIND_FACE_RESTORE, "face_restore", "face_restore"},
    {LIMN_MODEL_KIND_FACE_DETECT, "face_detect", "face_detect"},
};

constexpr NameEntry kModelRoles[] = {
    {LIMN_MODEL_ROLE_NONE, "", "none"},
    {LIMN_MODEL_ROLE_HEAD, "head", "head"},
};

constexpr NameEntry kFileFormats[] = {
    {LIMN_FILE_FORMAT_AUTO, "auto", "auto"}, {LIMN_FILE_FORMAT_PNG, "png", "PNG"},
    {LIMN_FILE_FORMAT_JPEG, "jpeg", "JPEG"}, {LIMN_FILE_FORMAT_BMP, "bmp", "BMP"},
    {LIMN_FILE_FORMAT_TGA, "tga", "TGA"},    {LIMN_FILE_FORMAT_WEBP, "webp", "WebP"},
};

constexpr NameEntry kPixelFormats[] = {
    {LIMN_PIXEL_RGB8, "rgb8", "RGB8"},     {LIMN_PIXEL_RGBA8, "rgba8", "RGBA8"},
    {LIMN_PIXEL_BGR8, "bgr8", "BGR8"},     {LIMN_PIXEL_BGRA8, "bgra8", "BGRA8"},
    {LIMN_PIXEL_RGB32F, "rgb32f", "RGB32F"}, {LIMN_PIXEL_RGBA32F, "rgba32f", "RGBA32F"},
};

// Other spellings value_of accepts: the extension .jpg.
struct Alias {
    limn_name_table table;
    const char* name;
    int32_t value;
};
constexpr Alias kAliases[] = {{LIMN_NAMES_FILE_FORMAT, "jpg", LIMN_FILE_FORMAT_JPEG}};

template <size_t N>
const NameEntry* entries(const NameEntry (&table)[N], size_t* count) {
    *count = N;
    return table;
}

}  // namespace

const NameEntry* name_entries(limn_name_table table, size_t* count) {
    switch (table) {
        case LIMN_NAMES_TABLES: return entries(kTables, count);
        case LIMN_NAMES_STATUS: return entries(kStatuses, count);
        case LIMN_NAMES_PRECISION: return entries(kPrecisions, count);
        case LIMN_NAMES_MODEL_KIND: return entries(kModelKinds, count);
        case LIMN_NAMES_MODEL_ROLE: return entries(kModelRoles, count);
        case LIMN_NAMES_FILE_FORMAT: return entries(kFileFormats, count);
        case LIMN_NAMES_PIXEL_FORMAT: return entries(kPixelFormats, count);
    }
    *count = 0;
    return nullptr;
}

const NameEntry* name_entry(limn_name_table table, int32_t value) {
    size_t n = 0;
    const NameEntry* e = name_entries(table, &n);
    for (size_t i = 0; i < n; ++i)
        if (e[i].value == value) return &e[i];
    return nullptr;
}

const char* name_at(limn_name_table table, size_t index, int32_t* value) {
    size_t n = 0;
    const NameEntry* e = name_entries(table, &n);
    if (index < n) {
        if (value) *value = e[index].value;
        return e[index].name;
    }
    for (const Alias& a : kAliases) {
        if (a.table != table) continue;
        if (index-- == n) {
            if (value) *value = a.value;
            return a.name;
        }
    }
    return nullptr;
}

std::optional<int32_t> value_of(limn_name_table table, const std::string& name) {
    size_t n = 0;
    const NameEntry* e = name_entries(table, &n);
    for (size_t i = 0; i < n; ++i)
        if (name == e[i].name) return e[i].value;
    for (const Alias& a : kAliases)
        if (a.table == table && name == a.name) return a.value;
    return std::nullopt;
}

std::string name_list(limn_name_table table, std::optional<int32_t> skip) {
    size_t n = 0;
    const NameEntry* e = name_entries(table, &n);
    std::string out;
    size_t listed = 0, total = 0;
    for (size_t i = 0; i < n; ++i) total += skip != e[i].value;
    for (size_t i = 0; i < n; ++i) {
        if (skip == e[i].value) continue;
        out += listed == 0 ? "" : listed + 1 == total ? " or " : ", ";
        out += e[i].name;
        ++listed;
    }
    return out;
}

}  // namespace limn::core
