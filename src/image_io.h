// Image files: decoding (stb_image, libwebp, libtiff) with EXIF orientation, encoding
// (stb_image_write, libwebp) with ICC profiles, and atomic replacement of the target file
// (file_io.h). No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "limn/limn.h"
#include "pixels.h"

namespace limn::core {

struct LoadOptions {
    limn_pixel_format format = static_cast<limn_pixel_format>(0);  // 0: RGB8 or RGBA8 (alpha)
    bool apply_orientation = true;
    uint64_t max_pixels = kDefaultMaxPixels;  // 0: no limit
};

struct SaveOptions {
    limn_file_format file_format = LIMN_FILE_FORMAT_AUTO;
    int jpeg_quality = 95;
    std::vector<uint8_t> icc_profile;  // embedded where the format can hold it (see icc.h)
};

// Failures: LIMN_ERR_IO (open/read), LIMN_ERR_INVALID_IMAGE (undecodable), LIMN_ERR_IMAGE_TOO_LARGE
// (header size over max_pixels), LIMN_ERR_INVALID_ARGUMENT (bad options); messages name the file.
OwnedImage load_image_file(const std::string& path, const LoadOptions& options);
// `name` is how messages refer to the bytes (e.g. "<memory>").
OwnedImage load_image_memory(const void* data, size_t size, const std::string& name,
                             const LoadOptions& options);

// The ICC profile embedded in the image file at `path` (see find_icc_profile); LIMN_ERR_IO when
// the file cannot be read.
std::vector<uint8_t> read_icc_profile_file(const std::string& path);

// The file format for a path's extension (case-insensitive); LIMN_ERR_INVALID_ARGUMENT if unknown.
limn_file_format file_format_for_path(const std::string& path);

// Writes to a temporary file next to `path`, then renames it over `path`; on any failure nothing
// is left behind. LIMN_ERR_IO for an unwritable place.
// Failure(LIMN_ERR_INVALID_ARGUMENT) unless jpeg_quality is 1..100; saving and encoding check it.
void check_save_options(const SaveOptions& options);
void save_image_file(const std::string& path, const limn_image& image, const SaveOptions& options);
// options.file_format must not be AUTO.
std::vector<uint8_t> encode_image(const limn_image& image, const SaveOptions& options);

}  // namespace limn::core
