#include "image.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include <cstring>
#include <string>
#include <vector>

#include "error.h"
#include "memory.h"

namespace limn::core {

namespace {

// The caller's rows as a [H, W, C] tensor where they are (host memory, or the call's device
// images). Strides describe exactly the caller's bytes: the last row is read only up to
// width * channels, never a full stride past it.
at::Tensor view_of(const limn_image& img, const c10::Device& where) {
    const int64_t c = channels_of(img.format);
    const int64_t unit = bytes_per_channel(img.format);
    const at::ScalarType type = is_float(img.format) ? at::kFloat : at::kByte;
    return at::from_blob(img.data, {img.height, img.width, c}, {static_cast<int64_t>(img.stride) / unit, c, 1},
                         at::TensorOptions().dtype(type).device(where));
}

c10::Device images_place() {
    const CallImages& images = call_images();
    return images.on_device() ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(images.device.index))
                              : c10::Device(c10::kCPU);
}

}  // namespace

at::Tensor images_to_device(const limn_image* images, size_t count, const c10::Device& device) {
    const c10::Device where = images_place();  // host memory, or the call's device images
    std::vector<at::Tensor> parts;
    parts.reserve(count);
    for (size_t i = 0; i < count; ++i) {
        const at::Tensor view = view_of(images[i], where);
        if (where == device) {
            // Already there (host images for the CPU, device images for their device): one copy
            // there, since the result must not alias the caller's buffer (input and output may be
            // one); on a device it is queued on the stream, never through the host.
            parts.push_back(view.to(device, /*non_blocking=*/true, /*copy=*/true).contiguous());
        } else {
            // Host images for a device: through pinned memory, one CPU copy out of the caller's rows,
            // then an asynchronous upload on the calling thread's stream (the pinned block is not
            // reused before it ends).
            at::Tensor staged = at::empty(view.sizes(), view.options().pinned_memory(true));
            staged.copy_(view);
            parts.push_back(staged.to(device, /*non_blocking=*/true));
        }
    }
    return count == 1 ? parts[0].unsqueeze(0) : at::stack(parts);
}

double max_side_scale(int64_t height, int64_t width, int64_t max_side) {
    const int64_t longer = std::max(height, width);
    return max_side > 0 && longer > max_side ? double(max_side) / double(longer) : 1.0;
}

at::Tensor downscale(const at::Tensor& x, double scale) {
    const int64_t h = std::max<int64_t>(1, std::llround(double(x.size(2)) * scale));
    const int64_t w = std::max<int64_t>(1, std::llround(double(x.size(3)) * scale));
    return at::_upsample_bilinear2d_aa(x.contiguous(), {h, w}, /*align_corners=*/false);
}

at::Tensor to_network_input(const at::Tensor& pixels, limn_pixel_format format, bool channels_last) {
    at::Tensor rgb = pixels.narrow(3, 0, 3);
    if (is_bgr(format)) rgb = rgb.flip({3});
    // NHWC permuted to NCHW is a channels-last view; the conversion writes the layout asked for.
    rgb = rgb.permute({0, 3, 1, 2});
    at::Tensor out = at::empty(rgb.sizes(), rgb.options().dtype(at::kFloat),
                               channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
    if (is_float(format)) return out.copy_(rgb);
    return at::div_out(out, rgb, 255.0);
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

// The CPU path of write_images: clamp, scale, round, reorder and interleave alpha in one pass over
// the network's output, writing the caller's rows directly (same values as the tensor path).
void write_images_cpu(const at::Tensor& rgb, const at::Tensor& input_pixels, limn_pixel_format input_format,
                      limn_image* outputs, size_t count) {
    const at::Tensor y = rgb.to(at::kFloat);
    const auto acc = y.accessor<float, 4>();  // any strides
    const int64_t H = y.size(2), W = y.size(3);
    const bool in_alpha = has_alpha(input_format) && input_pixels.defined();
    const bool in_float = is_float(input_format);
    const auto clamp01 = [](float f) { return f < 0.0f ? 0.0f : (f > 1.0f ? 1.0f : f); };  // NaN stays
    for (size_t i = 0; i < count; ++i) {
        limn_image& out = outputs[i];
        const bool out_float = is_float(out.format);
        const int c = channels_of(out.format);
        const bool bgr = is_bgr(out.format);
        const bool alpha = has_alpha(out.format);
        const int64_t n = static_cast<int64_t>(i);
        at::Tensor a;  // [H, W] alpha of input i, when both have it
        if (alpha && in_alpha) a = input_pixels.select(0, n).select(2, 3);
        const int64_t as0 = a.defined() ? a.stride(0) : 0, as1 = a.defined() ? a.stride(1) : 0;
        const uint8_t* a8 = a.defined() && !in_float ? a.data_ptr<uint8_t>() : nullptr;
        const float* af = a.defined() && in_float ? a.data_ptr<float>() : nullptr;
        at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
            for (int64_t yy = y0; yy < y1; ++yy) {
                uint8_t* row = out.data + static_cast<size_t>(yy) * out.stride;
                for (int64_t x = 0; x < W; ++x) {
                    const int64_t ai = yy * as0 + x * as1;
                    if (out_float) {
                        float* px = reinterpret_cast<float*>(row) + x * c;
                        for (int k = 0; k < 3; ++k) px[k] = clamp01(acc[n][bgr ? 2 - k : k][yy][x]);
                        if (alpha) px[3] = af ? af[ai] : a8 ? a8[ai] / 255.0f : 1.0f;
                    } else {
                        uint8_t* px = row + x * c;
                        for (int k = 0; k < 3; ++k) {
                            px[k] = static_cast<uint8_t>(std::nearbyint(clamp01(acc[n][bgr ? 2 - k : k][yy][x]) * 255.0f));
                        }
                        if (alpha) {
                            px[3] = a8 ? a8[ai] : af ? static_cast<uint8_t>(std::nearbyint(clamp01(af[ai]) * 255.0f)) : 255;
                        }
                    }
                }
            }
        });
    }
}

}  // namespace

void write_images(const at::Tensor& rgb, const at::Tensor& input_pixels,
                  limn_pixel_format input_format, limn_image* outputs, size_t count) {
    if (rgb.device().is_cpu()) {
        write_images_cpu(rgb, input_pixels, input_format, outputs, count);
        return;
    }
    const at::Tensor clamped = rgb.clamp(0.0, 1.0).permute({0, 2, 3, 1});
    const CallImages& images = call_images();
    at::Tensor quantized;  // made on first use: only 8-bit outputs need it
    // Every image is made ready on the device (and, for host images, one pinned buffer allocated)
    // before any output is written, so that a failure on a later image (out of memory) leaves
    // every output as it was.
    std::vector<at::Tensor> ready;
    ready.reserve(count);
    size_t largest = 0;
    for (size_t i = 0; i < count; ++i) {
        const limn_image& out = outputs[i];
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
        if (!images.on_device()) px = px.contiguous();
        largest = std::max(largest, static_cast<size_t>(px.nbytes()));
        ready.push_back(std::move(px));
    }
    // Host images: each is downloaded in turn into one pinned buffer (the copy waits for the
    // stream), then copied into the caller's rows.
    const at::Tensor pinned = images.on_device() ? at::Tensor()
                                                 : at::empty({static_cast<int64_t>(largest)},
                                                             at::TensorOptions().dtype(at::kByte).pinned_memory(true));
    for (size_t i = 0; i < count; ++i) {
        const limn_image& out = outputs[i];
        if (images.on_device()) {
            // Device images: written in place on the device, in stream order.
            view_of(out, images_place()).copy_(ready[i], /*non_blocking=*/true);
            continue;
        }
        at::from_blob(pinned.data_ptr(), ready[i].sizes(), ready[i].options().device(at::kCPU)).copy_(ready[i]);
        const size_t row = static_cast<size_t>(out.width) * bytes_per_pixel(out.format);
        const auto* src = static_cast<const uint8_t*>(pinned.data_ptr());
        if (out.stride == row) {
            std::memcpy(out.data, src, row * static_cast<size_t>(out.height));
        } else {
            for (int32_t y = 0; y < out.height; ++y) {
                std::memcpy(out.data + static_cast<size_t>(y) * out.stride, src + y * row, row);
            }
        }
    }
    // Device images on limn's own stream: the call (or job) ends when they are written, since
    // nothing of the caller's waits for limn's stream. On the caller's stream it ends queued.
    if (images.on_device() && !images.queued()) synchronize(images.device);
}

}  // namespace limn::core
