"""Tests for limn_models.standins (classical, non-neural stand-in models) and their export.

Run: cd /work/main && PYTHONPATH=models python3 -m pytest -q tests/python/test_standins.py

The astronaut outputs are written as PNGs to $LIMN_TEST_ARTIFACTS when it is set (else to a
pytest temporary folder), so they can be looked at.
"""

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data, io

from limn_models import export as export_cli
from limn_models import gpen
from limn_models.metadata import Metadata, read_metadata
from limn_models.standins import (
    CARTOON_TILE_MARGIN,
    ClassicalCartoon,
    DetailEnhanceFace,
    gaussian_blur_replicate,
    luma,
    soft_quantize,
)

torch.set_num_threads(1)  # shared 2-core machine: keep the tests light


# ---------------------------------------------------------------- helpers


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t[0].float().clamp(0, 1).permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()


def distinct_colours(t: torch.Tensor) -> int:
    a = to_uint8(t).reshape(-1, 3).astype(np.int64)
    return int(np.unique(a[:, 0] * 65536 + a[:, 1] * 256 + a[:, 2]).size)


def sobel_magnitude(y: torch.Tensor) -> torch.Tensor:
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    yp = F.pad(y, [1, 1, 1, 1], mode="replicate")
    gx = F.conv2d(yp, kx)
    gy = F.conv2d(yp, kx.transpose(2, 3))
    return torch.sqrt(gx * gx + gy * gy)


def laplacian_variance(t: torch.Tensor) -> float:
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return F.conv2d(luma(t.float()), k)[..., 4:-4, 4:-4].var().item()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.float() - b.float()) ** 2).mean().item()
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def lowpass(t: torch.Tensor, sigma: float = 3.0) -> torch.Tensor:
    return gaussian_blur_replicate(t.float(), sigma, int(3 * sigma))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> str:
    path = os.environ.get("LIMN_TEST_ARTIFACTS") or str(tmp_path_factory.mktemp("standins"))
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return to_tensor(data.astronaut())  # [1, 3, 512, 512]


@pytest.fixture(scope="module")
def cartoon() -> ClassicalCartoon:
    return ClassicalCartoon().eval()


@pytest.fixture(scope="module")
def cartoon_out(cartoon, astronaut, artifacts) -> torch.Tensor:
    with torch.no_grad():
        y = cartoon(astronaut)
    io.imsave(os.path.join(artifacts, "astronaut.png"), to_uint8(astronaut), check_contrast=False)
    io.imsave(os.path.join(artifacts, "astronaut_classical_cartoon.png"), to_uint8(y),
              check_contrast=False)
    return y


@pytest.fixture(scope="module")
def face_crop(astronaut) -> torch.Tensor:
    crop = astronaut[:, :, 30:230, 150:350]
    return F.interpolate(crop, size=(512, 512), mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="module")
def face() -> DetailEnhanceFace:
    return DetailEnhanceFace(512).eval()


@pytest.fixture(scope="module")
def face_out(face, face_crop, artifacts) -> torch.Tensor:
    with torch.no_grad():
        y = face(face_crop)
    io.imsave(os.path.join(artifacts, "astronaut_face_512.png"), to_uint8(face_crop),
              check_contrast=False)
    io.imsave(os.path.join(artifacts, "astronaut_face_512_classical_detail.png"), to_uint8(y),
              check_contrast=False)
    return y


# ---------------------------------------------------------------- cartoon


def test_cartoon_shape_range_dtype(cartoon_out, astronaut):
    assert cartoon_out.shape == astronaut.shape
    assert cartoon_out.dtype == torch.float32
    assert float(cartoon_out.min()) >= 0.0 and float(cartoon_out.max()) <= 1.0


def test_cartoon_quantizes_colours(cartoon_out, astronaut):
    n_in = distinct_colours(astronaut)
    n_out = distinct_colours(cartoon_out)
    # measured: 113382 -> 28627 (ratio 0.25)
    assert n_in > 100000
    assert n_out < n_in / 3, (n_in, n_out)


def test_cartoon_darkens_strong_edges_keeps_flat_brightness(cartoon_out, astronaut):
    y_in = luma(astronaut)
    y_out = luma(cartoon_out)
    mag = sobel_magnitude(y_in).flatten()
    order = torch.argsort(mag)
    n = mag.numel()
    strong = order[int(0.95 * n):]  # top 5 % gradient magnitude
    flat = order[: n // 2]  # flattest half of the image
    yi = y_in.flatten()
    yo = y_out.flatten()
    darker = float(yi[strong].mean() - yo[strong].mean())
    flat_shift = float(yo[flat].mean() - yi[flat].mean())
    # measured: strong edges 0.105 darker on average (0.453 -> 0.348); flat half shifts by
    # -0.0002
    assert darker > 0.07, darker
    assert abs(flat_shift) < 0.02, flat_shift


def test_cartoon_is_an_image_not_noise(cartoon_out, astronaut):
    p = psnr(cartoon_out, astronaut)
    a = luma(lowpass(cartoon_out)).flatten()
    b = luma(lowpass(astronaut)).flatten()
    corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    # measured: PSNR 21.3 dB, low-pass (sigma 3) luma correlation 0.985
    assert 15.0 < p < 30.0, p
    assert corr > 0.97, corr


def test_cartoon_script_matches_eager(cartoon, cartoon_out, astronaut):
    scripted = torch.jit.script(cartoon)
    with torch.no_grad():
        y = scripted(astronaut)
    assert (y - cartoon_out).abs().max().item() <= 1e-5


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (7, 1), (5, 3), (2, 2), (3, 40)])
def test_cartoon_tiny_sizes(cartoon, h, w):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * 100 + w))
    with torch.no_grad():
        y = cartoon(x)
    assert y.shape == x.shape
    assert bool(torch.isfinite(y).all())
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    # a constant image stays (nearly) constant: no outlines, colour only quantized
    c = torch.full((1, 3, h, w), 0.5)
    with torch.no_grad():
        yc = cartoon(c)
    assert float(yc.max() - yc.min()) < 1e-5


def test_cartoon_scripted_tiny_sizes(cartoon):
    scripted = torch.jit.script(cartoon)
    for h, w in [(1, 1), (1, 7), (5, 3)]:
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            assert (scripted(x) - cartoon(x)).abs().max().item() <= 1e-5


def test_cartoon_receptive_field_is_tile_margin(cartoon, astronaut):
    assert CARTOON_TILE_MARGIN == 24
    assert cartoon.tile_margin == CARTOON_TILE_MARGIN
    assert ClassicalCartoon(smooth_radius=2, iterations=2).tile_margin == 9  # 2 + 2 + 5 px DoG
    region = astronaut[:, :, 100:260, 120:300].clone()  # 160 x 180, with edges and texture
    for py, px in [(80, 90), (60, 70), (120, 40)]:
        inp = region.clone().requires_grad_(True)
        cartoon(inp)[0, :, py, px].sum().backward()
        support = torch.nonzero(inp.grad.abs().sum(1)[0] > 0)
        reach_y = int((support[:, 0] - py).abs().max())
        reach_x = int((support[:, 1] - px).abs().max())
        assert (reach_y, reach_x) == (CARTOON_TILE_MARGIN, CARTOON_TILE_MARGIN)


def test_cartoon_tile_margin_is_exact(cartoon, astronaut):
    region = astronaut[:, :, 100:260, 120:300]
    y0, y1, x0, x1 = 60, 100, 70, 110  # a core well inside the region
    with torch.no_grad():
        full = cartoon(region)[:, :, y0:y1, x0:x1]

        def tiled(m: int) -> torch.Tensor:
            tile = cartoon(region[:, :, y0 - m:y1 + m, x0 - m:x1 + m])
            return tile[:, :, m:m + (y1 - y0), m:m + (x1 - x0)]

        # measured: 2.1e-5 (float summation order, amplified by the soft steps)
        assert (tiled(CARTOON_TILE_MARGIN) - full).abs().max().item() <= 1e-4
        # measured: 1.6e-3 with 16 px, 1.8e-2 with 8 px
        assert (tiled(16) - full).abs().max().item() > 5e-4


def test_soft_quantize_is_a_continuous_staircase():
    v = torch.linspace(-0.2, 1.2, 2801)
    q = soft_quantize(v, 0.25, 30.0)
    assert bool((q[1:] >= q[:-1] - 1e-6).all())  # monotone
    assert float((q[1:] - q[:-1]).abs().max()) < 0.02  # continuous (no jumps)
    levels = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    assert torch.allclose(soft_quantize(levels, 0.25, 30.0), levels, atol=1e-6)
    near = torch.tensor([0.05, 0.3, 0.45])  # within 0.2 steps of a level: snapped
    assert torch.allclose(soft_quantize(near, 0.25, 30.0), torch.tensor([0.0, 0.25, 0.5]),
                          atol=2e-3)
    # with an offset the levels move: offset + k * step
    shifted = soft_quantize(torch.tensor([0.1, 0.4, 0.6]), 0.25, 30.0, 0.125)
    assert torch.allclose(shifted, torch.tensor([0.125, 0.375, 0.625]), atol=2e-3)
    # the mean over a ramp of whole steps is preserved
    ramp = torch.linspace(0.0, 1.0, 4001)[:-1]
    assert abs(float(soft_quantize(ramp, 0.25, 30.0).mean() - ramp.mean())) < 1e-3


# ---------------------------------------------------------------- face


def test_face_sharpens_and_keeps_low_pass(face_out, face_crop):
    assert face_out.shape == face_crop.shape
    assert float(face_out.min()) >= 0.0 and float(face_out.max()) <= 1.0
    ratio = laplacian_variance(face_out) / laplacian_variance(face_crop)
    low = psnr(lowpass(face_out), lowpass(face_crop))
    # measured: Laplacian variance x1.63, PSNR of the sigma-3 low-pass images 42.9 dB,
    # full-band PSNR 37.2 dB
    assert ratio > 1.4, ratio
    assert low >= 35.0, low
    assert 30.0 < psnr(face_out, face_crop) < 50.0


def test_face_keeps_colours(face_out, face_crop):
    # only luma changes (before clamping): the chroma of the output equals the input's
    chroma_in = face_crop - luma(face_crop)
    chroma_out = face_out - luma(face_out)
    assert (chroma_out - chroma_in).abs().mean().item() < 2e-3


def test_face_script_matches_eager(face, face_out, face_crop):
    scripted = torch.jit.script(face)
    with torch.no_grad():
        y = scripted(face_crop)
    assert (y - face_out).abs().max().item() <= 1e-5


def test_face_any_size_runs():
    m = DetailEnhanceFace(256).eval()
    for h, w in [(1, 1), (5, 3), (256, 256)]:
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h + w))
        with torch.no_grad():
            y = m(x)
        assert y.shape == x.shape and bool(torch.isfinite(y).all())


# ---------------------------------------------------------------- reduced precision


def _cpu_half_works() -> bool:
    try:
        with torch.no_grad():
            ClassicalCartoon()(torch.rand(1, 3, 4, 4).half())
        return True
    except RuntimeError:
        return False


@pytest.mark.skipif(not _cpu_half_works(), reason="no fp16 on this CPU build")
def test_fp16_close_to_fp32(cartoon, cartoon_out, astronaut, face, face_out, face_crop):
    with torch.no_grad():
        yc = cartoon(astronaut.half())
        yf = face(face_crop.half())
    assert yc.dtype == torch.float16 and yf.dtype == torch.float16
    dc = (yc.float() - cartoon_out).abs()
    df = (yf.float() - face_out).abs()
    # measured: cartoon mean 0.9e-4 / max 3.3e-3, face mean 1.1e-4 / max 6.5e-4
    assert dc.mean().item() < 1e-3 and dc.max().item() < 0.05, (dc.mean(), dc.max())
    assert df.mean().item() < 1e-3 and df.max().item() < 0.01, (df.mean(), df.max())


def test_bf16_runs(cartoon, cartoon_out, astronaut):
    with torch.no_grad():
        y = cartoon(astronaut.bfloat16())
    assert y.dtype == torch.bfloat16
    # measured: mean 1.1e-3, max 0.034 (bf16 input/output rounding; maths runs in fp32)
    assert (y.float() - cartoon_out).abs().mean().item() < 5e-3


# ---------------------------------------------------------------- export


def test_export_cartoon_standin_cli(tmp_path, capsys):
    out = str(tmp_path / "classical-cartoon.pt")
    assert export_cli.main(["cartoon-standin", "-o", out]) == 0
    meta = read_metadata(out)
    assert meta == Metadata(
        kind="cartoon",
        name="classical-cartoon",
        size_multiple=1,
        tile_margin=CARTOON_TILE_MARGIN,
        source="limn classical cartoon filter (no learned weights)",
        license="Apache-2.0 (part of limn)",
    )
    module = torch.jit.load(out)
    x = module.limn_selftest_input
    assert x.shape[2:] == (40, 41)
    with torch.no_grad():
        assert torch.allclose(module(x), module.limn_selftest_output, atol=1e-6)
        assert torch.allclose(module(x), ClassicalCartoon()(x), atol=1e-5)


def test_export_face_standin_cli(tmp_path):
    out = str(tmp_path / "classical-face-detail.pt")
    assert export_cli.main(["face-standin", "--size", "512", "-o", out]) == 0
    meta = read_metadata(out)
    assert meta is not None
    assert meta.kind == "face_restore"
    assert meta.name == "classical-face-detail"
    assert (meta.fixed_height, meta.fixed_width) == (512, 512)
    assert meta.size_multiple == 1 and meta.tile_margin == 0
    expected = [v for p in gpen.face_template(512) for v in p]
    assert meta.face_template == pytest.approx(expected)
    assert "no learned weights" in meta.source
    assert meta.license == "Apache-2.0 (part of limn)"
    meta.validate()
    module = torch.jit.load(out)
    assert tuple(module.limn_selftest_input.shape) == (1, 3, 512, 512)


def test_export_help_mentions_standins(capsys):
    with pytest.raises(SystemExit):
        export_cli.main(["--help"])
    text = capsys.readouterr().out
    for kind in ("dctnet", "gpen", "cartoon-standin", "face-standin"):
        assert kind in text
    assert "NOT a neural model" in text
