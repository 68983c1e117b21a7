"""GPEN face restoration generator (GAN Prior Embedded Network, Yang et al., CVPR 2021).

A pure-PyTorch, TorchScript-able re-implementation of ``FullGenerator`` from
``yangxy/GPEN`` (``face_model/gpen_model.py``) and of the two custom ops it uses
(``face_model/op/fused_act.py``, ``face_model/op/upfirdn2d.py``).  No compiled
CUDA extension is needed; everything is made of ordinary tensor ops and runs on
CPU or CUDA, in float32 or float16.

Compatibility
-------------
Module/attribute names, parameter shapes and the registered (persistent) blur
kernel buffers follow the official code, so an official checkpoint such as
``GPEN-BFR-512.pth`` loads with ``load_state_dict(sd, strict=True)``:

* ``generator.style.{1..n_mlp}.{weight,bias}``            mapping MLP (index 0 is PixelNorm)
* ``generator.input.input``                               constant 4x4 input
* ``generator.conv1.*``, ``generator.to_rgb1.*``          4x4 stage
* ``generator.convs.{0..}.conv.blur.kernel``              buffer, only in the upsampling convs
* ``generator.to_rgbs.{k}.upsample.kernel``               buffer, skip-branch upsampler
* ``ecd0.0.0.weight``/``ecd0.0.1.bias``                   1x1 input conv of the encoder
* ``ecdN.0.0.kernel``/``ecdN.0.1.weight``/``ecdN.0.2.bias`` downsampling encoder convs (N >= 1)
* ``final_linear.0.{weight,bias}``                        encoder -> style code

The official Generator has no ``noises`` buffers (unlike rosinality's StyleGAN2):
its "noise" inputs are the encoder feature maps, concatenated (``isconcat=True``)
to the modulated-conv output after scaling by ``NoiseInjection.weight``.  The
forward pass here never draws random numbers.

Modulated convolution
---------------------
The official layer folds the per-sample style into the weights and runs one
grouped convolution over the whole batch, which ties the batch size into the
graph.  By default the layers here use the mathematically equivalent
batch-agnostic form: scale the input channels by the style, convolve with the
shared weight (transposed stride-2 convolution + blur for upsampling layers),
then multiply each output channel of each sample by the demodulation factor
``rsqrt(sum_{i,k} (scale * w[o,i,k] * s[b,i])**2 + 1e-8)``.  Set
``ModulatedConv2d.use_grouped = True`` (or call :func:`set_grouped_modconv`) to
run the official grouped form instead; the tests check that both agree.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.jit import Final

__all__ = [
    "upfirdn2d",
    "fused_leaky_relu",
    "FusedLeakyReLU",
    "PixelNorm",
    "make_kernel",
    "Upsample",
    "Downsample",
    "Blur",
    "EqualConv2d",
    "EqualLinear",
    "ScaledLeakyReLU",
    "ModulatedConv2d",
    "NoiseInjection",
    "ConstantInput",
    "StyledConv",
    "ToRGB",
    "Generator",
    "ConvLayer",
    "FullGenerator",
    "GPENRGB",
    "GPEN_CONFIGS",
    "gpen_channels",
    "gpen_random_init",
    "gpen_from_state_dict",
    "set_grouped_modconv",
    "REFERENCE_FACIAL_POINTS",
    "face_template",
]


# --------------------------------------------------------------------------
# Custom ops, as plain tensor ops
# --------------------------------------------------------------------------


def upfirdn2d(
    x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: Tuple[int, int] = (0, 0)
) -> Tensor:
    """Upsample (zero insertion) -> pad -> FIR filter -> downsample, on NCHW.

    Same semantics as the official op with equal x/y factors and pads
    ``(pad0, pad1)`` applied to both axes: the filter is a true convolution
    (kernel flipped), negative pads crop, and the output size per axis is
    ``(in * up + pad0 + pad1 - k) // down + 1``.
    """
    pad0, pad1 = pad
    c = x.shape[1]
    h = x.shape[2]
    w = x.shape[3]
    if up > 1:
        # insert (up - 1) zeros after every sample along H and W
        x = x.reshape(-1, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(-1, c, h * up, w * up)
    if pad0 > 0 or pad1 > 0:
        p0 = max(pad0, 0)
        p1 = max(pad1, 0)
        x = F.pad(x, [p0, p1, p0, p1])
    if pad0 < 0 or pad1 < 0:
        c0 = max(-pad0, 0)
        c1 = max(-pad1, 0)
        x = x[:, :, c0 : x.shape[2] - c1, c0 : x.shape[3] - c1]
    kh = kernel.shape[0]
    kw = kernel.shape[1]
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype, device=x.device)
    weight = weight.reshape(1, 1, kh, kw).repeat(c, 1, 1, 1)
    # a strided convolution keeps exactly the samples [::down] of the full one
    return F.conv2d(x, weight, stride=down, groups=c)


def fused_leaky_relu(
    x: Tensor, bias: Tensor, negative_slope: float = 0.2, scale: float = 2 ** 0.5
) -> Tensor:
    """``scale * leaky_relu(x + bias, negative_slope)``, bias broadcast on dim 1."""
    shape = [1, -1] + [1] * (x.dim() - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int, negative_slope: float = 0.2, scale: float = 2 ** 0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


# --------------------------------------------------------------------------
# Building blocks (names and shapes follow face_model/gpen_model.py)
# --------------------------------------------------------------------------


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


def make_kernel(k: Sequence[float]) -> Tensor:
    """Separable 1-D taps -> normalised 2-D kernel (outer product / sum)."""
    t = torch.tensor(k, dtype=torch.float32)
    if t.dim() == 1:
        t = t[None, :] * t[:, None]
    return t / t.sum()


class Upsample(nn.Module):
    """2x FIR upsampler of the ToRGB skip branch; owns buffer ``kernel``."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel) * (factor ** 2)
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        self.pad0 = (p + 1) // 2 + factor - 1
        self.pad1 = p // 2

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, self.factor, 1, (self.pad0, self.pad1))


class Downsample(nn.Module):
    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel)
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        self.pad0 = (p + 1) // 2
        self.pad1 = p // 2

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, 1, self.factor, (self.pad0, self.pad1))


class Blur(nn.Module):
    """FIR blur with explicit pads; owns buffer ``kernel`` (x factor**2 after an upsample)."""

    def __init__(self, kernel: Sequence[float], pad: Tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor ** 2)
        self.register_buffer("kernel", k)
        self.pad0 = int(pad[0])
        self.pad1 = int(pad[1])

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, 1, 1, (self.pad0, self.pad1))


class EqualConv2d(nn.Module):
    """Conv with equalised learning rate: weight ~ N(0,1), scaled by 1/sqrt(fan_in) at run time."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride = stride
        self.padding = padding
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channel))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class EqualLinear(nn.Module):
    """Linear with equalised learning rate and optional fused bias + leaky ReLU."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: Optional[str] = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init))
        else:
            self.register_parameter("bias", None)
        self.activate = activation is not None
        self.scale = (1.0 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias
        if self.activate:
            out = F.linear(x, self.weight * self.scale)
            if bias is not None:
                return fused_leaky_relu(out, bias * self.lr_mul)
            return F.leaky_relu(out, 0.2) * (2 ** 0.5)
        if bias is not None:
            return F.linear(x, self.weight * self.scale, bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale)


class ScaledLeakyReLU(nn.Module):
    def __init__(self, negative_slope: float = 0.2):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope) * (2 ** 0.5)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution.

    Parameters: ``weight`` (1, out, in, k, k), ``modulation`` (EqualLinear
    style_dim -> in, bias initialised to 1); buffer ``blur.kernel`` only when
    up/down-sampling, exactly as in the official module.
    """

    kernel_size: Final[int]
    in_channel: Final[int]
    out_channel: Final[int]
    upsample: Final[bool]
    downsample: Final[bool]
    demodulate: Final[bool]
    padding: Final[int]

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, ((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, ((p + 1) // 2, p // 2))
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        self.demodulate = demodulate
        # The demodulation epsilon as the bias of its linear map (not a saved weight): a linear
        # followed by a scalar add trips AOTInductor's linear-bias fusion in torch 2.11.
        self.register_buffer("demod_eps", torch.full((out_channel,), self.eps), persistent=False)
        # False: batch-agnostic form (default); True: official grouped-conv form.
        self.use_grouped = False

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        if self.use_grouped:
            return self.forward_grouped(x, style)
        return self.forward_batch_agnostic(x, style)

    def forward_batch_agnostic(self, x: Tensor, style: Tensor) -> Tensor:
        s = self.modulation(style)  # (B, in)
        w = self.weight[0] * self.scale  # (out, in, k, k)
        x = x * s.unsqueeze(-1).unsqueeze(-1)
        if self.upsample:
            out = F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=0)
            out = self.blur(out)
        elif self.downsample:
            out = F.conv2d(self.blur(x), w, stride=2, padding=0)
        else:
            out = F.conv2d(x, w, padding=self.padding)
        if self.demodulate:
            # sum_{i,k} (w[o,i,k] s[b,i])^2 = sum_i s[b,i]^2 * sum_k w[o,i,k]^2
            wsq = (w * w).sum([2, 3])  # (out, in)
            demod = torch.rsqrt(F.linear(s * s, wsq, self.demod_eps))  # (B, out): + 1e-8 as bias
            out = out * demod.unsqueeze(-1).unsqueeze(-1)
        return out

    def forward_grouped(self, x: Tensor, style: Tensor) -> Tensor:
        """The official formulation: per-sample weights, one grouped convolution."""
        batch = x.shape[0]
        height = x.shape[2]
        width = x.shape[3]
        k = self.kernel_size
        s = self.modulation(style).view(batch, 1, self.in_channel, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        weight = weight.view(batch * self.out_channel, self.in_channel, k, k)
        if self.upsample:
            x = x.view(1, batch * self.in_channel, height, width)
            weight = weight.view(batch, self.out_channel, self.in_channel, k, k)
            weight = weight.transpose(1, 2).reshape(batch * self.in_channel, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_channel, out.shape[2], out.shape[3])
            out = self.blur(out)
        elif self.downsample:
            x = self.blur(x)
            x = x.view(1, batch * self.in_channel, x.shape[2], x.shape[3])
            out = F.conv2d(x, weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_channel, out.shape[2], out.shape[3])
        else:
            x = x.view(1, batch * self.in_channel, height, width)
            out = F.conv2d(x, weight, padding=self.padding, groups=batch)
            out = out.view(batch, self.out_channel, out.shape[2], out.shape[3])
        return out


class NoiseInjection(nn.Module):
    """GPEN's noise input: the encoder feature, scaled by ``weight`` and concatenated."""

    isconcat: Final[bool]

    def __init__(self, isconcat: bool = True):
        super().__init__()
        self.isconcat = isconcat
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: Tensor, noise: Tensor) -> Tensor:
        if self.isconcat:
            return torch.cat((image, self.weight * noise), dim=1)
        return image + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, x: Tensor) -> Tensor:
        return self.input.repeat(x.shape[0], 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        demodulate: bool = True,
        isconcat: bool = True,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channel,
            out_channel,
            kernel_size,
            style_dim,
            upsample=upsample,
            blur_kernel=blur_kernel,
            demodulate=demodulate,
        )
        self.noise = NoiseInjection(isconcat)
        feat_multiplier = 2 if isconcat else 1
        self.activate = FusedLeakyReLU(out_channel * feat_multiplier)

    def forward(self, x: Tensor, style: Tensor, noise: Tensor) -> Tensor:
        out = self.conv(x, style)
        out = self.noise(out, noise)
        return self.activate(out)


@torch.jit.interface
class _StyledConvInterface(nn.Module):
    # Lets TorchScript index Generator.convs with a computed index.
    def forward(self, x: Tensor, style: Tensor, noise: Tensor) -> Tensor:
        pass


class ToRGB(nn.Module):
    has_upsample: Final[bool]

    def __init__(
        self,
        in_channel: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.has_upsample = upsample
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            if self.has_upsample:
                skip = self.upsample(skip)
            out = out + skip
        return out


def gpen_channels(channel_multiplier: int = 2, narrow: float = 1.0) -> Dict[int, int]:
    """Per-resolution channel widths, as in the official ``channels`` dict."""
    return {
        4: int(512 * narrow),
        8: int(512 * narrow),
        16: int(512 * narrow),
        32: int(512 * narrow),
        64: int(256 * channel_multiplier * narrow),
        128: int(128 * channel_multiplier * narrow),
        256: int(64 * channel_multiplier * narrow),
        512: int(32 * channel_multiplier * narrow),
        1024: int(16 * channel_multiplier * narrow),
        2048: int(8 * channel_multiplier * narrow),
    }


def _log2_size(size: int) -> int:
    log_size = int(math.log(size, 2))
    if 2 ** log_size != size or log_size < 3 or log_size > 11:
        raise ValueError(f"GPEN size must be a power of two in [8, 2048], got {size}")
    return log_size


class Generator(nn.Module):
    """StyleGAN2-style decoder whose noise inputs are encoder features (concatenated)."""

    log_size: Final[int]
    n_latent: Final[int]
    n_mlp: Final[int]
    style_dim: Final[int]

    def __init__(
        self,
        size: int,
        style_dim: int,
        n_mlp: int,
        channel_multiplier: int = 2,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        lr_mlp: float = 0.01,
        isconcat: bool = True,
        narrow: float = 1.0,
    ):
        super().__init__()
        self.size = size
        self.n_mlp = n_mlp
        self.style_dim = style_dim
        self.feat_multiplier = 2 if isconcat else 1
        fm = self.feat_multiplier

        layers: List[nn.Module] = [PixelNorm()]
        for _ in range(n_mlp):
            layers.append(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)

        self.channels = gpen_channels(channel_multiplier, narrow)
        ch = self.channels
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_kernel=blur_kernel, isconcat=isconcat)
        self.to_rgb1 = ToRGB(ch[4] * fm, style_dim, upsample=False)

        self.log_size = _log2_size(size)
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # unused and empty, kept for structural parity
        self.to_rgbs = nn.ModuleList()
        in_channel = ch[4]
        for i in range(3, self.log_size + 1):
            out_channel = ch[2 ** i]
            self.convs.append(
                StyledConv(in_channel * fm, out_channel, 3, style_dim, upsample=True,
                           blur_kernel=blur_kernel, isconcat=isconcat)
            )
            self.convs.append(
                StyledConv(out_channel * fm, out_channel, 3, style_dim,
                           blur_kernel=blur_kernel, isconcat=isconcat)
            )
            self.to_rgbs.append(ToRGB(out_channel * fm, style_dim))
            in_channel = out_channel
        self.n_latent = self.log_size * 2 - 2

    def forward(self, styles: Tensor, noise: List[Tensor], input_is_latent: bool = False) -> Tensor:
        """``styles``: (B, style_dim) code; ``noise``: 1 + 2*(log_size-2) feature maps
        ordered coarse to fine (4x4 first), as built by :class:`FullGenerator`."""
        if not input_is_latent:
            styles = self.style(styles)
        # a single style: every layer gets the same latent (latent[:, i] == styles)
        out = self.input(styles)
        out = self.conv1(out, styles, noise[0])
        skip = self.to_rgb1(out, styles, None)
        for j, to_rgb in enumerate(self.to_rgbs):
            c_up: _StyledConvInterface = self.convs[2 * j]
            c_same: _StyledConvInterface = self.convs[2 * j + 1]
            out = c_up.forward(out, styles, noise[2 * j + 1])
            out = c_same.forward(out, styles, noise[2 * j + 2])
            skip = to_rgb(out, styles, skip)
        return skip


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> FusedLeakyReLU / ScaledLeakyReLU (official layout)."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
    ):
        layers: List[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, ((p + 1) // 2, p // 2)))
            stride = 2
            padding = 0
        else:
            stride = 1
            padding = kernel_size // 2
        layers.append(
            EqualConv2d(in_channel, out_channel, kernel_size, padding=padding, stride=stride,
                        bias=bias and not activate)
        )
        if activate:
            if bias:
                layers.append(FusedLeakyReLU(out_channel))
            else:
                layers.append(ScaledLeakyReLU(0.2))
        super().__init__(*layers)


class FullGenerator(nn.Module):
    """GPEN: encoder (``ecd0`` .. ``ecd{log_size-2}``, ``final_linear``) + generator.

    ``forward`` takes RGB in [-1, 1] at ``size`` x ``size`` and returns
    ``(image, latent_or_None)`` like the official module; the image is RGB in
    (approximately) [-1, 1].
    """

    log_size: Final[int]
    size: Final[int]

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        lr_mlp: float = 0.01,
        isconcat: bool = True,
        narrow: float = 1.0,
    ):
        super().__init__()
        channels = gpen_channels(channel_multiplier, narrow)
        self.size = size
        self.log_size = _log2_size(size)
        self.generator = Generator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier,
                                   blur_kernel=blur_kernel, lr_mlp=lr_mlp, isconcat=isconcat,
                                   narrow=narrow)
        self.ecd0 = nn.Sequential(ConvLayer(3, channels[size], 1))
        in_channel = channels[size]
        self.names = ["ecd%d" % i for i in range(self.log_size - 1)]
        for i in range(self.log_size, 2, -1):
            out_channel = channels[2 ** (i - 1)]
            setattr(self, self.names[self.log_size - i + 1],
                    nn.Sequential(ConvLayer(in_channel, out_channel, 3, downsample=True)))
            in_channel = out_channel
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, style_dim, activation="fused_lrelu"))

    def encode(self, x: Tensor) -> List[Tensor]:
        """Encoder features, finest (size x size) first, 4x4 last."""
        # TorchScript cannot iterate over attribute names, so the chain is
        # unrolled; hasattr() is resolved at compile time.
        feats: List[Tensor] = []
        x = self.ecd0(x)
        feats.append(x)
        if hasattr(self, "ecd1"):
            x = self.ecd1(x)
            feats.append(x)
        if hasattr(self, "ecd2"):
            x = self.ecd2(x)
            feats.append(x)
        if hasattr(self, "ecd3"):
            x = self.ecd3(x)
            feats.append(x)
        if hasattr(self, "ecd4"):
            x = self.ecd4(x)
            feats.append(x)
        if hasattr(self, "ecd5"):
            x = self.ecd5(x)
            feats.append(x)
        if hasattr(self, "ecd6"):
            x = self.ecd6(x)
            feats.append(x)
        if hasattr(self, "ecd7"):
            x = self.ecd7(x)
            feats.append(x)
        if hasattr(self, "ecd8"):
            x = self.ecd8(x)
            feats.append(x)
        if hasattr(self, "ecd9"):
            x = self.ecd9(x)
            feats.append(x)
        return feats

    def forward(self, inputs: Tensor, return_latents: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        feats = self.encode(inputs)
        code = self.final_linear(torch.flatten(feats[-1], 1))
        # Official: each feature repeated twice, reversed, first dropped ->
        # [f4x4, f8, f8, f16, f16, ..., f_size, f_size].
        noise: List[Tensor] = []
        n = len(feats)
        for i in range(n):
            f = feats[n - 1 - i]
            if i > 0:
                noise.append(f)
            noise.append(f)
        styles = self.generator.style(code)
        image = self.generator(styles, noise, True)
        if return_latents:
            return image, styles.unsqueeze(1).repeat(1, self.generator.n_latent, 1)
        return image, None


class GPENRGB(nn.Module):
    """RGB [0,1] NCHW in -> RGB [0,1] NCHW out, at the model's fixed size.

    The official pipeline (face_model/face_gan.py) reads BGR images with cv2,
    flips them to RGB in ``img2tensor`` and back to BGR in ``tensor2img``: the
    network itself works in RGB, so no channel swap is needed here.
    """

    size: Final[int]

    def __init__(self, net: FullGenerator):
        super().__init__()
        self.net = net
        self.size = net.size

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != self.size or x.shape[3] != self.size:
            raise ValueError("GPENRGB expects an (N, 3, size, size) RGB tensor")
        y, _ = self.net(x * 2.0 - 1.0)
        return ((y + 1.0) * 0.5).clamp(0.0, 1.0)


# --------------------------------------------------------------------------
# Construction helpers
# --------------------------------------------------------------------------

# Released configurations as documented in the official repository
# (face_enhancement.py / demo.py comments; face_colorization.py and
# face_inpainting.py defaults for the 1024 models).  All use style_dim 512,
# n_mlp 8.  The later GPEN-BFR-1024/2048 checkpoints (ModelScope) are not
# listed: their configuration was not verified.
GPEN_CONFIGS: Dict[str, Dict[str, float]] = {
    "GPEN-BFR-512": dict(size=512, channel_multiplier=2, narrow=1.0),
    "GPEN-BFR-256": dict(size=256, channel_multiplier=1, narrow=0.5),
    "GPEN-Colorization-1024": dict(size=1024, channel_multiplier=2, narrow=1.0),
    "GPEN-Inpainting-1024": dict(size=1024, channel_multiplier=2, narrow=1.0),
}


def set_grouped_modconv(module: nn.Module, grouped: bool) -> None:
    """Switch every ModulatedConv2d below ``module`` to the official grouped form (or back)."""
    for m in module.modules():
        if isinstance(m, ModulatedConv2d):
            m.use_grouped = grouped


def gpen_random_init(
    size: int,
    seed: int,
    channel_multiplier: int = 2,
    narrow: float = 1.0,
    n_mlp: int = 8,
    style_dim: int = 512,
    lr_mlp: float = 0.01,
) -> FullGenerator:
    """A FullGenerator with deterministic pseudo-random weights (for tests and exports).

    Weights follow the official init (N(0,1), divided by lr_mul for the mapping
    MLP).  Unlike the official init, biases and the NoiseInjection weights are
    made non-zero (the official zero noise weights would cut the encoder
    features out of the decoder), so every path of the network is exercised.
    The global RNG is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FullGenerator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier,
                            lr_mlp=lr_mlp, narrow=narrow)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in net.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                r = torch.randn(p.shape, generator=g)
                if isinstance(mod, EqualLinear):
                    if pname == "weight":
                        p.copy_(r / mod.lr_mul)
                    else:
                        base = 1.0 if name.endswith("modulation") else 0.0
                        p.copy_((base + 0.1 * r) / mod.lr_mul)
                elif isinstance(mod, NoiseInjection):
                    p.copy_(0.5 * r)
                elif pname == "bias":
                    p.copy_(0.1 * r)
                else:
                    p.copy_(r)
    return net.eval()


def gpen_from_state_dict(
    state_dict: Dict[str, Tensor],
    size: int = 512,
    channel_multiplier: int = 2,
    narrow: float = 1.0,
    n_mlp: int = 8,
    style_dim: int = 512,
    key: Optional[str] = None,
) -> FullGenerator:
    """Build a FullGenerator and load an official checkpoint strictly
    (``key='g_ema'`` for training checkpoints, as the official ``--key``)."""
    if key is not None:
        state_dict = state_dict[key]  # type: ignore[assignment]
    net = FullGenerator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier, narrow=narrow)
    net.load_state_dict(state_dict, strict=True)
    return net.eval()


# --------------------------------------------------------------------------
# 5-point alignment template
# --------------------------------------------------------------------------

# align_faces.py: REFERENCE_FACIAL_POINTS for DEFAULT_CROP_SIZE = (96, 112)
# (width, height): left eye, right eye, nose tip, left and right mouth corner.
REFERENCE_FACIAL_POINTS: Tuple[Tuple[float, float], ...] = (
    (30.29459953, 51.69630051),
    (65.53179932, 51.50139999),
    (48.02519989, 71.73660278),
    (33.54930115, 92.3655014),
    (62.72990036, 92.20410156),
)
_DEFAULT_CROP_SIZE = (96, 112)


def face_template(size: int) -> List[Tuple[float, float]]:
    """5 reference points (x, y) in pixels of a ``size`` x ``size`` aligned face crop.

    Reproduces ``get_reference_facial_points((size, size), inner_padding_factor=0.25,
    outer_padding=(0, 0), default_square=True)`` as called by face_enhancement.py:

    1. default_square: the 96x112 crop is widened to 112x112, so x += (112-96)/2 = 8.
    2. inner padding 0.25: the crop grows by 112*0.25*2 = 56 to 168x168 and every
       point moves by 56/2 = 28 in x and y.
    3. resize to the output: multiply by size/168 (outer padding is 0).

    So ``x' = (x + 36) * size / 168`` and ``y' = (y + 28) * size / 168``; for 512 this
    gives about (202.0, 242.9), (309.4, 242.3), (256.1, 304.0), (212.0, 366.8),
    (300.9, 366.3).  (The official code then casts the points to float32 before the
    similarity fit; the values here are float64.)
    """
    if size <= 0:
        raise ValueError("size must be positive")
    cw, ch = _DEFAULT_CROP_SIZE
    side = float(max(cw, ch))
    dx0 = (side - cw) / 2.0  # default_square shift
    dy0 = (side - ch) / 2.0
    inner_padding_factor = 0.25
    grow = side * inner_padding_factor * 2.0  # 56
    padded = side + float(round(grow))  # 168
    scale = float(size) / padded
    out: List[Tuple[float, float]] = []
    for x, y in REFERENCE_FACIAL_POINTS:
        out.append(((x + dx0 + grow / 2.0) * scale, (y + dy0 + grow / 2.0) * scale))
    return out
