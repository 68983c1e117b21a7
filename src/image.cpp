#include "image.h"

#include <ATen/ATen.h>

#include <cstring>
#include <string>

#include "error.h"

namespace limn {

at::Tensor images_to_device(const limn_image* images, size_t count, const c10::Device& device) {
    std::vector<at::Tensor> parts;
    parts.reserve(count);
    for (size_t i = 0; i < count; ++i) {
        const limn_image& img = images[i];
        const int64_t c = channels_of(img.format);
        const int64_t unit = bytes_per_channel(img.format);
        const at::ScalarType type = is_float(img.format) ? at::kFloat : at::kByte;
        // Strides describe exactly the caller's bytes: the last row is read only up to
        // width * channels, never a full stride past it.
        const at::Tensor host = at::from_blob(img.data, {img.height, img.width, c},
                                              {static_cast<int64_t>(img.stride) / unit, c, 1},
                                              at::TensorOptions().dtype(type));
        // copy=true: the result must not alias the caller's buffer (input and output may be one).
        parts.push_back(host.to(device, type, /*non_blocking=*/false, /*copy=*/true).contiguous());
    }
    return count == 1 ? parts[0].unsqueeze(0) : at::stack(parts);
}

at::Tensor to_network_input(const at::Tensor& pixels, limn_pixel_format format) {
    at::Tensor rgb = pixels.narrow(3, 0, 3);
    if (is_bgr(format)) rgb = rgb.flip({3});
    // NHWC permuted to NCHW is a channels-last tensor; the model picks the layout it runs in.
    rgb = rgb.permute({0, 3, 1, 2});
    if (is_float(format)) return rgb.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
    return rgb.to(at::kFloat).div_(255.0f);
}

namespace {

// Alpha of input image i, [H, W, 1], in the output's type (8-bit or float).
at::Tensor alpha_for(const at::Tensor& input_pixels, limn_pixel_format input_format, size_t i,
                     limn_pixel_format output_format, int64_t h, int64_t w) {
    const bool out_float = is_float(output_format);
    const c10::Device device = input_pixels.device();
    if (!has_alpha(input_format)) {
        return out_float ? at::ones({h, w, 1}, at::TensorOptions().dtype(at::kFloat).device(device))
                         : at::full({h, w, 1}, 255, at::TensorOptions().dtype(at::kByte).device(device));
    }
    at::Tensor a = input_pixels.select(0, static_cast<int64_t>(i)).narrow(2, 3, 1);
    if (is_float(input_format) == out_float) return a;
    if (out_float) return a.to(at::kFloat).div_(255.0f);
    return a.clamp(0.0, 1.0).mul(255.0).round_().to(at::kByte);
}

}  // namespace

void write_images(const at::Tensor& rgb, const at::Tensor& input_pixels,
                  limn_pixel_format input_format, limn_image* outputs, size_t count) {
    const at::Tensor clamped = rgb.clamp(0.0, 1.0).permute({0, 2, 3, 1});
    at::Tensor quantized;  // made on first use: only 8-bit outputs need it
    for (size_t i = 0; i < count; ++i) {
        limn_image& out = outputs[i];
        at::Tensor px;
        if (is_float(out.format)) {
            px = clamped.select(0, static_cast<int64_t>(i));
        } else {
            if (!quantized.defined()) quantized = clamped.mul(255.0).round_().to(at::kByte);
            px = quantized.select(0, static_cast<int64_t>(i));
        }
        if (is_bgr(out.format)) px = px.flip({2});
        if (has_alpha(out.format)) {
            px = at::cat({px, alpha_for(input_pixels, input_format, i, out.format, px.size(0), px.size(1))}, 2);
        }
        const at::Tensor host = px.contiguous().to(at::kCPU);
        const size_t row = static_cast<size_t>(out.width) * bytes_per_pixel(out.format);
        const auto* src = static_cast<const uint8_t*>(host.data_ptr());
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
