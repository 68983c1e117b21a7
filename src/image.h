// Caller-owned image buffers: validation, and conversion to and from tensors on a device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "limn/limn.h"
#include "pixels.h"

namespace at {
class Tensor;
}
namespace c10 {
struct Device;
}

namespace limn::core {

// Images (all the same size and format) -> tensor [N, H, W, C] on `device`, uint8 for 8-bit
// formats and float for float formats; one host-to-device copy per image, reading only the bytes
// the descriptions cover.
at::Tensor images_to_device(const limn_image* images, size_t count, const c10::Device& device);

// [N, H, W, C] (as from images_to_device) -> float [N, 3, H, W] RGB, 8-bit scaled to [0, 1], in
// one pass. `channels_last` picks the layout of the result (NHWC in memory, or NCHW).
at::Tensor to_network_input(const at::Tensor& pixels, limn_pixel_format format, bool channels_last = true);

// The factor (<= 1) that brings an H x W picture's longer side to at most `max_side` (0: none).
double max_side_scale(int64_t height, int64_t width, int64_t max_side);

// float [N, 3, H, W] resized by `scale` (< 1) with antialiasing, to at least 1 x 1: the working
// picture of the pipelines that downscale (cartoonize's max_side, the detector's).
at::Tensor downscale(const at::Tensor& x, double scale);

// float [N, 3, H, W] RGB (any range and layout; clamped to [0, 1]) plus the input pixels (for
// alpha; may be undefined when the input format has none) -> outputs[i] in their own formats and
// strides; 8-bit outputs round to nearest. On the CPU one pass straight into the caller's memory;
// on a device nothing is written until every image is ready, and device images on limn's own
// stream are waited for (on the caller's stream the writes end queued).
void write_images(const at::Tensor& rgb, const at::Tensor& input_pixels,
                  limn_pixel_format input_format, limn_image* outputs, size_t count);

}  // namespace limn::core
