// ICC colour profiles in image files: found in the containers limn reads (JPEG APP2, PNG iCCP,
// WebP ICCP) and embedded in those it writes, so that a photo's colours mean the same after
// processing. The pixels are never converted; the profile travels with them. No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "limn/limn.h"

namespace limn::core {

// Profiles are small (a few hundred bytes to a few hundred KiB); larger ones are refused. A JPEG
// holds at most 255 APP2 parts of 65519 bytes.
constexpr size_t kMaxIccProfileBytes = 16'000'000;

// Failure(LIMN_ERR_INVALID_ARGUMENT) unless `profile` is empty or looks like an ICC profile: at
// most kMaxIccProfileBytes, at least its 128-byte header, the size in that header its own, and the
// 'acsp' signature at byte 36 (ICC.1, 7.2). Checked before a profile is embedded.
void check_icc_profile(const std::vector<uint8_t>& profile);

// The profile in encoded JPEG, PNG, WebP or TIFF bytes; empty when there is none, the container is
// damaged (missing or inconsistent APP2 parts, a bad iCCP stream), what it holds is not a profile
// (check_icc_profile), or the format carries none.
std::vector<uint8_t> find_icc_profile(const uint8_t* data, size_t size);

// `encoded` (as written by encode_image in `format`) with `profile` embedded: PNG iCCP after IHDR,
// JPEG APP2 segments after the JFIF header, WebP ICCP in an extended (VP8X) file. BMP and TGA are
// returned unchanged. The picture's size and alpha go into WebP's VP8X header.
std::vector<uint8_t> embed_icc_profile(std::vector<uint8_t> encoded, limn_file_format format,
                                       const std::vector<uint8_t>& profile, bool has_alpha, int width,
                                       int height);

// zlib streams, through the stb copy compiled into image_io.cpp. inflate_zlib fails (false) on a
// damaged stream (its Adler-32 checked too) or one that inflates past max_bytes.
std::vector<uint8_t> deflate_zlib(const std::vector<uint8_t>& data);
bool inflate_zlib(const uint8_t* data, size_t size, size_t max_bytes, std::vector<uint8_t>& out);

}  // namespace limn::core
