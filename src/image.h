// Caller-owned image buffers: validation, and conversion to and from tensors on a device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "limn/limn.h"

namespace at {
class Tensor;
}
namespace c10 {
struct Device;
}

namespace limn {

int channels_of(limn_pixel_format format);  // 3, 4, or 0 for an unknown value
const char* format_name(limn_pixel_format format);
bool has_alpha(limn_pixel_format format);
bool is_bgr(limn_pixel_format format);

// Throws Failure(LIMN_ERR_INVALID_ARGUMENT) naming `what` ("input", "output[2]", ...) for a NULL
// image or data pointer, unknown format, non-positive size or stride below width * channels, and
// Failure(LIMN_ERR_IMAGE_TOO_LARGE) when width * height exceeds max_pixels (0 = no limit).
void check_image(const limn_image* image, const char* what, uint64_t max_pixels);

// uint8 images (all the same size) -> uint8 tensor [N, H, W, C] on `device`, one host-to-device
// copy per image, reading only the bytes the descriptions cover.
at::Tensor images_to_device(const limn_image* images, size_t count, const c10::Device& device);

// [N, H, W, C] uint8 (as from images_to_device) -> float [N, 3, H, W] RGB in [0, 1].
at::Tensor to_network_input(const at::Tensor& pixels, limn_pixel_format format);

// float [N, 3, H, W] RGB (any range; clamped to [0, 1]) plus the input pixels (for alpha) ->
// outputs[i] in their own formats and strides. Rounds to nearest.
void write_images(const at::Tensor& rgb, const at::Tensor& input_pixels,
                  limn_pixel_format input_format, limn_image* outputs, size_t count);

}  // namespace limn
