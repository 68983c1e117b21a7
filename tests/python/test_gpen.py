"""Tests for limn_models.gpen (GPEN FullGenerator re-implementation).

Run: cd /work/main && PYTHONPATH=models python3 -m pytest -q tests/python/test_gpen.py
"""

import hashlib
import io
import math

import pytest
import torch
import torch.nn.functional as F

from limn_models.gpen import (
    EqualLinear,
    FullGenerator,
    GPENRGB,
    ModulatedConv2d,
    face_template,
    gpen_random_init,
    set_grouped_modconv,
    upfirdn2d,
)

# Tiny configuration for forward-pass tests (channels 64 at every level).
TINY = dict(size=64, channel_multiplier=2, narrow=0.125, n_mlp=2, style_dim=64)


# --------------------------------------------------------------------------
# Official key layout, written out from yangxy/GPEN face_model/gpen_model.py
# --------------------------------------------------------------------------


def official_layout(size, channel_multiplier=2, narrow=1.0, n_mlp=8, style_dim=512):
    """(key, shape) of every state-dict entry of the official FullGenerator.

    Derived by hand from the official module tree:
      FullGenerator: generator, ecd0 = Sequential(ConvLayer(3, ch[size], 1)),
        ecd1..ecd{log-2} = Sequential(ConvLayer(cin, cout, 3, downsample=True)),
        final_linear = Sequential(EqualLinear(ch[4]*16, style_dim, fused_lrelu))
      ConvLayer(downsample) = [Blur(kernel buffer), EqualConv2d(no bias), FusedLeakyReLU(bias)]
      Generator: style = [PixelNorm, EqualLinear x n_mlp], input.input,
        conv1/convs: StyledConv = conv (ModulatedConv2d: weight, [blur.kernel if
        upsample], modulation), noise.weight (1,), activate.bias (2*out, isconcat)
        to_rgb1/to_rgbs: ToRGB = [upsample.kernel], conv (ModulatedConv2d 1x1, 3 out), bias
      No noise buffers: the noise inputs are the encoder features.
    """
    ch = {
        4: int(512 * narrow), 8: int(512 * narrow), 16: int(512 * narrow), 32: int(512 * narrow),
        64: int(256 * channel_multiplier * narrow), 128: int(128 * channel_multiplier * narrow),
        256: int(64 * channel_multiplier * narrow), 512: int(32 * channel_multiplier * narrow),
        1024: int(16 * channel_multiplier * narrow),
    }
    log = int(math.log2(size))
    out = []

    def modconv(prefix, cin, cout, k, up):
        out.append((prefix + ".weight", (1, cout, cin, k, k)))
        if up:
            out.append((prefix + ".blur.kernel", (4, 4)))
        out.append((prefix + ".modulation.weight", (cin, style_dim)))
        out.append((prefix + ".modulation.bias", (cin,)))

    def styled(prefix, cin, cout, up):
        modconv(prefix + ".conv", cin, cout, 3, up)
        out.append((prefix + ".noise.weight", (1,)))
        out.append((prefix + ".activate.bias", (2 * cout,)))

    def torgb(prefix, cin, up):
        out.append((prefix + ".bias", (1, 3, 1, 1)))
        if up:
            out.append((prefix + ".upsample.kernel", (4, 4)))
        modconv(prefix + ".conv", cin, 3, 1, False)

    for i in range(1, n_mlp + 1):
        out.append((f"generator.style.{i}.weight", (style_dim, style_dim)))
        out.append((f"generator.style.{i}.bias", (style_dim,)))
    out.append(("generator.input.input", (1, ch[4], 4, 4)))
    styled("generator.conv1", ch[4], ch[4], False)
    torgb("generator.to_rgb1", 2 * ch[4], False)
    cin = ch[4]
    for j, i in enumerate(range(3, log + 1)):
        cout = ch[2 ** i]
        styled(f"generator.convs.{2 * j}", 2 * cin, cout, True)
        styled(f"generator.convs.{2 * j + 1}", 2 * cout, cout, False)
        torgb(f"generator.to_rgbs.{j}", 2 * cout, True)
        cin = cout
    out.append(("ecd0.0.0.weight", (ch[size], 3, 1, 1)))
    out.append(("ecd0.0.1.bias", (ch[size],)))
    cin = ch[size]
    for n, i in enumerate(range(log, 2, -1), start=1):
        cout = ch[2 ** (i - 1)]
        out.append((f"ecd{n}.0.0.kernel", (4, 4)))
        out.append((f"ecd{n}.0.1.weight", (cout, cin, 3, 3)))
        out.append((f"ecd{n}.0.2.bias", (cout,)))
        cin = cout
    out.append(("final_linear.0.weight", (style_dim, ch[4] * 16)))
    out.append(("final_linear.0.bias", (style_dim,)))
    return out


# sha256 of the sorted "key:shape" lines of official_layout(512)
EXPECTED_DIGEST_512 = "eebc752fa7b4f8e36c7cfec1eb0acc7cfa764d0eea23d6cb31fe64b6044339b6"


def meta_model(size, channel_multiplier=2, narrow=1.0, n_mlp=8, style_dim=512):
    with torch.device("meta"):
        return FullGenerator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier, narrow=narrow)


def layout_digest(items):
    text = "\n".join(f"{k}:{','.join(str(d) for d in s)}" for k, s in sorted(items))
    return hashlib.sha256(text.encode()).hexdigest()


def test_key_layout_512():
    net = meta_model(512)
    sd = net.state_dict()
    got = [(k, tuple(v.shape)) for k, v in sd.items()]
    expected = official_layout(512)
    assert sorted(got) == sorted(expected)
    assert len(sd) == 163
    # the exact sorted key/shape list
    assert layout_digest(got) == EXPECTED_DIGEST_512
    # literal spot checks
    shapes = dict(got)
    assert shapes["ecd0.0.0.weight"] == (64, 3, 1, 1)
    assert shapes["ecd0.0.1.bias"] == (64,)
    assert shapes["ecd1.0.0.kernel"] == (4, 4)
    assert shapes["ecd1.0.1.weight"] == (128, 64, 3, 3)
    assert shapes["ecd7.0.1.weight"] == (512, 512, 3, 3)
    assert "ecd8.0.1.weight" not in shapes
    assert shapes["final_linear.0.weight"] == (512, 8192)
    assert shapes["generator.style.1.weight"] == (512, 512)
    assert shapes["generator.style.8.bias"] == (512,)
    assert "generator.style.0.weight" not in shapes  # index 0 is PixelNorm
    assert shapes["generator.input.input"] == (1, 512, 4, 4)
    assert shapes["generator.conv1.conv.weight"] == (1, 512, 512, 3, 3)
    assert shapes["generator.conv1.noise.weight"] == (1,)
    assert shapes["generator.conv1.activate.bias"] == (1024,)
    assert shapes["generator.to_rgb1.conv.weight"] == (1, 3, 1024, 1, 1)
    assert shapes["generator.to_rgb1.conv.modulation.weight"] == (1024, 512)
    assert shapes["generator.to_rgb1.bias"] == (1, 3, 1, 1)
    assert "generator.to_rgb1.upsample.kernel" not in shapes
    assert shapes["generator.convs.0.conv.weight"] == (1, 512, 1024, 3, 3)
    assert shapes["generator.convs.0.conv.blur.kernel"] == (4, 4)
    assert "generator.convs.1.conv.blur.kernel" not in shapes
    assert shapes["generator.convs.13.conv.weight"] == (1, 64, 128, 3, 3)
    assert shapes["generator.convs.13.noise.weight"] == (1,)
    assert shapes["generator.convs.13.activate.bias"] == (128,)
    assert "generator.convs.14.conv.weight" not in shapes
    assert shapes["generator.to_rgbs.6.conv.weight"] == (1, 3, 128, 1, 1)
    assert shapes["generator.to_rgbs.6.upsample.kernel"] == (4, 4)
    assert shapes["generator.to_rgbs.6.conv.modulation.bias"] == (128,)
    # persistent buffers: 7 upsampling-conv blurs, 7 ToRGB upsamplers, 7 encoder blurs; the
    # demodulation epsilons are buffers too, but not saved (no official key)
    buffers = sorted(k for k, _ in net.named_buffers() if k in sd)
    assert len(buffers) == 21
    assert all(k.endswith("kernel") for k in buffers)
    assert all(k.endswith("demod_eps") for k, _ in net.named_buffers() if k not in sd)
    assert not any("noise" in k and "weight" not in k for k in sd)
    # parameter count
    assert sum(p.numel() for p in net.parameters()) == 71005223
    assert sum(math.prod(s) for k, s in expected if not k.endswith("kernel")) == 71005223
    # an official-layout state dict loads strictly
    fake = {k: torch.empty(s, device="meta") for k, s in expected}
    net.load_state_dict(fake, strict=True)


def test_key_layout_digest_512():
    got = [(k, tuple(v.shape)) for k, v in meta_model(512).state_dict().items()]
    assert layout_digest(got) == layout_digest(official_layout(512))
    assert layout_digest(got) == EXPECTED_DIGEST_512


@pytest.mark.parametrize(
    "size,cm,narrow,n_params",
    [(256, 1, 0.5, 18879010), (1024, 2, 1.0, 71210540), (64, 2, 0.125, None)],
)
def test_key_layout_other_configs(size, cm, narrow, n_params):
    net = meta_model(size, channel_multiplier=cm, narrow=narrow)
    got = sorted((k, tuple(v.shape)) for k, v in net.state_dict().items())
    assert got == sorted(official_layout(size, cm, narrow))
    if n_params is not None:
        assert sum(p.numel() for p in net.parameters()) == n_params


def test_blur_kernel_buffers():
    net = gpen_random_init(32, 0, narrow=0.0625, n_mlp=1, style_dim=16)
    k1 = torch.tensor([1.0, 3.0, 3.0, 1.0])
    base = torch.outer(k1, k1) / 64.0
    sd = net.state_dict()
    torch.testing.assert_close(sd["ecd1.0.0.kernel"], base)
    torch.testing.assert_close(sd["generator.convs.0.conv.blur.kernel"], base * 4)
    torch.testing.assert_close(sd["generator.to_rgbs.0.upsample.kernel"], base * 4)


# --------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------


def naive_upfirdn2d(x, k, up, down, pad0, pad1):
    """Direct definition: zero-insert, pad/crop, true 2-D convolution, decimate."""
    n, c, h, w = x.shape
    u = torch.zeros(n, c, h * up, w * up, dtype=torch.float64)
    u[:, :, ::up, ::up] = x.double()
    hp, wp = h * up + pad0 + pad1, w * up + pad0 + pad1
    p = torch.zeros(n, c, hp, wp, dtype=torch.float64)
    for yy in range(hp):
        for xx in range(wp):
            sy, sx = yy - pad0, xx - pad0
            if 0 <= sy < h * up and 0 <= sx < w * up:
                p[:, :, yy, xx] = u[:, :, sy, sx]
    kh, kw = k.shape
    oh, ow = hp - kh + 1, wp - kw + 1
    full = torch.zeros(n, c, oh, ow, dtype=torch.float64)
    kd = k.double()
    for oy in range(oh):
        for ox in range(ow):
            acc = torch.zeros(n, c, dtype=torch.float64)
            for i in range(kh):
                for j in range(kw):
                    # convolution: kernel index reversed
                    acc += p[:, :, oy + i, ox + j] * kd[kh - 1 - i, kw - 1 - j]
            full[:, :, oy, ox] = acc
    return full[:, :, ::down, ::down]


@pytest.mark.parametrize(
    "up,down,pad,kshape",
    [
        (2, 1, (2, 1), (4, 4)),   # Upsample (ToRGB skip)
        (1, 1, (1, 1), (4, 4)),   # blur after transposed conv
        (1, 2, (2, 2), (4, 4)),   # encoder downsample blur + stride
        (1, 2, (1, 1), (4, 4)),   # Downsample
        (2, 2, (1, 0), (3, 4)),   # asymmetric kernel: checks the flip
        (1, 1, (-1, 2), (3, 3)),  # negative pad crops
    ],
)
def test_upfirdn2d_matches_naive(up, down, pad, kshape):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 5, 6, generator=g)
    k = torch.randn(kshape, generator=g)
    got = upfirdn2d(x, k, up, down, pad)
    ref = naive_upfirdn2d(x, k, up, down, pad[0], pad[1])
    assert got.shape == ref.shape
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)
    # official output size formula
    assert got.shape[-2] == (5 * up + pad[0] + pad[1] - kshape[0]) // down + 1


def test_upfirdn2d_scripted_and_half():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 4, 8, 8, generator=g)
    k = torch.randn(4, 4, generator=g)
    scripted = torch.jit.script(upfirdn2d)
    torch.testing.assert_close(scripted(x, k, 2, 1, (2, 1)), upfirdn2d(x, k, 2, 1, (2, 1)))
    yh = upfirdn2d(x.half(), k, 2, 1, (2, 1))
    assert yh.dtype == torch.float16
    torch.testing.assert_close(yh.float(), upfirdn2d(x, k, 2, 1, (2, 1)), rtol=1e-2, atol=1e-2)


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize(
    "kind,k,demod",
    [
        ("plain", 3, True),
        ("up", 3, True),
        ("down", 3, True),
        ("plain", 3, False),
        ("plain", 1, False),  # ToRGB-like
        ("up", 3, False),
    ],
)
@pytest.mark.parametrize("batch", [1, 3])
def test_modconv_batch_agnostic_equals_grouped(kind, k, demod, batch):
    torch.manual_seed(10 + batch)
    m = ModulatedConv2d(12, 10, k, 16, demodulate=demod, upsample=kind == "up", downsample=kind == "down")
    with torch.no_grad():
        m.modulation.bias.normal_(1.0, 0.3)
    x = torch.randn(batch, 12, 8, 8)
    s = torch.randn(batch, 16)
    with torch.no_grad():
        a = m.forward_batch_agnostic(x, s)
        b = m.forward_grouped(x, s)
        m.use_grouped = True
        c = m(x, s)
    assert a.shape == b.shape
    assert rel_err(a, b) < 1e-5
    assert torch.equal(b, c)
    # per-sample independence of the batch-agnostic form
    with torch.no_grad():
        a0 = m.forward_batch_agnostic(x[-1:], s[-1:])
    assert rel_err(a0, a[-1:]) < 1e-5


def test_fused_leaky_relu_matches_definition():
    from limn_models.gpen import fused_leaky_relu

    x = torch.randn(2, 5, 3, 3)
    b = torch.randn(5)
    ref = F.leaky_relu(x + b.view(1, 5, 1, 1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(fused_leaky_relu(x, b), ref)
    x2 = torch.randn(4, 5)
    torch.testing.assert_close(fused_leaky_relu(x2, b), F.leaky_relu(x2 + b, 0.2) * math.sqrt(2))


# --------------------------------------------------------------------------
# Tiny model end to end
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    net = gpen_random_init(TINY["size"], 1234, channel_multiplier=TINY["channel_multiplier"],
                           narrow=TINY["narrow"], n_mlp=TINY["n_mlp"], style_dim=TINY["style_dim"])
    model = GPENRGB(net).eval()
    scripted = torch.jit.script(model)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    return net, model, scripted, x


def test_random_init_deterministic():
    a = gpen_random_init(32, 5, narrow=0.0625, n_mlp=1, style_dim=16).state_dict()
    b = gpen_random_init(32, 5, narrow=0.0625, n_mlp=1, style_dim=16).state_dict()
    c = gpen_random_init(32, 6, narrow=0.0625, n_mlp=1, style_dim=16).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_tiny_script_equals_eager(tiny):
    net, model, scripted, x = tiny
    with torch.no_grad():
        ye = model(x)
        ys = scripted(x)
    assert ye.shape == (2, 3, 64, 64)
    assert (ye - ys).abs().max().item() <= 1e-5


def test_tiny_script_roundtrip(tiny):
    net, model, scripted, x = tiny
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    with torch.no_grad():
        assert torch.equal(loaded(x[:1]), scripted(x[:1]))


def test_tiny_batch_equals_singles_and_range(tiny):
    net, model, scripted, x = tiny
    with torch.no_grad():
        yb = scripted(x)
        y0 = scripted(x[0:1])
        y1 = scripted(x[1:2])
        raw_b, _ = net(x * 2 - 1)
        raw_0, _ = net(x[0:1] * 2 - 1)
    assert (yb[0:1] - y0).abs().max().item() <= 1e-5
    assert (yb[1:2] - y1).abs().max().item() <= 1e-5
    assert rel_err(raw_b[0:1], raw_0) < 1e-5
    assert yb.min().item() >= 0.0 and yb.max().item() <= 1.0
    # not degenerate: the image is not simply clamped everywhere
    inside = ((yb > 0) & (yb < 1)).float().mean().item()
    assert inside > 0.2
    assert (y0 - y1).abs().max().item() > 1e-3


def test_tiny_deterministic(tiny):
    net, model, scripted, x = tiny
    with torch.no_grad():
        a = scripted(x)
        b = scripted(x)
        c = model(x)
        d = model(x)
    assert torch.equal(a, b)
    assert torch.equal(c, d)


def test_tiny_encoder_features_reach_decoder(tiny):
    # the decoder's "noise" inputs are encoder features: perturbing the noise
    # weight of the last conv must change the output (and nothing is random)
    net, model, scripted, x = tiny
    with torch.no_grad():
        ref = model(x[:1])
        w = net.generator.convs[-1].noise.weight
        old = w.clone()
        w.mul_(2.0)
        alt = model(x[:1])
        w.copy_(old)
    assert (alt - ref).abs().max().item() > 1e-4


def test_tiny_grouped_equals_batch_agnostic(tiny):
    net, model, scripted, x = tiny
    with torch.no_grad():
        a, _ = net(x * 2 - 1)
        set_grouped_modconv(net, True)
        try:
            b, _ = net(x * 2 - 1)
        finally:
            set_grouped_modconv(net, False)
    assert rel_err(a, b) < 1e-5


def test_tiny_return_latents_and_size_check(tiny):
    net, model, scripted, x = tiny
    with torch.no_grad():
        img, lat = net(x[:1] * 2 - 1, True)
    assert lat is not None and lat.shape == (1, net.generator.n_latent, TINY["style_dim"])
    with pytest.raises(Exception):
        scripted(torch.rand(1, 3, 32, 32))


def test_half_precision_forward():
    net = gpen_random_init(32, 2, narrow=0.0625, n_mlp=1, style_dim=16)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = GPENRGB(net)(x)
        yh = GPENRGB(net.half())(x.half())
    assert yh.dtype == torch.float16
    assert (yh.float() - y).abs().max().item() < 0.05


# --------------------------------------------------------------------------
# Alignment template
# --------------------------------------------------------------------------

TEMPLATE_512 = [(202.0, 242.9), (309.4, 242.3), (256.1, 304.0), (212.0, 366.8), (300.9, 366.3)]


def test_face_template_512():
    t = face_template(512)
    assert len(t) == 5
    for (x, y), (ex, ey) in zip(t, TEMPLATE_512):
        assert abs(x - ex) < 0.2 and abs(y - ey) < 0.2


def test_face_template_256_is_half():
    for (x, y), (x2, y2) in zip(face_template(256), face_template(512)):
        assert abs(x - x2 / 2) < 1e-9 and abs(y - y2 / 2) < 1e-9


def test_face_template_formula():
    # x' = (x + 8 + 28) * s / 168, y' = (y + 28) * s / 168 (align_faces.py, 96x112 reference)
    x, y = face_template(168)[0]
    assert abs(x - (30.29459953 + 36)) < 1e-9 and abs(y - (51.69630051 + 28)) < 1e-9
