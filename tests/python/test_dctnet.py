"""Tests for limn_models.dctnet (DCT-Net generator re-implementation).

Run: cd /work/main && PYTHONPATH=models python3 -m pytest -q tests/python/test_dctnet.py
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from limn_models.dctnet import (
    SIZE_MULTIPLE,
    TF_LAYERS,
    TF_NAME_TO_PARAM,
    TILE_MARGIN,
    DCTNetGenerator,
    DCTNetRGB,
    TFConv2d,
    _same_pads,
    dctnet_random_init,
    guided_filter,
    guided_filter_planes,
    load_tf_variables,
    box_filter,
    tf_legacy_resize_bilinear,
    tf_legacy_upsample_x2,
    tf_same_pad,
)

torch.set_num_threads(1)  # shared 2-core machine: keep the tests light

# 7*7*3*32+32 + (9*32*32+32) + (9*32*64+64) + (9*64*64+64) + (9*64*128+128)
# + 8*(9*128*128+128) + (9*128*64+64) + (9*64*64+64) + (9*64*32+32)
# + (9*32*32+32) + (7*7*32*3+3)
EXPECTED_PARAMS = 1467075


@pytest.fixture(scope="module")
def gen() -> DCTNetGenerator:
    return dctnet_random_init(0)


# ---------------------------------------------------------------- structure


def test_parameter_count(gen):
    assert sum(p.numel() for p in gen.parameters()) == EXPECTED_PARAMS
    assert sum(p.numel() for p in DCTNetGenerator().parameters()) == EXPECTED_PARAMS


def test_tf_name_mapping_covers_every_parameter(gen):
    state = gen.state_dict()
    assert len(TF_NAME_TO_PARAM) == 36
    assert sorted(TF_NAME_TO_PARAM.values()) == sorted(state.keys())
    assert TF_NAME_TO_PARAM["generator/Conv/weights"] == "conv.weight"
    assert TF_NAME_TO_PARAM["generator/Conv_9/biases"] == "conv_9.bias"
    assert TF_NAME_TO_PARAM["generator/block_3/conv2/weights"] == "blocks.3.conv2.weight"
    for _tf, path, cin, cout, k, stride in TF_LAYERS:
        conv = gen.get_submodule(path)
        assert isinstance(conv, TFConv2d)
        assert tuple(conv.weight.shape) == (cout, cin, k, k)
        assert conv.stride == stride


def test_load_tf_variables_roundtrip(gen):
    # Frozen-graph style names: import prefix, ':0' suffix, HWIO kernels.
    state = gen.state_dict()
    tf_vars = {}
    for tf_name, param in TF_NAME_TO_PARAM.items():
        value = state[param]
        if tf_name.endswith("/weights"):
            value = value.permute(2, 3, 1, 0)  # OIHW -> HWIO
        tf_vars["model_anime_head/" + tf_name + ":0"] = value.numpy().copy()
    tf_vars["model_anime_head/input_image:0"] = np.zeros(3, np.float32)  # ignored
    fresh = load_tf_variables(DCTNetGenerator(), tf_vars)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key]), key
    del tf_vars["model_anime_head/generator/Conv_4/biases:0"]
    with pytest.raises(ValueError):
        load_tf_variables(DCTNetGenerator(), tf_vars)


# ---------------------------------------------------------------- SAME padding


def test_same_pad_amounts():
    assert _same_pads(4, 3, 2) == (0, 1)  # even size, stride 2: asymmetric
    assert _same_pads(5, 3, 2) == (1, 1)  # odd size, stride 2
    assert _same_pads(4, 3, 1) == (1, 1)
    assert _same_pads(5, 3, 1) == (1, 1)
    assert _same_pads(5, 7, 1) == (3, 3)
    assert _same_pads(6, 7, 2) == (2, 3)
    assert _same_pads(1, 3, 2) == (1, 1)
    x = torch.zeros(1, 1, 4, 5)
    assert tuple(tf_same_pad(x, 3, 2).shape) == (1, 1, 5, 7)  # H (0,1), W (1,1)


def _ones_conv(stride: int) -> TFConv2d:
    conv = TFConv2d(1, 1, 3, stride)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    return conv


def test_same_conv_stride1_even():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    expected = torch.tensor(
        [[10, 18, 24, 18], [27, 45, 54, 39], [51, 81, 90, 63], [42, 66, 72, 50]], dtype=torch.float32
    )
    out = _ones_conv(1)(x)[0, 0]
    assert torch.equal(out, expected)
    # explicit-pad path gives the same
    w = torch.ones(1, 1, 3, 3)
    assert torch.equal(F.conv2d(tf_same_pad(x, 3, 1), w)[0, 0], expected)


def test_same_conv_stride2_even():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # pad 0 before / 1 after: windows start at rows/cols 0 and 2
    expected = torch.tensor([[45, 39], [66, 50]], dtype=torch.float32)
    assert torch.equal(_ones_conv(2)(x)[0, 0], expected)
    # PyTorch's symmetric padding=1 would differ
    assert not torch.equal(F.conv2d(x, torch.ones(1, 1, 3, 3), stride=2, padding=1)[0, 0], expected)


def test_same_conv_stride2_odd():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    # pad 1 before / 1 after: windows centred on rows/cols 0, 2, 4
    expected = torch.tensor([[12, 27, 24], [63, 108, 81], [72, 117, 84]], dtype=torch.float32)
    assert torch.equal(_ones_conv(2)(x)[0, 0], expected)


def test_same_conv_stride1_odd_and_7x7_paths_agree():
    torch.manual_seed(0)
    conv = TFConv2d(2, 3, 7, 1)
    with torch.no_grad():
        conv.weight.normal_()
        conv.bias.normal_()
    for h, w in ((5, 5), (6, 9)):
        x = torch.randn(1, 2, h, w)
        ref = F.conv2d(tf_same_pad(x, 7, 1), conv.weight, conv.bias)
        out = conv(x)
        assert out.shape == ref.shape == (1, 3, h, w)
        assert torch.allclose(out, ref, atol=1e-5)


# ---------------------------------------------------------------- legacy resize


def test_legacy_resize_2x2_to_4x4():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    expected = torch.tensor(
        [[1, 1.5, 2, 2], [2, 2.5, 3, 3], [3, 3.5, 4, 4], [3, 3.5, 4, 4]], dtype=torch.float32
    )
    out = tf_legacy_resize_bilinear(x, 4, 4)[0, 0]
    assert torch.allclose(out, expected, atol=0, rtol=0)
    # half-pixel (PyTorch default) semantics differ
    pt = F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)[0, 0]
    assert not torch.allclose(pt, expected)


def test_legacy_resize_3x3_to_6x6():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    expected = torch.tensor(
        [
            [0, 0.5, 1, 1.5, 2, 2],
            [1.5, 2, 2.5, 3, 3.5, 3.5],
            [3, 3.5, 4, 4.5, 5, 5],
            [4.5, 5, 5.5, 6, 6.5, 6.5],
            [6, 6.5, 7, 7.5, 8, 8],
            [6, 6.5, 7, 7.5, 8, 8],
        ],
        dtype=torch.float32,
    )
    out = tf_legacy_resize_bilinear(x, 6, 6)[0, 0]
    assert torch.equal(out, expected)


def test_legacy_resize_non_integer_ratio_and_channels():
    x = torch.tensor([0.0, 10.0, 20.0, 30.0]).view(1, 1, 1, 4)
    out = tf_legacy_resize_bilinear(x, 1, 3)[0, 0, 0]
    # src = dst * 4/3 -> 0, 1.333, 2.667
    assert torch.allclose(out, torch.tensor([0.0, 40.0 / 3.0, 80.0 / 3.0]), atol=1e-4)
    y = torch.randn(2, 5, 3, 4)
    up = tf_legacy_resize_bilinear(y, 6, 8)
    assert up.shape == (2, 5, 6, 8)
    assert torch.equal(up[:, :, ::2, ::2], y)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 2, 1, 5), (2, 3, 4, 4), (1, 8, 7, 3), (1, 64, 16, 20)])
def test_upsample_stencil_is_the_legacy_resize_bit_for_bit(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    ref = tf_legacy_resize_bilinear(x, 2 * shape[2], 2 * shape[3])
    assert torch.equal(tf_legacy_upsample_x2(x), ref)
    cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(tf_legacy_upsample_x2(cl), ref)


def test_box_filter_matches_the_depthwise_mean_kernel():
    x = torch.randn(2, 3, 9, 14, generator=torch.Generator().manual_seed(1))
    for r in (1, 2):
        k = 2 * r + 1
        weight = torch.full((3, 1, k, k), 1.0 / (k * k))
        ref = F.conv2d(x, weight, None, 1, r, 1, 3)
        assert torch.allclose(box_filter(x, r), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [(8, 12), (4, 4), (7, 9), (6, 5)])
def test_stride2_conv_without_a_padded_copy_is_tf_same(size):
    """Even sizes run a 4x4 kernel with padding 1 instead of padding (0, 1); odd ones pad."""
    conv = TFConv2d(4, 5, 3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(5, 4, 3, 3, generator=torch.Generator().manual_seed(2)))
        conv.bias.copy_(torch.randn(5, generator=torch.Generator().manual_seed(3)))
    x = torch.randn(1, 4, *size, generator=torch.Generator().manual_seed(4))
    ref = F.conv2d(tf_same_pad(x, 3, 2), conv.weight, conv.bias, 2, 0)
    out = conv(x)
    assert out.shape == ref.shape == (1, 5, (size[0] + 1) // 2, (size[1] + 1) // 2)
    assert torch.allclose(out, ref, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- guided filter


def _naive_guided_filter(x: np.ndarray, y: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Textbook guided filter with window means over the valid pixels only."""
    c, h, w = x.shape

    def mean(img: np.ndarray) -> np.ndarray:
        out = np.zeros_like(img)
        for i in range(h):
            for j in range(w):
                win = img[:, max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1]
                out[:, i, j] = win.reshape(c, -1).mean(axis=1)
        return out

    mx, my = mean(x), mean(y)
    cov = mean(x * y) - mx * my
    var = mean(x * x) - mx * mx
    a = cov / (var + eps)
    b = my - a * mx
    return mean(a) * x + mean(b)


def test_guided_filter_constant():
    c = torch.full((1, 3, 6, 7), 0.37)
    assert torch.allclose(guided_filter(c, c, 1, 1e-2), c, atol=1e-6)
    guide = torch.rand(1, 3, 6, 7) * 2 - 1
    assert torch.allclose(guided_filter(guide, c, 1, 1e-2), c, atol=1e-5)


def test_guided_filter_planes_is_the_fp32_filter_in_the_callers_dtype():
    """The generator's filter: the same fp32 values as guided_filter, channels-last input too, and
    in bf16 far closer to them than the filter computed in bf16 (whose variances cancel)."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 20, 24, generator=g) * 2 - 1
    y = (x + 0.3 * torch.rand(2, 3, 20, 24, generator=g)).clamp(-1, 1)
    want = guided_filter(x, y, 1, 1e-2)
    assert torch.equal(guided_filter_planes(x, y, 1, 1e-2), want)
    cl = torch.channels_last
    assert torch.equal(guided_filter_planes(x.contiguous(memory_format=cl), y.contiguous(memory_format=cl), 1, 1e-2), want)
    xb, yb = x.bfloat16(), y.bfloat16()
    got = guided_filter_planes(xb, yb, 1, 1e-2)
    assert got.dtype == torch.bfloat16
    err_planes = (got.float() - guided_filter(xb.float(), yb.float(), 1, 1e-2)).abs().max().item()
    err_bf16 = (guided_filter(xb, yb, 1, 1e-2).float() - guided_filter(xb.float(), yb.float(), 1, 1e-2)).abs().max().item()
    assert err_planes <= 2 ** -8  # one bf16 rounding of a value in [-2, 2]
    assert err_planes < err_bf16


@pytest.mark.parametrize("r,eps", [(1, 1e-2), (2, 0.2)])
def test_guided_filter_matches_naive(r, eps):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (3, 7, 9))
    y = rng.uniform(-1, 1, (3, 7, 9))
    ref = _naive_guided_filter(x, y, r, eps)
    out64 = guided_filter(torch.from_numpy(x)[None], torch.from_numpy(y)[None], r, eps)[0].numpy()
    assert np.allclose(out64, ref, atol=1e-10)
    out32 = guided_filter(
        torch.from_numpy(x).float()[None], torch.from_numpy(y).float()[None], r, eps
    )[0].numpy()
    assert np.allclose(out32, ref, atol=1e-4)


# ---------------------------------------------------------------- network


@pytest.mark.parametrize("hw", [(37, 53), (36, 52), (40, 48), (33, 34)])
def test_output_shape(gen, hw):
    h, w = hw
    x = torch.rand(1, 3, h, w) * 2 - 1
    with torch.no_grad():
        y = gen(x)
        z = DCTNetRGB(gen)(torch.rand(1, 3, h, w))
    assert y.shape == (1, 3, h, w)
    assert z.shape == (1, 3, h, w)
    assert float(z.min()) >= 0.0 and float(z.max()) <= 1.0


def test_generator_is_unet_plus_guided_filter(gen):
    x = torch.rand(1, 3, 32, 40) * 2 - 1  # multiple of 4: no internal padding
    with torch.no_grad():
        y = gen(x)
        u = gen.unet(x)
    assert torch.equal(y, guided_filter(x, u, 1, 1e-2))
    # other sizes: edge pad bottom/right to SIZE_MULTIPLE, then crop
    x = torch.rand(1, 3, 29, 30) * 2 - 1
    xp = F.pad(x, [0, 2, 0, 3], mode="replicate")
    assert xp.shape[2] % SIZE_MULTIPLE == 0 and xp.shape[3] % SIZE_MULTIPLE == 0
    with torch.no_grad():
        assert torch.equal(gen(x), gen(xp)[:, :, :29, :30])


def test_rgb_wrapper_matches_official_conversions(gen):
    torch.manual_seed(3)
    rgb = torch.rand(1, 3, 24, 28)
    pixels = rgb * 255.0
    bgr = pixels[:, [2, 1, 0]] / 127.5 - 1.0  # pipeline: img[:, :, ::-1]; exporter: x/127.5-1
    with torch.no_grad():
        y = gen(bgr)
        ref = (torch.clamp(y, -0.999999, 0.999999) + 1.0) * 127.5 / 255.0
        ref = ref[:, [2, 1, 0]]
        out = DCTNetRGB(gen)(rgb)
    assert torch.allclose(out, ref, atol=1e-5)


def test_random_init_deterministic_and_not_saturated():
    a = dctnet_random_init(7)
    b = dctnet_random_init(7)
    c = dctnet_random_init(8)
    for (ka, va), (_kb, vb), (_kc, vc) in zip(
        a.state_dict().items(), b.state_dict().items(), c.state_dict().items()
    ):
        assert torch.equal(va, vb), ka
        assert not torch.equal(va, vc), ka
    x = torch.rand(1, 3, 48, 48) * 2 - 1
    with torch.no_grad():
        y = a(x)
    assert 0.02 < float(y.std()) < 0.8
    assert float((y.abs() > 0.999).float().mean()) < 0.01


def test_tile_margin_is_exact(gen):
    # Two row tiles with 4-aligned origins and TILE_MARGIN of context reproduce
    # the full-image result in their cores.
    assert TILE_MARGIN % SIZE_MULTIPLE == 0
    torch.manual_seed(5)
    h, w, core = 160, 22, 80
    x = torch.rand(1, 3, h, w) * 2 - 1
    with torch.no_grad():
        full = gen(x)
        top = gen(x[:, :, : core + TILE_MARGIN])[:, :, :core]
        start = core - TILE_MARGIN
        bottom = gen(x[:, :, start:])[:, :, core - start :]
    assert torch.allclose(top, full[:, :, :core], atol=1e-6)
    assert torch.allclose(bottom, full[:, :, core:], atol=1e-6)
    # a tile origin off the 4-pixel grid changes the stride-2 sampling phase
    start = core - TILE_MARGIN - 1
    with torch.no_grad():
        shifted = gen(x[:, :, start:])[:, :, core - start :]
    assert float((shifted - full[:, :, core:]).abs().max()) > 1e-2


def test_receptive_field_fits_tile_margin():
    # Gradient support of one output pixel (all weights non-zero, LeakyReLU
    # never has zero slope) = exact receptive field.  Over all 16 phases of
    # the 4-pixel grid it is at most 58 px up/left and 64 px down/right; the
    # two diagonal phases checked here (offsets 1 and 3) reach those maxima.
    g = dctnet_random_init(0).double()
    up, down = [], []
    for p in (1, 3):
        x = (torch.rand(1, 3, 136, 136, dtype=torch.float64) * 2 - 1).requires_grad_()
        c = 60 + p
        g(x)[0, :, c, c].sum().backward()
        support = (x.grad.abs().sum(1)[0] > 0).nonzero()
        rows, cols = support[:, 0], support[:, 1]
        assert int(rows.min()) > 0 and int(rows.max()) < 135  # not truncated
        up += [c - int(rows.min()), c - int(cols.min())]
        down += [int(rows.max()) - c, int(cols.max()) - c]
    assert max(up) == 58 and max(down) == 64
    assert max(max(up), max(down)) <= TILE_MARGIN


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_matches_eager_on_two_sizes(gen):
    model = DCTNetRGB(gen).eval()
    scripted = torch.jit.script(model)
    torch.manual_seed(11)
    for h, w in ((32, 48), (37, 53)):
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            ref = model(x)
            out = scripted(x)
        assert out.shape == (1, 3, h, w)
        assert torch.allclose(out, ref, atol=1e-5)
