"""DCT-Net portrait stylisation generator, re-implemented in PyTorch.

This module reproduces, layer for layer, the TensorFlow-1 graph that the
official DCT-Net / ModelScope ``cv_unet_person-image-cartoon_compound-models``
pipeline runs (``cartoon_h.pb`` for the head, ``cartoon_bg.pb`` for the
background; both are the same network with different weights).

Official sources this was checked against (read, not copied):

* ``modelscope/models/cv/cartoon/network.py`` -- ``unet_generator`` and
  ``resblock`` (the UNet).
* ``modelscope/models/cv/cartoon/model_tf.py`` -- ``CartoonModel.__call__``:
  ``output = unet_generator(input_photo)`` then
  ``guided_filter(input_photo, output, r=1)`` (``eps`` keeps its default 1e-2).
* ``modelscope/models/cv/cartoon/loss.py`` -- ``guided_filter`` and
  ``tf_box_filter``.
* ``modelscope/exporters/cv/cartoon_translation_exporter.py`` -- how the frozen
  graph is built: placeholder ``input_image`` of shape ``[H, W, 3]`` (float,
  0..255), ``x / 127.5 - 1``, the model above, ``[0]``,
  ``clip_by_value(-0.999999, 0.999999)``, ``(x + 1) * 127.5``,
  ``cast(uint8)`` named ``output_image``.
* ``modelscope/pipelines/cv/image_cartoon_pipeline.py`` with
  ``modelscope/models/cv/cartoon/utils.py`` and
  ``modelscope/preprocessors/image.py`` (``LoadImage.convert_to_ndarray``
  yields RGB); same flow in ``menyifang/DCT-Net`` ``source/cartoonize.py``:
  the RGB image is resized so its short side is at most 720, fed **BGR**
  (``img[:, :, ::-1]``) in 0..255; the background pass pads it bottom/right
  with white (255) to a multiple of 16 (``padTo16x``) and crops the result;
  each 288x288 aligned head crop is fed as is; the uint8 BGR outputs are
  blended and returned (BGR, as ``cv2.imwrite`` expects).
* TF kernels: ``tf.nn.leaky_relu`` has ``alpha=0.2``; ``slim.convolution2d``
  defaults to ``padding='SAME'``, bias on, scope default name ``'Conv'`` with
  variables ``weights`` (HWIO) and ``biases``;
  ``tf.image.resize_bilinear`` (TF1) defaults to ``align_corners=False,
  half_pixel_centers=False`` (``LegacyScaler``: ``src = dst * in / out``,
  ``lower = floor(src)``, ``upper = min(ceil(src), in - 1)``).

Network (``channel=32, num_blocks=4``; every conv has a bias, no norm layers)::

    x0 = lrelu(Conv   7x7  3->32)                       full res
    x1 = lrelu(Conv_1 3x3 32->32 stride 2)               1/2
    x1 = lrelu(Conv_2 3x3 32->64)
    x2 = lrelu(Conv_3 3x3 64->64 stride 2)               1/4
    x2 = lrelu(Conv_4 3x3 64->128)
    4 x  x2 = x2 + block_i/conv2(lrelu(block_i/conv1(x2)))   (no act after add)
    x2 = lrelu(Conv_5 3x3 128->64)
    x3 = resize_bilinear(x2, 2*h(x2), 2*w(x2))           1/2
    x3 = lrelu(Conv_6 3x3 64->64 of (x3 + x1))           (the sum is not activated)
    x3 = lrelu(Conv_7 3x3 64->32)
    x4 = resize_bilinear(x3, 2*h(x3), 2*w(x3))           full res
    x4 = lrelu(Conv_8 3x3 32->32 of (x4 + x0))
    x4 = Conv_9 7x7 32->3                                (linear; no tanh, the
                                                          clip is commented out)
    out = guided_filter(guide=input, src=x4, r=1, eps=1e-2)

Note that the resize targets twice the *low-resolution* tensor's dynamic shape
(``tf.shape(x2)[1] * 2``), not the skip tensor's shape, so the official graph
only runs when H and W are multiples of 4 (see ``SIZE_MULTIPLE``).
"""

from typing import Dict, List, Mapping, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "SIZE_MULTIPLE",
    "TILE_MARGIN",
    "HEAD_CROP_SIZE",
    "HEAD_TEMPLATE",
    "head_metadata_fields",
    "LRELU_SLOPE",
    "GUIDED_FILTER_RADIUS",
    "GUIDED_FILTER_EPS",
    "OUTPUT_CLIP",
    "TF_SCOPE",
    "TF_LAYERS",
    "TF_NAME_TO_PARAM",
    "tf_name_to_param",
    "tf_same_pad",
    "tf_legacy_resize_bilinear",
    "tf_legacy_upsample_x2",
    "box_filter",
    "guided_filter",
    "TFConv2d",
    "ResBlock",
    "DCTNetGenerator",
    "DCTNetRGB",
    "dctnet_random_init",
    "load_tf_variables",
]

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

#: Size rule of the official graph: H and W must be multiples of 4.
#: There are two stride-2 SAME convs (sizes ceil(H/2), ceil(ceil(H/2)/2)) and
#: each decoder stage resizes to exactly *twice* the lower-resolution tensor's
#: size before adding the skip tensor, so the add only type-checks when
#: 2*ceil(ceil(H/2)/2) == ceil(H/2) and 2*ceil(H/2) == H, i.e. H % 4 == 0
#: (same for W).  The official pipeline pads the background image to a
#: multiple of 16 (``padTo16x``, white, bottom/right) which is stricter than
#: needed; the 288x288 head crop is already a multiple of 4 (and of 16).
#: ``DCTNetGenerator`` accepts any size: it edge-pads bottom/right up to this
#: multiple and crops the result, so for sizes that are already multiples of 4
#: it is exactly the official graph.
SIZE_MULTIPLE: int = 4

#: The head network's input in the official compound pipeline: a 288x288 crop, aligned by a
#: similarity transform that puts the face's 5 points (left eye, right eye, nose tip, left and
#: right mouth corner) on these reference points, in pixels of the crop. They come from the
#: classic 96x112 five-point template, squared to 112, zoomed by 0.75 and scaled to 288.
HEAD_CROP_SIZE: int = 288
HEAD_TEMPLATE: Tuple[float, ...] = (111.8, 137.6, 179.7, 137.3, 146.0, 176.3, 118.1, 216.1, 174.3, 215.8)


def head_metadata_fields() -> dict:
    """The metadata fields that mark a DCT-Net file as a head network (``Metadata(**...)``)."""
    return dict(role="head", crop_size=HEAD_CROP_SIZE, face_template=list(HEAD_TEMPLATE))


#: Margin (pixels, on every side of a tile) that tiled inference should use.
#: Receptive field of one output pixel, in input pixels (each layer adds its
#: kernel radius times its input stride-jump):
#:   Conv 7x7 (3) + Conv_1 s2 (1) + Conv_2 at 1/2 (2) + Conv_3 s2 (2)
#:   + Conv_4, 8 res-block convs, Conv_5 at 1/4 (10 * 4 = 40)
#:   + Conv_6, Conv_7 at 1/2 (2 * 2) + Conv_8 (1) + Conv_9 7x7 (3)
#:   + guided filter r=1 applied twice (box for A/b, box for mean_A/b: 2)
#:   = 58 px on each side, plus one-sided reach of the legacy bilinear x2
#:   resizes (they read ``in[i + 1]``): +4 (from 1/4 res) +2 (from 1/2 res)
#:   towards the bottom/right = 64 px.
#: Measured as the gradient support over all 4x4 output phases: at most 58 px
#: up/left and 64 px down/right (``test_receptive_field_fits_tile_margin``;
#: ``test_tile_margin_is_exact`` checks that tiling with it is exact).  64 is also a
#: multiple of ``SIZE_MULTIPLE``, so a tile that starts ``TILE_MARGIN`` before
#: a 4-aligned core is itself 4-aligned: the stride-2 SAME convolutions and
#: the x2 resizes then sample exactly the positions of a full-image run and
#: the kept core of every tile equals the full-image result (up to float
#: rounding).  Requirements for exact tiling: tile origins on the 4-pixel grid
#: and ``TILE_MARGIN`` of real image context on every side that is not an
#: image border.  The *effective* receptive field is much smaller; a smaller
#: margin only trades exactness for speed.
TILE_MARGIN: int = 64

#: ``tf.nn.leaky_relu`` default slope.
LRELU_SLOPE: float = 0.2

#: ``guided_filter(input_photo, output, r=1)`` with the default ``eps``.
GUIDED_FILTER_RADIUS: int = 1
GUIDED_FILTER_EPS: float = 1e-2

#: The exporter clips the guided-filter output to +-OUTPUT_CLIP before
#: ``(x + 1) * 127.5`` and the (truncating) uint8 cast.
OUTPUT_CLIP: float = 0.999999

#: Variable scope of the generator (``unet_generator(name='generator')``).
TF_SCOPE: str = "generator"

#: (TF variable scope below ``generator/``, torch module path, in, out,
#: kernel, stride), in graph order.  Un-named ``slim.convolution2d`` calls get
#: the default scope ``Conv`` uniquified per parent scope (``Conv``,
#: ``Conv_1``, ...); the residual blocks use explicit scopes ``block_{i}`` with
#: ``conv1``/``conv2`` inside and therefore do not consume ``Conv_N`` indices.
TF_LAYERS: List[Tuple[str, str, int, int, int, int]] = [
    ("Conv", "conv", 3, 32, 7, 1),
    ("Conv_1", "conv_1", 32, 32, 3, 2),
    ("Conv_2", "conv_2", 32, 64, 3, 1),
    ("Conv_3", "conv_3", 64, 64, 3, 2),
    ("Conv_4", "conv_4", 64, 128, 3, 1),
    ("block_0/conv1", "blocks.0.conv1", 128, 128, 3, 1),
    ("block_0/conv2", "blocks.0.conv2", 128, 128, 3, 1),
    ("block_1/conv1", "blocks.1.conv1", 128, 128, 3, 1),
    ("block_1/conv2", "blocks.1.conv2", 128, 128, 3, 1),
    ("block_2/conv1", "blocks.2.conv1", 128, 128, 3, 1),
    ("block_2/conv2", "blocks.2.conv2", 128, 128, 3, 1),
    ("block_3/conv1", "blocks.3.conv1", 128, 128, 3, 1),
    ("block_3/conv2", "blocks.3.conv2", 128, 128, 3, 1),
    ("Conv_5", "conv_5", 128, 64, 3, 1),
    ("Conv_6", "conv_6", 64, 64, 3, 1),
    ("Conv_7", "conv_7", 64, 32, 3, 1),
    ("Conv_8", "conv_8", 32, 32, 3, 1),
    ("Conv_9", "conv_9", 32, 3, 7, 1),
]


def tf_name_to_param(scope: str = TF_SCOPE) -> Dict[str, str]:
    """Map TF variable names to ``DCTNetGenerator`` state-dict keys.

    Keys are ``"{scope}/{layer}/weights"`` and ``"{scope}/{layer}/biases"``
    (e.g. ``generator/Conv_3/weights``, ``generator/block_2/conv1/biases``).
    In a frozen graph (``convert_variables_to_constants``) these are the
    names of the ``Const`` nodes (the ``.../read`` Identity nodes read them);
    the pipeline imports the graph under an extra prefix such as
    ``model_anime_head/`` which is not stored in the ``.pb`` itself.

    TF ``weights`` are HWIO ``[kh, kw, in, out]`` and must be permuted to
    torch OIHW with ``permute(3, 2, 0, 1)``; ``biases`` are copied as is.
    Input channel 0..2 of ``Conv`` are B, G, R (the graph input is BGR).
    """
    mapping: Dict[str, str] = {}
    for tf_layer, torch_path, _cin, _cout, _k, _s in TF_LAYERS:
        mapping[scope + "/" + tf_layer + "/weights"] = torch_path + ".weight"
        mapping[scope + "/" + tf_layer + "/biases"] = torch_path + ".bias"
    return mapping


#: Default mapping (scope ``generator``): 36 entries, 18 convs x (weights, biases).
TF_NAME_TO_PARAM: Dict[str, str] = tf_name_to_param()


# ---------------------------------------------------------------------------
# TF-compatible primitives
# ---------------------------------------------------------------------------


def _same_pads(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TF ``SAME`` padding (before, after) along one spatial axis."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return before, total - before


def tf_same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Zero-pad an NCHW tensor the way TF ``padding='SAME'`` does.

    Output size of the following VALID conv is ``ceil(n / stride)``; the total
    pad ``max((out - 1) * stride + kernel - n, 0)`` is split with the smaller
    half *before* (top/left) and the larger half *after* (bottom/right).
    E.g. 3x3 stride 2 on an even size pads (0, 1), on an odd size (1, 1);
    stride 1 with an odd kernel ``k`` pads ``k // 2`` on both sides.
    Sizes are read from ``x`` at run time (nothing is baked).
    """
    h = x.size(2)
    w = x.size(3)
    top, bottom = _same_pads(h, kernel, stride)
    left, right = _same_pads(w, kernel, stride)
    if top == 0 and bottom == 0 and left == 0 and right == 0:
        return x
    return F.pad(x, [left, right, top, bottom])


def _legacy_axis(out_size: int, in_size: int, device: torch.device) -> Tuple[Tensor, Tensor, Tensor]:
    """Indices and weights of TF1 ``LegacyScaler`` bilinear along one axis."""
    # CalculateResizeScale: float(in) / out, in float32.
    scale = torch.tensor(float(in_size), dtype=torch.float32, device=device) / torch.tensor(
        float(out_size), dtype=torch.float32, device=device
    )
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale
    src_floor = torch.floor(src)
    lower = src_floor.to(torch.long).clamp(min=0)
    upper = torch.ceil(src).to(torch.long).clamp(max=in_size - 1)
    lerp = src - src_floor
    return lower, upper, lerp


def tf_legacy_resize_bilinear(x: Tensor, out_h: int, out_w: int) -> Tensor:
    """``tf.image.resize_bilinear(align_corners=False, half_pixel_centers=False)``.

    NCHW float input.  Source coordinate ``src = dst * (in / out)`` (no
    half-pixel offset), ``lower = floor(src)``, ``upper = min(ceil(src), in-1)``
    (clamp at the bottom/right edge), ``lerp = src - floor(src)``; the value is
    interpolated along x first, then y, in the same order as TF's
    ``compute_lerp``.  For an exact x2 upscale this gives
    ``out[2i] = in[i]`` and ``out[2i+1] = (in[i] + in[i+1]) / 2`` except the
    last odd row/column, which repeats the last input value.
    """
    in_h = x.size(2)
    in_w = x.size(3)
    if in_h == out_h and in_w == out_w:
        return x  # TF short-cuts no-op resizes as well
    y0, y1, ly = _legacy_axis(out_h, in_h, x.device)
    x0, x1, lx = _legacy_axis(out_w, in_w, x.device)
    ly = ly.to(x.dtype).view(1, 1, out_h, 1)
    lx = lx.to(x.dtype).view(1, 1, 1, out_w)
    top_rows = x.index_select(2, y0)
    bottom_rows = x.index_select(2, y1)
    top_left = top_rows.index_select(3, x0)
    top_right = top_rows.index_select(3, x1)
    bottom_left = bottom_rows.index_select(3, x0)
    bottom_right = bottom_rows.index_select(3, x1)
    top = top_left + (top_right - top_left) * lx
    bottom = bottom_left + (bottom_right - bottom_left) * lx
    return top + (bottom - top) * ly


def tf_legacy_upsample_x2(x: Tensor) -> Tensor:
    """``tf_legacy_resize_bilinear(x, 2 * H, 2 * W)`` as a fixed stencil: no gather and no index
    tensors, so it costs a few pointwise passes and exports with symbolic sizes.

    For an exact x2 upscale the legacy scaler reads ``src = dst / 2``, so along each axis
    ``out[2i] = in[i]`` and ``out[2i + 1] = in[i] + (in[i + 1] - in[i]) * 0.5`` with ``in[i + 1]``
    clamped to the last sample. The arithmetic is the reference's, in its order (x first, then y),
    so the result is bit-identical to :func:`tf_legacy_resize_bilinear`.
    """
    n = x.size(0)
    c = x.size(1)
    h = x.size(2)
    w = x.size(3)
    nxt = F.pad(x, [0, 1, 0, 0], mode="replicate")[:, :, :, 1:]
    rows = torch.stack([x, x + (nxt - x) * 0.5], 4).reshape(n, c, h, 2 * w)
    nxt = F.pad(rows, [0, 0, 0, 1], mode="replicate")[:, :, 1:]
    return torch.stack([rows, rows + (nxt - rows) * 0.5], 3).reshape(n, c, 2 * h, 2 * w)


def box_filter(x: Tensor, r: int) -> Tensor:
    """``tf_box_filter``: ``(2r+1)^2`` window mean per channel, zero SAME padding.

    Each output is ``sum(window) / (2r+1)^2`` with zeros outside the image,
    i.e. *not* normalised at the border; ``guided_filter`` divides by the same
    filter applied to a ones image. Computed as two passes of shifted sums (rows, then
    columns) rather than a depthwise convolution: the same value up to float rounding, at a
    fraction of the cost for 3 channels.
    """
    h = x.size(2)
    w = x.size(3)
    k = 2 * r + 1
    padded = F.pad(x, [r, r, r, r])
    rows = padded[:, :, :, 0:w]
    for i in range(1, k):
        rows = rows + padded[:, :, :, i : i + w]
    out = rows[:, :, 0:h]
    for i in range(1, k):
        out = out + rows[:, :, i : i + h]
    return out * (1.0 / float(k * k))


def guided_filter(x: Tensor, y: Tensor, r: int, eps: float) -> Tensor:
    """Fast guided filter of ``y`` guided by ``x`` (He et al.), per channel.

    Same as the official ``guided_filter(x, y, r, eps)``: with
    ``N = box(ones)``, ``mean_x = box(x)/N``, ``mean_y = box(y)/N``,
    ``cov_xy = box(x*y)/N - mean_x*mean_y``, ``var_x = box(x*x)/N - mean_x^2``,
    ``A = cov_xy / (var_x + eps)``, ``b = mean_y - A*mean_x`` and the result
    ``box(A)/N * x + box(b)/N``.  Channels are filtered independently (the
    guide is not a colour guide); in DCT-Net ``x`` is the network input (BGR,
    [-1, 1]) and ``y`` the UNet output, both 3 channels.
    """
    h = x.size(2)
    w = x.size(3)
    n = box_filter(torch.ones((1, 1, h, w), dtype=x.dtype, device=x.device), r)
    mean_x = box_filter(x, r) / n
    mean_y = box_filter(y, r) / n
    cov_xy = box_filter(x * y, r) / n - mean_x * mean_y
    var_x = box_filter(x * x, r) / n - mean_x * mean_x
    a = cov_xy / (var_x + eps)
    b = mean_y - a * mean_x
    mean_a = box_filter(a, r) / n
    mean_b = box_filter(b, r) / n
    return mean_a * x + mean_b


def guided_filter_planes(x: Tensor, y: Tensor, r: int, eps: float) -> Tensor:
    """:func:`guided_filter` as DCT-Net runs it: in fp32, each channel a plane of its own.

    The same values as ``guided_filter(x, y, r, eps)`` in fp32 (the channels are independent),
    returned in ``y``'s dtype. fp32 because the variance terms (``box(x*x)/N - mean_x^2``) cancel
    catastrophically in bf16 and fp16. Planes because a network's 3-channel output is
    channels-last on the CPU, and compiled code (AOTInductor) then vectorises across 3 channels,
    masking 13 of 16 lanes: as [N*C, 1, H, W] it vectorises along the rows. Measured on DCT-Net
    at 1024 px in a bf16 package: 2.15 s before, 0.93 s after (BENCHMARKS.md).
    """
    n = x.size(0)
    c = x.size(1)
    h = x.size(2)
    w = x.size(3)
    xs = x.float().reshape(n * c, 1, h, w)
    ys = y.float().reshape(n * c, 1, h, w)
    return guided_filter(xs, ys, r, eps).reshape(n, c, h, w).to(y.dtype)


# ---------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------


class TFConv2d(nn.Module):
    """2-D convolution with bias and TF ``SAME`` padding computed per call.

    ``weight`` is OIHW, ``bias`` has ``out_channels`` entries.  Stride-1
    convs with an odd kernel use the (identical, symmetric) built-in padding;
    everything else pads explicitly with ``tf_same_pad``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel = kernel
        self.stride = stride
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1 and self.kernel % 2 == 1:
            return F.conv2d(x, self.weight, self.bias, 1, self.kernel // 2)
        if self.stride == 2 and self.kernel == 3 and x.size(2) % 2 == 0 and x.size(3) % 2 == 0:
            # TF pads an even axis by (0, 1) for this conv: output i reads inputs 2i .. 2i + 2.
            # A 4x4 kernel with a zero first row and column and symmetric padding 1 reads
            # 2i - 1 .. 2i + 2 with the first tap zero: the same sums, without a padded copy
            # of the input.
            return F.conv2d(x, F.pad(self.weight, [1, 0, 1, 0]), self.bias, 2, 1)
        x = tf_same_pad(x, self.kernel, self.stride)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0)

    def extra_repr(self) -> str:
        return "{}, {}, kernel={}, stride={}, padding=TF-SAME".format(
            self.in_channels, self.out_channels, self.kernel, self.stride
        )


class ResBlock(nn.Module):
    """``resblock``: ``x + conv2(lrelu(conv1(x)))``, no activation after the add."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = TFConv2d(channels, channels, 3)
        self.conv2 = TFConv2d(channels, channels, 3)
        self.slope: float = LRELU_SLOPE

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), self.slope))


class DCTNetGenerator(nn.Module):
    """The DCT-Net generator graph: UNet followed by the guided filter.

    ``forward(x)``: ``x`` is NCHW float32, **BGR**, scaled to [-1, 1]
    (``pixel / 127.5 - 1``), exactly the tensor the official graph builds from
    its ``input_image`` placeholder.  It returns the official
    ``output_cartoon`` tensor (guided-filter output, BGR, roughly [-1, 1],
    *not* clipped), i.e. the value right before the exporter's
    ``clip_by_value`` / ``(x+1)*127.5`` / ``cast(uint8)`` nodes.  Output shape
    equals input shape.

    When H or W is not a multiple of ``SIZE_MULTIPLE`` (the official graph
    fails on such sizes) the input is edge-replicated at the bottom/right up
    to the next multiple, and the result is cropped back.  This keeps the
    stride-2 sampling grid of the trained configuration (top/left aligned).
    """

    def __init__(self, channel: int = 32, num_blocks: int = 4) -> None:
        super().__init__()
        c = channel
        self.conv = TFConv2d(3, c, 7)
        self.conv_1 = TFConv2d(c, c, 3, 2)
        self.conv_2 = TFConv2d(c, 2 * c, 3)
        self.conv_3 = TFConv2d(2 * c, 2 * c, 3, 2)
        self.conv_4 = TFConv2d(2 * c, 4 * c, 3)
        self.blocks = nn.ModuleList([ResBlock(4 * c) for _ in range(num_blocks)])
        self.conv_5 = TFConv2d(4 * c, 2 * c, 3)
        self.conv_6 = TFConv2d(2 * c, 2 * c, 3)
        self.conv_7 = TFConv2d(2 * c, c, 3)
        self.conv_8 = TFConv2d(c, c, 3)
        self.conv_9 = TFConv2d(c, 3, 7)
        # plain attributes (TorchScript cannot close over module globals)
        self.slope: float = LRELU_SLOPE
        self.size_multiple: int = SIZE_MULTIPLE
        self.gf_radius: int = GUIDED_FILTER_RADIUS
        self.gf_eps: float = GUIDED_FILTER_EPS

    def unet(self, x: Tensor) -> Tensor:
        """``unet_generator``: raw UNet output (before the guided filter).

        Requires H and W to be multiples of ``SIZE_MULTIPLE`` (as in TF).
        """
        s = self.slope
        x0 = F.leaky_relu(self.conv(x), s)
        x1 = F.leaky_relu(self.conv_1(x0), s)
        x1 = F.leaky_relu(self.conv_2(x1), s)
        x2 = F.leaky_relu(self.conv_3(x1), s)
        x2 = F.leaky_relu(self.conv_4(x2), s)
        for block in self.blocks:
            x2 = block(x2)
        x2 = F.leaky_relu(self.conv_5(x2), s)
        # resize to twice x2's own dynamic size (tf.shape(x2)[1:3] * 2)
        x3 = tf_legacy_upsample_x2(x2)
        x3 = F.leaky_relu(self.conv_6(x3 + x1), s)
        x3 = F.leaky_relu(self.conv_7(x3), s)
        x4 = tf_legacy_upsample_x2(x3)
        x4 = F.leaky_relu(self.conv_8(x4 + x0), s)
        return self.conv_9(x4)

    def forward(self, x: Tensor) -> Tensor:
        h = x.size(2)
        w = x.size(3)
        m = self.size_multiple
        pad_h = (m - h % m) % m
        pad_w = (m - w % m) % m
        if pad_h != 0 or pad_w != 0:
            x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")
        out = guided_filter_planes(x, self.unet(x), self.gf_radius, self.gf_eps)
        if pad_h != 0 or pad_w != 0:
            out = out[:, :, :h, :w]
        return out


class DCTNetRGB(nn.Module):
    """RGB [0, 1] in, RGB [0, 1] out wrapper around ``DCTNetGenerator``.

    Does inside the graph what the official pipeline/exporter does around the
    network: RGB -> BGR, ``pixel / 127.5 - 1`` (== ``x * 2 - 1`` for
    ``x = pixel / 255``), the generator, ``clip(+-0.999999)`` and
    ``(y + 1) * 127.5`` (here ``(y + 1) / 2``), BGR -> RGB.  The official
    exporter then casts to uint8 by truncation, so its outputs are
    ``floor(255 * v)`` (at most 254); callers wanting the rounded value use
    ``round(255 * v)``.
    """

    def __init__(self, generator: DCTNetGenerator) -> None:
        super().__init__()
        self.generator = generator
        self.clip: float = OUTPUT_CLIP

    def forward(self, x: Tensor) -> Tensor:
        bgr = torch.flip(x, [1]) * 2.0 - 1.0
        y = self.generator(bgr)
        y = (torch.clamp(y, -self.clip, self.clip) + 1.0) * 0.5
        return torch.flip(y, [1])


# ---------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------


def dctnet_random_init(seed: int) -> DCTNetGenerator:
    """A ``DCTNetGenerator`` with deterministic random weights.

    He-normal weights for the LeakyReLU slope (``std = gain / sqrt(fan_in)``),
    the second conv of each residual block scaled by 0.2 so that the residual
    stream does not grow, the linear output conv scaled so the output stays
    well inside [-1, 1] (std around 0.3), and small uniform biases (+-0.05) so
    that bias handling is exercised.  Uses its own ``torch.Generator``; the
    global RNG is untouched.
    """
    gen = torch.Generator().manual_seed(int(seed))
    model = DCTNetGenerator()
    gain = (2.0 / (1.0 + LRELU_SLOPE * LRELU_SLOPE)) ** 0.5
    with torch.no_grad():
        for _tf_layer, torch_path, cin, cout, k, _s in TF_LAYERS:
            conv = model.get_submodule(torch_path)
            assert isinstance(conv, TFConv2d)
            std = gain / float(cin * k * k) ** 0.5
            if torch_path.endswith("conv2"):
                std *= 0.2
            if torch_path == "conv_9":
                std = 0.5 / float(cin * k * k) ** 0.5
            conv.weight.copy_(torch.randn(cout, cin, k, k, generator=gen) * std)
            conv.bias.copy_((torch.rand(cout, generator=gen) * 2.0 - 1.0) * 0.05)
    return model.eval()


def load_tf_variables(
    model: DCTNetGenerator, tensors: Mapping[str, object], scope: str = TF_SCOPE
) -> DCTNetGenerator:
    """Load TF generator variables (name -> array-like) into ``model``.

    Names may carry an import prefix (``model_anime_head/generator/...``) and a
    ``:0`` suffix.  ``weights`` are HWIO and are permuted to OIHW.  Every one
    of the 36 variables must be present exactly once with the expected shape.
    """
    wanted = tf_name_to_param(scope)
    found: Dict[str, Tensor] = {}
    for name, value in tensors.items():
        key = name[:-2] if name.endswith(":0") else name
        marker = scope + "/"
        pos = key.find(marker)
        if pos < 0:
            continue
        key = key[pos:]
        if key not in wanted:
            continue
        if key in found:
            raise ValueError("duplicate TF variable " + key)
        found[key] = torch.as_tensor(value, dtype=torch.float32)
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise ValueError("missing TF variables: " + ", ".join(missing))
    state = model.state_dict()
    with torch.no_grad():
        for key, param_name in wanted.items():
            value = found[key]
            if key.endswith("/weights"):
                value = value.permute(3, 2, 0, 1)
            if tuple(value.shape) != tuple(state[param_name].shape):
                raise ValueError(
                    "shape mismatch for {}: {} vs {}".format(
                        key, tuple(value.shape), tuple(state[param_name].shape)
                    )
                )
            state[param_name].copy_(value.contiguous())
    return model
