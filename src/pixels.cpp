#include "pixels.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "error.h"
#include "names.h"

namespace limn::core {

int channels_of(limn_pixel_format format) {
    switch (format) {
        case LIMN_PIXEL_RGB8:
        case LIMN_PIXEL_BGR8:
        case LIMN_PIXEL_RGB32F: return 3;
        case LIMN_PIXEL_RGBA8:
        case LIMN_PIXEL_BGRA8:
        case LIMN_PIXEL_RGBA32F: return 4;
    }
    return 0;
}

int bytes_per_channel(limn_pixel_format format) {
    if (channels_of(format) == 0) return 0;
    return is_float(format) ? 4 : 1;
}

int bytes_per_pixel(limn_pixel_format format) { return channels_of(format) * bytes_per_channel(format); }

const char* format_name(limn_pixel_format format) {
    const char* text = text_of(LIMN_NAMES_PIXEL_FORMAT, format);
    return text ? text : "unknown";
}

bool has_alpha(limn_pixel_format format) { return channels_of(format) == 4; }

bool is_bgr(limn_pixel_format format) {
    return format == LIMN_PIXEL_BGR8 || format == LIMN_PIXEL_BGRA8;
}

bool is_float(limn_pixel_format format) {
    return format == LIMN_PIXEL_RGB32F || format == LIMN_PIXEL_RGBA32F;
}

void check_image(const limn_image* image, const char* what, uint64_t max_pixels) {
    const std::string name(what);
    if (!image) fail(LIMN_ERR_INVALID_ARGUMENT, name + " image is NULL");
    // The format as its bytes first: a C caller may have put any int there.
    if (!known_pixel_format(image->format)) {
        fail(LIMN_ERR_INVALID_ARGUMENT,
             name + " image has unknown pixel format " + std::to_string(raw_enum(image->format)));
    }
    const int bpp = bytes_per_pixel(image->format);
    if (image->width <= 0 || image->height <= 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, name + " image size " + std::to_string(image->width) + "x" +
                                            std::to_string(image->height) + " is not positive");
    }
    if (!image->data) fail(LIMN_ERR_INVALID_ARGUMENT, name + " image data is NULL");
    const size_t row = static_cast<size_t>(image->width) * static_cast<size_t>(bpp);
    if (image->stride < row) {
        fail(LIMN_ERR_INVALID_ARGUMENT, name + " image stride " + std::to_string(image->stride) +
                                            " is less than width * bytes per pixel = " +
                                            std::to_string(row));
    }
    // The bytes the rows span must be addressable: LibTorch computes a view's size in int64 and
    // terminates the process when that overflows (found by tests/fuzz/fuzz_c_api.cpp), and no
    // machine maps more than 2^56 bytes (x86-64 with 5-level paging; AArch64 has 52 bits), so a
    // larger span is a wrong stride, not memory to read (found by the C-API fuzz target; test_c_api).
    constexpr size_t kAddressSpace = size_t{1} << 56;
    size_t span = 0;
    if (__builtin_mul_overflow(static_cast<size_t>(image->height - 1), image->stride, &span) ||
        __builtin_add_overflow(span, row, &span) || span > kAddressSpace ||
        reinterpret_cast<uintptr_t>(image->data) > UINTPTR_MAX - span) {
        fail(LIMN_ERR_INVALID_ARGUMENT, name + " image stride " + std::to_string(image->stride) + " over " +
                                            std::to_string(image->height) + " rows is past any memory");
    }
    if (is_float(image->format) &&
        (reinterpret_cast<uintptr_t>(image->data) % 4 != 0 || image->stride % 4 != 0)) {
        fail(LIMN_ERR_INVALID_ARGUMENT, name + " image is " + format_name(image->format) +
                                            " but its data pointer or stride is not a multiple of 4 "
                                            "bytes");
    }
    const uint64_t pixels = static_cast<uint64_t>(image->width) * static_cast<uint64_t>(image->height);
    if (max_pixels > 0 && pixels > max_pixels) {
        fail(LIMN_ERR_IMAGE_TOO_LARGE, name + " image " + std::to_string(image->width) + "x" +
                                           std::to_string(image->height) + " has " +
                                           std::to_string(pixels) + " pixels, over the limit of " +
                                           std::to_string(max_pixels));
    }
}

void check_image_pair(const limn_image& input, const limn_image& output, const std::string& in_name,
                      const std::string& out_name, uint64_t max_pixels) {
    check_image(&input, in_name.c_str(), max_pixels);
    check_image(&output, out_name.c_str(), max_pixels);
    if (output.width != input.width || output.height != input.height) {
        fail(LIMN_ERR_INVALID_ARGUMENT, out_name + " is " + std::to_string(output.width) + "x" +
                                            std::to_string(output.height) + " but " + in_name + " is " +
                                            std::to_string(input.width) + "x" + std::to_string(input.height));
    }
}

void ImageDeleter::operator()(limn_image* p) const noexcept { std::free(p); }

OwnedImage allocate_image(int32_t width, int32_t height, limn_pixel_format format) {
    const int bpp = bytes_per_pixel(format);
    if (bpp == 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "unknown pixel format " + std::to_string(static_cast<int>(format)));
    }
    if (width <= 0 || height <= 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT,
             "image size " + std::to_string(width) + "x" + std::to_string(height) + " is not positive");
    }
    size_t bytes = 0;
    const size_t header = (sizeof(limn_image) + 63) / 64 * 64;
    if (__builtin_mul_overflow(static_cast<size_t>(width) * static_cast<size_t>(bpp),
                               static_cast<size_t>(height), &bytes) ||
        bytes > SIZE_MAX - header) {
        fail(LIMN_ERR_IMAGE_TOO_LARGE,
             "image " + std::to_string(width) + "x" + std::to_string(height) + " is too large to allocate");
    }
    void* block = std::aligned_alloc(64, (header + bytes + 63) / 64 * 64);
    if (!block) throw std::bad_alloc();
    std::memset(block, 0, header + bytes);
    OwnedImage img(static_cast<limn_image*>(block));
    img->data = static_cast<uint8_t*>(block) + header;
    img->width = width;
    img->height = height;
    img->stride = static_cast<size_t>(width) * static_cast<size_t>(bpp);
    img->format = format;
    return img;
}

}  // namespace limn::core
