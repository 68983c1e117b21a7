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
