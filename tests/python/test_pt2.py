"""Compiled packages (.pt2): the exporter's output equals the eager module at sizes it never saw,
carries the limn metadata and self-test, records what it was compiled for, and refuses what it
cannot build. Each compile takes a few seconds on two cores, so the networks here are tiny."""
import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from limn_models import fixtures, pt2
from limn_models.metadata import Metadata, export, read_metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("pt2") / "tiny.pt2")
    net = fixtures._seeded(fixtures.TinyUNet, 1)
    meta = fixtures._cartoon("tiny-unet", size_multiple=2, tile_margin=8)
    assert export(net, meta, path) is None  # the format follows the extension
    return path, net, meta


def test_package_equals_eager_at_new_sizes_and_batches(tiny_package):
    path, net, _ = tiny_package
    compiled = torch._inductor.aoti_load_package(path)
    for n, h, w in [(1, 96, 64), (3, 34, 22), (1, 4, 130), (2, 200, 8)]:
        x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        with torch.no_grad():
            assert (compiled(x) - net(x)).abs().max().item() <= 1e-5


def test_package_metadata_and_selftest(tiny_package):
    path, net, meta = tiny_package
    assert pt2.is_package(path)
    assert read_metadata(path) == meta
    record = pt2.read_record(path)
    assert record["limn_package_device"] == "cpu"
    assert record["limn_package_precision"] == "fp32"
    assert record["limn_package_input_layout"] == "contiguous"
    assert record["limn_package_torch_version"] == torch.__version__.split("+")[0]
    assert record["limn_package_min_height"] == 4 and record["limn_package_min_width"] == 4
    assert set(record["limn_package_cpu_features"].split()) == set(pt2.cpu_features())
    x, y = record["limn_selftest_input"], record["limn_selftest_output"]
    assert x.shape == (1, 3, 40, 42)
    with torch.no_grad():
        assert torch.allclose(net(x), y, atol=1e-6)
    with zipfile.ZipFile(path) as z:
        assert any(n.endswith("/extra/limn.json") for n in z.namelist())
        assert any(n.endswith(".wrapper.so") for n in z.namelist())


def test_the_library_and_the_exporter_know_the_same_cpu_features():
    source = (ROOT / "src" / "cpu_features.cpp").read_text()
    names = re.findall(r'\{"([a-z0-9_]+)", ', source)
    assert sorted(names) == sorted(pt2.X86_FEATURES)


def test_bad_targets_are_refused_before_compiling(tmp_path):
    meta = fixtures._cartoon("identity")
    with pytest.raises(ValueError, match="precision"):
        export(fixtures.Identity(), meta, str(tmp_path / "a.pt2"), precision="fp8")
    with pytest.raises(ValueError, match="device"):
        export(fixtures.Identity(), meta, str(tmp_path / "a.pt2"), device="mps")
    with pytest.raises(ValueError, match="pt2 packages only"):
        export(fixtures.Identity(), meta, str(tmp_path / "a.pt"), precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="needs a usable CUDA device"):
            export(fixtures.Identity(), meta, str(tmp_path / "a.pt2"), device="cuda")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_export_cli_writes_a_package(tmp_path):
    out = tmp_path / "face.pt2"
    env = {"PYTHONPATH": str(ROOT / "models"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, "-m", "limn_models.export", "face-standin", "--size", "32",
                          "-o", str(out)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "wrote" in run.stdout
    meta = read_metadata(str(out))
    assert meta.kind == "face_restore" and meta.fixed_width == 32
    run = subprocess.run([sys.executable, "-m", "limn_models.metadata", str(out)], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 0 and "face_restore" in run.stdout
    run = subprocess.run([sys.executable, "-m", "limn_models.export", "face-standin", "--help"],
                         capture_output=True, text=True, env=env)
    assert "--format" in run.stdout and "--device" in run.stdout and "--precision" in run.stdout


def test_no_module_of_limn_models_imports_one_that_imports_it_back():
    """The package's imports (at the top or inside functions) form no cycle: pt2 builds packages
    without the metadata module, which uses pt2 to write and read them."""
    package = ROOT / "models" / "limn_models"
    modules = {p.stem for p in package.glob("*.py")}
    imports = {}
    for name in modules:
        found = set()
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("limn_models")):
                parts = (node.module or "").split(".")[1 if node.level == 0 else 0:]
                found |= {parts[0]} if parts and parts[0] else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("limn_models.")}
        imports[name] = found & modules

    def cycle_from(start, path):
        for dep in sorted(imports[path[-1]]):
            if dep == start:
                return path + [dep]
            if dep not in path:
                found = cycle_from(start, path + [dep])
                if found:
                    return found
        return None

    assert imports["metadata"] == {"pt2"}  # the scan sees imports inside functions
    for name in sorted(modules):
        cycle = cycle_from(name, [name])
        assert cycle is None, " -> ".join(cycle)
