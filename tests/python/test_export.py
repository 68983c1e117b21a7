"""Exporter and metadata: exported TorchScript equals the eager module; metadata round-trips."""
import subprocess
import sys

import pytest
import torch

from limn_models import dctnet, export, fixtures, gpen
from limn_models.metadata import Metadata, read_metadata


def test_dctnet_export_equals_eager(tmp_path):
    path = str(tmp_path / "d.pt")
    meta = export.export_dctnet_random(path, seed=3)
    eager = dctnet.DCTNetRGB(dctnet.dctnet_random_init(3)).eval()
    loaded = torch.jit.load(path)
    for h, w in [(36, 52), (40, 44), (64, 64)]:
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        with torch.no_grad():
            assert (loaded(x) - eager(x)).abs().max().item() <= 1e-5
    back = read_metadata(path)
    assert back == meta
    assert back.size_multiple == dctnet.SIZE_MULTIPLE and back.tile_margin == dctnet.TILE_MARGIN
    assert loaded.limn_selftest_input.shape == (1, 3, 40, 44)


def test_gpen_tiny_export_equals_eager(tmp_path):
    net = gpen.gpen_random_init(size=64, seed=1, channel_multiplier=1, narrow=0.125, n_mlp=2, style_dim=64)
    wrapped = gpen.GPENRGB(net).eval()
    meta = export.gpen_metadata(64, "tiny-gpen", "random", "CC0-1.0")
    path = str(tmp_path / "g.pt")
    from limn_models.metadata import export as write
    write(wrapped, meta, path)
    loaded = torch.jit.load(path)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (loaded(x) - wrapped(x)).abs().max().item() <= 1e-5
    m = read_metadata(path)
    assert m.kind == "face_restore" and m.fixed_width == 64 and len(m.face_template) == 10
    assert m.face_template[0] == pytest.approx(202.04 / 8, abs=0.05)


def test_metadata_validation():
    with pytest.raises(ValueError, match="kind"):
        Metadata(kind="painting", name="x").validate()
    with pytest.raises(ValueError, match="size_multiple"):
        Metadata(kind="cartoon", name="x", size_multiple=0).validate()
    with pytest.raises(ValueError, match="face_template"):
        Metadata(kind="face_restore", name="x", fixed_height=8, fixed_width=8).validate()
    with pytest.raises(ValueError, match="both"):
        Metadata(kind="cartoon", name="x", fixed_height=8).validate()


def test_fixtures_are_all_written(tmp_path):
    written = fixtures.write_all(str(tmp_path))
    assert sorted(written) == sorted(fixtures.FIXTURES)
    assert read_metadata(written["no_metadata.pt"]) is None
    assert read_metadata(written["future_version.pt"]).format_version == 99


@pytest.mark.parametrize("module", ["limn_models.export", "limn_models.fixtures"])
def test_command_lines_have_help(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage" in out.stdout


def test_metadata_command_prints_fields_and_refuses_other_files(tmp_path, capsys):
    from limn_models import metadata

    path = str(tmp_path / "c.pt")
    export.export_cartoon_standin(path)
    assert metadata.main([path]) == 0
    out = capsys.readouterr().out
    assert "kind: cartoon" in out and "name: classical-cartoon" in out and "format_version: 1" in out
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    assert metadata.main([str(junk)]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_random_dctnet_head_model(tmp_path):
    """`export dctnet --random-init --head` marks the file as a head network for tests."""
    out = str(tmp_path / "head.pt")
    assert export.main(["dctnet", "--random-init", "--seed", "2", "--head", "-o", out]) == 0
    meta = read_metadata(out)
    assert (meta.kind, meta.role, meta.crop_size) == ("cartoon", "head", dctnet.HEAD_CROP_SIZE)
    assert len(meta.face_template) == 10
