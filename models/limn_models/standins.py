"""Classical (non-neural) stand-in models, so limn works without downloaded weights.

These are **not** neural networks and hold no learned weights: they are hand-written image
filters built from plain tensor operations, exported in the limn file format so that the
library's cartoon and face-restoration paths can run out of the box (and in tests) before
real model weights are installed.

* :class:`ClassicalCartoon` (kind ``cartoon``): iterated self-guided filtering (edge-preserving
  smoothing), soft colour quantisation in a luma/chroma space and dark outlines from a soft
  thresholded difference of Gaussians, in the spirit of Winnemoeller et al., "Real-time video
  abstraction" (SIGGRAPH 2006).  Any image size (``size_multiple`` 1), including 1x1.
* :class:`DetailEnhanceFace` (kind ``face_restore``): mild edge-preserving denoise and a
  guided-filter base/detail split with a structure-aware, soft-limited detail boost on luma
  (features get sharper, smooth skin does not get grainier); meant for
  aligned face crops of a fixed size (the GPEN 5-point template, :func:`gpen.face_template`).

Both take float[N,3,H,W] RGB in [0,1] in any floating dtype and return the same layout, range
and dtype.  They compute internally in float32 (the box-filter variances of the guided filter
lose too much in fp16/bf16), which costs nothing noticeable next to a neural network.  Every
padding is ``replicate``, which works for any size (``reflect`` fails when the pad is not
smaller than the size), and there is no data-dependent control flow.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CARTOON_SMOOTH_RADIUS",
    "CARTOON_SMOOTH_ITERATIONS",
    "CARTOON_EDGE_SIGMA",
    "CARTOON_EDGE_K",
    "CARTOON_TILE_MARGIN",
    "cartoon_receptive_radius",
    "box_filter_replicate",
    "gaussian_blur_replicate",
    "self_guided_filter",
    "soft_quantize",
    "luma",
    "ClassicalCartoon",
    "DetailEnhanceFace",
]

# ---------------------------------------------------------------------------
# Parameters of the cartoon filter (pixels refer to the input image)
# ---------------------------------------------------------------------------

#: Box radius of each self-guided filter pass.
CARTOON_SMOOTH_RADIUS: int = 4
#: Number of self-guided filter passes.
CARTOON_SMOOTH_ITERATIONS: int = 3
#: Inner Gaussian sigma of the difference-of-Gaussians edge detector.
CARTOON_EDGE_SIGMA: float = 1.0
#: Ratio of the outer to the inner DoG sigma.
CARTOON_EDGE_K: float = 1.6


def _gauss_radius(sigma: float) -> int:
    return max(1, int(3.0 * sigma + 0.999))


def cartoon_receptive_radius(smooth_radius: int, iterations: int, edge_sigma: float,
                             edge_k: float) -> int:
    """Receptive-field radius (pixels) of :class:`ClassicalCartoon` with these parameters.

    Each self-guided filter pass reads two box filters deep (``2 * smooth_radius``); the
    colours come from all ``iterations`` passes, the outlines from the first pass followed by
    the DoG's wider Gaussian (``ceil(3 * k * sigma)`` more), so it is the larger of the two.
    """
    colours = iterations * 2 * smooth_radius
    outlines = (2 * smooth_radius if iterations > 0 else 0) + _gauss_radius(edge_k * edge_sigma)
    return max(colours, outlines)


#: Tile margin of :class:`ClassicalCartoon` with its defaults: its receptive-field radius,
#: 24 px (3 passes x 2 x 4 px).  With this much real image context on every side of a tile
#: that is not an image border, the tile's core equals the full-image result up to float
#: rounding (``test_cartoon_tile_margin_is_exact``, ``test_cartoon_receptive_field_...``).
CARTOON_TILE_MARGIN: int = cartoon_receptive_radius(
    CARTOON_SMOOTH_RADIUS, CARTOON_SMOOTH_ITERATIONS, CARTOON_EDGE_SIGMA, CARTOON_EDGE_K
)


# ---------------------------------------------------------------------------
# Helpers (all TorchScript-compatible)
# ---------------------------------------------------------------------------


def box_filter_replicate(x: Tensor, r: int) -> Tensor:
    """Mean over a ``(2r+1)^2`` window with replicate padding (any size >= 1).

    Separable depthwise convolutions: on the CPU these are several times faster than
    ``avg_pool2d`` or cumulative sums.
    """
    if r <= 0:
        return x
    c = x.size(1)
    k = 2 * r + 1
    w = torch.full((c, 1, 1, k), 1.0 / float(k), dtype=x.dtype, device=x.device)
    x = F.pad(x, [r, r, r, r], mode="replicate")
    x = F.conv2d(x, w, None, 1, 0, 1, c)
    return F.conv2d(x, w.view(c, 1, k, 1), None, 1, 0, 1, c)


def _gauss_kernel(sigma: float, radius: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return (g / g.sum()).to(dtype)


def gaussian_blur_replicate(x: Tensor, sigma: float, radius: int) -> Tensor:
    """Separable depthwise Gaussian blur (truncated at ``radius``), replicate padding."""
    c = x.size(1)
    g = _gauss_kernel(sigma, radius, x.dtype, x.device)
    k = 2 * radius + 1
    x = F.pad(x, [radius, radius, radius, radius], mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), None, 1, 0, 1, c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), None, 1, 0, 1, c)


def self_guided_filter(x: Tensor, r: int, eps: float) -> Tensor:
    """Guided filter (He et al.) of each channel guided by itself: edge-preserving smoothing.

    Variation whose local variance is well below ``eps`` is averaged away; edges whose
    variance is well above it are kept.  Reads ``2r`` pixels of context on each side.
    """
    c = x.size(1)
    stats = box_filter_replicate(torch.cat([x, x * x], 1), r)
    mean = stats[:, :c]
    var = (stats[:, c:] - mean * mean).clamp_min(0.0)
    a = var / (var + eps)
    b = mean - a * mean
    coef = box_filter_replicate(torch.cat([a, b], 1), r)
    return coef[:, :c] * x + coef[:, c:]


def soft_quantize(v: Tensor, step: float, sharpness: float, offset: float = 0.0) -> Tensor:
    """A continuous staircase: ``v`` snapped towards the levels ``offset + k * step``.

    Between two levels the value follows a ``tanh`` ramp, so it is flat near each level and
    rises steeply (but continuously, so region borders are anti-aliased) half-way between
    them; ``sharpness`` around 3..10 is soft, 30 nearly hard.  Exact levels stay put.
    """
    t = (v - offset) / step
    k = torch.floor(t)
    frac = t - k - 0.5  # [-0.5, 0.5): -0.5 at level k, +0.5 at level k + 1
    norm = 0.5 / math.tanh(0.5 * sharpness)  # a Python float: no tensor made on each call
    return (k + 0.5 + norm * torch.tanh(sharpness * frac)) * step + offset


def luma(rgb: Tensor) -> Tensor:
    """Rec. 601 luma of an [N,3,H,W] tensor, shape [N,1,H,W]."""
    return 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]


# ---------------------------------------------------------------------------
# Cartoon
# ---------------------------------------------------------------------------


class ClassicalCartoon(nn.Module):
    """Classical cartoon filter (a stand-in, not a neural model; no learned weights).

    1. Edge-preserving smoothing: ``iterations`` passes of a per-channel self-guided filter
       (box radius ``smooth_radius``, ``eps = smooth_eps``).
    2. Colour quantisation in luma/chroma (Y, B-Y, R-Y): luma snapped to ``luma_levels``
       levels and both chroma axes to multiples of ``chroma_step`` with a soft (tanh)
       staircase, so flat colour regions keep their hue and region borders stay anti-aliased.
    3. Outlines: difference of Gaussians ``D = G(sigma) - tau * G(k * sigma)`` on the luma
       after the first smoothing pass (so facial features survive), lines where ``D < 0``
       with strength ``tanh(edge_sharpness * -D)``; the colour is darkened by up to
       ``edge_strength`` along the lines.

    Luma levels sit at ``(i + 0.5) / luma_levels`` (no pure black or white), chroma levels at
    multiples of ``chroma_step`` including 0, so near-grey areas become exactly grey.  Any
    size works (``size_multiple`` 1).  A tile needs ``self.tile_margin`` pixels of context
    (:data:`CARTOON_TILE_MARGIN` with the defaults).
    """

    def __init__(
        self,
        smooth_radius: int = CARTOON_SMOOTH_RADIUS,
        iterations: int = CARTOON_SMOOTH_ITERATIONS,
        smooth_eps: float = 0.01,
        luma_levels: int = 8,
        chroma_step: float = 0.03,
        quant_sharpness: float = 30.0,
        chroma_sharpness: float = 15.0,
        edge_sigma: float = CARTOON_EDGE_SIGMA,
        edge_k: float = CARTOON_EDGE_K,
        edge_tau: float = 0.98,
        edge_sharpness: float = 200.0,
        edge_strength: float = 0.85,
    ) -> None:
        super().__init__()
        self.smooth_radius = int(smooth_radius)
        self.iterations = int(iterations)
        self.smooth_eps = float(smooth_eps)
        self.luma_step = 1.0 / float(luma_levels)
        self.chroma_step = float(chroma_step)
        self.quant_sharpness = float(quant_sharpness)
        self.chroma_sharpness = float(chroma_sharpness)
        self.edge_sigma = float(edge_sigma)
        self.edge_sigma2 = float(edge_sigma * edge_k)
        self.edge_radius = _gauss_radius(edge_sigma)
        self.edge_radius2 = _gauss_radius(edge_sigma * edge_k)
        self.edge_tau = float(edge_tau)
        self.edge_sharpness = float(edge_sharpness)
        self.edge_strength = float(edge_strength)
        self.tile_margin = cartoon_receptive_radius(self.smooth_radius, self.iterations,
                                                    self.edge_sigma, float(edge_k))

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        s = x.float()
        first = s
        for i in range(self.iterations):
            s = self_guided_filter(s, self.smooth_radius, self.smooth_eps)
            if i == 0:
                first = s
        y = luma(s)
        cb = s[:, 2:3] - y
        cr = s[:, 0:1] - y

        # outlines: DoG on lightly smoothed luma, dark where the narrow blur is below the wide
        ye = luma(first)
        g1 = gaussian_blur_replicate(ye, self.edge_sigma, self.edge_radius)
        g2 = gaussian_blur_replicate(ye, self.edge_sigma2, self.edge_radius2)
        d = g1 - self.edge_tau * g2
        line = torch.tanh(self.edge_sharpness * (-d).clamp_min(0.0))  # 0 flat .. 1 line

        yq = soft_quantize(y, self.luma_step, self.quant_sharpness, 0.5 * self.luma_step)
        if self.chroma_step > 0.0:
            cb = soft_quantize(cb, self.chroma_step, self.chroma_sharpness)
            cr = soft_quantize(cr, self.chroma_step, self.chroma_sharpness)
        r = yq + cr
        b = yq + cb
        g = (yq - 0.299 * r - 0.114 * b) / 0.587
        out = torch.cat([r, g, b], 1) * (1.0 - self.edge_strength * line)
        return out.clamp(0.0, 1.0).to(dtype)


# ---------------------------------------------------------------------------
# Face detail enhancement
# ---------------------------------------------------------------------------


class DetailEnhanceFace(nn.Module):
    """Classical face-detail enhancer (a stand-in for face restoration, not a neural model).

    Works on luma only, so colours are not changed:

    1. denoise: a self-guided filter (radius ``denoise_radius``, ``denoise_eps``) flattens
       fine grain while keeping edges;
    2. base/detail split: a wider self-guided filter (``base_radius``, ``base_eps``) gives the
       base, ``detail = denoised - base``;
    3. structure-aware boost: the detail is amplified by up to ``1 + gain`` where its local
       energy (box mean of ``detail^2``, radius ``energy_radius``) is well above
       ``threshold^2`` (eyes, lips, hair, contours) and left as is on smooth skin; the boosted
       detail is soft-limited with ``limit * tanh(d / limit)`` so strong edges do not ring.

    The luma change is added to every RGB channel and the result clamped to [0, 1].  Radii
    are given for a 512x512 crop and scaled with ``size``; any input size runs.
    """

    def __init__(
        self,
        size: int = 512,
        denoise_radius: int = 2,
        denoise_eps: float = 3e-4,
        base_radius: int = 4,
        base_eps: float = 4e-3,
        energy_radius: int = 3,
        threshold: float = 0.01,
        gain: float = 2.5,
        limit: float = 0.1,
    ) -> None:
        super().__init__()
        scale = float(size) / 512.0
        self.denoise_radius = max(1, int(round(denoise_radius * scale)))
        self.denoise_eps = float(denoise_eps)
        self.base_radius = max(1, int(round(base_radius * scale)))
        self.base_eps = float(base_eps)
        self.energy_radius = max(1, int(round(energy_radius * scale)))
        self.threshold2 = float(threshold) ** 2
        self.gain = float(gain)
        self.limit = float(limit)

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        rgb = x.float()
        y = luma(rgb)
        yd = self_guided_filter(y, self.denoise_radius, self.denoise_eps)
        base = self_guided_filter(yd, self.base_radius, self.base_eps)
        detail = yd - base
        energy = box_filter_replicate(detail * detail, self.energy_radius)
        weight = energy / (energy + self.threshold2)
        boosted = detail * (1.0 + self.gain * weight)
        boosted = self.limit * torch.tanh(boosted / self.limit)
        out = rgb + (base + boosted - y)
        return out.clamp(0.0, 1.0).to(dtype)
