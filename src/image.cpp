#include "image.h"

#include <ATen/ATen.h>

#include <cstring>
#include <string>

#include "error.h"

namespace limn {

int channels_of(limn_pixel_format format) {
    switch (format) {
        case LIMN_PIXEL_RGB8:
        case LIMN_PIXEL_BGR8: return 3;
        case LIMN_PIXEL_RGBA8:
        case LIMN_PIXEL_BGRA8: return 4;
    }
    return 0;
}

const char* format_name(limn_pixel_format format) {
    switch (format) {
        case LIMN_PIXEL_RGB8: return "RGB8";
        case LIMN_PIXEL_RGBA8: return "RGBA8";
        case LIMN_PIXEL_BGR8: return "BGR8";
        case LIMN_PIXEL_BGRA8: return "BGRA8";
    }
    return "unknown";
}

bool has_alpha(limn_pixel_format format) { return channels_of(format) == 4; }

bool is_bgr(limn_pixel_format format) {
    return format == LIMN_PIXEL_BGR8 || format == LIMN_PIXEL_BGRA8;
}

void check_image(const limn_image* image, const char* what, uint64_t max_pixels) {
    const std::string name(what);
    if (!image) fail(LIMN_ERR_INVALID_ARGUMENT, name + " image is NULL");
    const int c = channels_of(image->format);
    if (c == 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, name + " image has unknown pixel format " +
                                            std::to_string(static_cast<int>(image->format)));
    }
    if (image->width <= 0 || image->height <= 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, name + " image size " + std::to_string(image->width) + "x" +
                                            std::to_string(image->height) + " is not positive");
    }
    if (!image->data) fail(LIMN_ERR_INVALID_ARGUMENT, name + " image data is NULL");
    const size_t row = static_cast<size_t>(image->width) * static_cast<size_t>(c);
    if (image->stride < row) {
        fail(LIMN_ERR_INVALID_ARGUMENT, name + " image stride " + std::to_string(image->stride) +
                                            " is less than width * channels = " + std::to_string(row));
    }
    const uint64_t pixels = static_cast<uint64_t>(image->width) * static_cast<uint64_t>(image->height);
    if (max_pixels > 0 && pixels > max_pixels) {
        fail(LIMN_ERR_IMAGE_TOO_LARGE, name + " image " + std::to_string(image->width) + "x" +
                                           std::to_string(image->height) + " has " +
                                           std::to_string(pixels) + " pixels, over the limit of " +
                                           std::to_string(max_pixels));
    }
}

at::Tensor images_to_device(const limn_image* images, size_t count, const c10::Device& device) {
    std::vector<at::Tensor> parts;
    parts.reserve(count);
    for (size_t i = 0; i < count; ++i) {
        const limn_image& img = images[i];
        const int64_t c = channels_of(img.format);
        // Strides describe exactly the caller's bytes: the last row is read only up to
        // width * channels, never a full stride past it.
        const at::Tensor host = at::from_blob(img.data, {img.height, img.width, c},
                                              {static_cast<int64_t>(img.stride), c, 1},
                                              at::TensorOptions().dtype(at::kByte));
        // copy=true: the result must not alias the caller's buffer (input and output may be one).
        parts.push_back(host.to(device, at::kByte, /*non_blocking=*/false, /*copy=*/true).contiguous());
    }
    return count == 1 ? parts[0].unsqueeze(0) : at::stack(parts);
}

at::Tensor to_network_input(const at::Tensor& pixels, limn_pixel_format format) {
    at::Tensor rgb = pixels.narrow(3, 0, 3);
    if (is_bgr(format)) rgb = rgb.flip({3});
    // NHWC permuted to NCHW is a channels-last tensor; the model picks the layout it runs in.
    return rgb.permute({0, 3, 1, 2}).to(at::kFloat).div_(255.0f);
}

void write_images(const at::Tensor& rgb, const at::Tensor& input_pixels,
                  limn_pixel_format input_format, limn_image* outputs, size_t count) {
    const at::Tensor q = rgb.clamp(0.0, 1.0).mul_(255.0).round_().to(at::kByte).permute({0, 2, 3, 1});
    for (size_t i = 0; i < count; ++i) {
        limn_image& out = outputs[i];
        at::Tensor px = q.select(0, static_cast<int64_t>(i));
        if (is_bgr(out.format)) px = px.flip({2});
        if (has_alpha(out.format)) {
            const at::Tensor alpha =
                has_alpha(input_format)
                    ? input_pixels.select(0, static_cast<int64_t>(i)).narrow(2, 3, 1)
                    : at::full({px.size(0), px.size(1), 1}, 255, px.options());
            px = at::cat({px, alpha}, 2);
        }
        const at::Tensor host = px.contiguous().to(at::kCPU);
        const size_t row = static_cast<size_t>(out.width) * channels_of(out.format);
        const uint8_t* src = host.data_ptr<uint8_t>();
        if (out.stride == row) {
            std::memcpy(out.data, src, row * static_cast<size_t>(out.height));
        } else {
            for (int32_t y = 0; y < out.height; ++y) {
                std::memcpy(out.data + static_cast<size_t>(y) * out.stride, src + y * row, row);
            }
        }
    }
}

}  // namespace limn
