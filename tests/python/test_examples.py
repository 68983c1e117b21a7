"""The built example and the library against PyTorch eager: limn-raw-run on real photos."""
import os
import subprocess

import numpy as np
import skimage.data
import torch

from limn_models import dctnet, export


def write_ppm(path, img):
    h, w, _ = img.shape
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + img.tobytes())


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    parts = data.split(b"\n", 3)
    w, h = (int(v) for v in parts[1].split())
    return np.frombuffer(parts[3], dtype=np.uint8).reshape(h, w, 3)


def test_library_matches_eager_on_a_real_photo(bin_dir, tmp_path):
    """C ABI on the CPU vs the eager DCT-Net on the astronaut: at most one 8-bit level apart."""
    img = skimage.data.astronaut()[:256, 128:384].copy()
    model = str(tmp_path / "d.pt")
    export.export_dctnet_random(model, seed=0)
    src, dst = str(tmp_path / "in.ppm"), str(tmp_path / "out.ppm")
    write_ppm(src, img)
    run = subprocess.run([os.path.join(bin_dir, "limn-raw-run"), model, src, dst, "cpu", "fp32"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "on cpu in fp32" in run.stdout
    got = read_ppm(dst).astype(int)

    net = dctnet.DCTNetRGB(dctnet.dctnet_random_init(0)).eval()
    with torch.no_grad():
        x = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float() / 255
        ref = net(x).clamp(0, 1).mul(255).round().squeeze(0).permute(1, 2, 0).numpy().astype(int)
    assert np.abs(got - ref).max() <= 1
    assert (got != ref).mean() < 0.01


def test_raw_run_reports_errors_and_writes_nothing(bin_dir, tmp_path):
    model = str(tmp_path / "d.pt")
    export.export_dctnet_random(model, seed=0)
    src, dst = str(tmp_path / "odd.ppm"), str(tmp_path / "out.ppm")
    write_ppm(src, np.zeros((5, 7, 3), dtype=np.uint8) + 9)
    run = subprocess.run([os.path.join(bin_dir, "limn-raw-run"), model, src, dst, "cpu"],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "multiples of 4" in run.stderr
    assert not os.path.exists(dst) and not os.path.exists(dst + ".tmp")


def test_c_cartoonize_example_plain_and_compound(bin_dir, tmp_path):
    """limn-cartoonize-c, with and without DCT-Net's compound stylization (tiny fixtures)."""
    fixtures = os.environ.get("LIMN_TEST_FIXTURES", "")
    if not os.path.isfile(os.path.join(fixtures, "tiny_head.pt")):
        import pytest

        pytest.skip("LIMN_TEST_FIXTURES is not set: run through ctest")
    from PIL import Image

    photo = str(tmp_path / "photo.png")
    Image.fromarray(skimage.data.astronaut()[::2, ::2]).save(photo)
    exe = os.path.join(bin_dir, "limn-cartoonize-c")
    f = lambda name: os.path.join(fixtures, name)  # noqa: E731
    plain = subprocess.run([exe, f("tiny_unet.pt"), photo, str(tmp_path / "a.png"), "cpu"], capture_output=True,
                           text=True)
    assert plain.returncode == 0, plain.stderr
    both = subprocess.run([exe, f("tiny_unet.pt"), photo, str(tmp_path / "b.png"), "cpu", f("tiny_head.pt"),
                           f("tiny_detect.pt")], capture_output=True, text=True)
    assert both.returncode == 0, both.stderr
    assert "2 face(s) stylized" in both.stdout
    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png"))
    assert a.shape == b.shape == (256, 256, 3) and (a != b).any()
    wrong = subprocess.run([exe, f("tiny_unet.pt"), photo, str(tmp_path / "c.png"), "cpu", f("tiny_unet.pt"),
                            f("tiny_detect.pt")], capture_output=True, text=True)
    assert wrong.returncode == 1 and "role 'head'" in wrong.stderr
    assert not os.path.exists(tmp_path / "c.png")
    # Its own input as the output: refused, the photo untouched (issue 15, defect 15).
    before = open(photo, "rb").read()
    same = subprocess.run([exe, f("tiny_unet.pt"), photo, photo, "cpu"], capture_output=True, text=True)
    assert same.returncode == 2 and "OUT is IN" in same.stderr
    assert open(photo, "rb").read() == before
