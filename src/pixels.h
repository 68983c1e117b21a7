// Pixel formats and caller-visible image buffers: format facts, validation and allocation.
// No LibTorch here, so the image file code and white-box tests can use it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "limn/limn.h"

namespace limn::core {

// Images over this many pixels are refused unless the caller raises the limit: the one place the
// default is written (models and image files; the C ABI's *_options_init report it).
constexpr uint64_t kDefaultMaxPixels = 64ull * 1024 * 1024;

// An enum value from C, as its bytes: C may pass any int, and loading a value the enum does not
// name as a C++ enum is undefined behaviour. known_enum gives the enum only for first..last.
template <typename E>
int32_t raw_enum(const E& value) {
    static_assert(sizeof(E) == sizeof(int32_t), "C enums are int-sized");
    int32_t raw;
    std::memcpy(&raw, &value, sizeof raw);
    return raw;
}
template <typename E>
std::optional<E> known_enum(const E& value, int32_t first, int32_t last) {
    const int32_t raw = raw_enum(value);
    if (raw < first || raw > last) return std::nullopt;
    return static_cast<E>(raw);
}
inline std::optional<limn_pixel_format> known_pixel_format(const limn_pixel_format& format) {
    return known_enum(format, LIMN_PIXEL_RGB8, LIMN_PIXEL_RGBA32F);
}

int channels_of(limn_pixel_format format);           // 3, 4, or 0 for an unknown value
int bytes_per_channel(limn_pixel_format format);     // 1 (8-bit), 4 (float), 0 unknown
int bytes_per_pixel(limn_pixel_format format);       // channels * bytes per channel, 0 unknown
const char* format_name(limn_pixel_format format);
bool has_alpha(limn_pixel_format format);
bool is_bgr(limn_pixel_format format);
bool is_float(limn_pixel_format format);

// Throws Failure(LIMN_ERR_INVALID_ARGUMENT) naming `what` ("input", "output[2]", ...) for a NULL
// image or data pointer, unknown format, non-positive size, stride below width * bytes per pixel
// or a float image whose data or stride is not 4-byte aligned, and
// Failure(LIMN_ERR_IMAGE_TOO_LARGE) when width * height exceeds max_pixels (0 = no limit).
void check_image(const limn_image* image, const char* what, uint64_t max_pixels);

// check_image on both, and Failure(LIMN_ERR_INVALID_ARGUMENT) unless the output has the input's
// width and height; the names say which images ("input[2]", ...).
void check_image_pair(const limn_image& input, const limn_image& output, const std::string& in_name,
                      const std::string& out_name, uint64_t max_pixels);

struct ImageDeleter {
    void operator()(limn_image* p) const noexcept;
};
// An image the library allocated: descriptor and pixels in one block, freed by limn_image_free.
using OwnedImage = std::unique_ptr<limn_image, ImageDeleter>;

// Zeroed width x height image with stride = width * bytes per pixel (64-byte aligned pixels).
OwnedImage allocate_image(int32_t width, int32_t height, limn_pixel_format format);

}  // namespace limn::core
