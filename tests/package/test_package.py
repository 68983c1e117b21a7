"""The installed limn package: import, numpy images in and out, errors, threads, closing, faces."""
import dataclasses
import json
import os
import re
import subprocess
import sys
import shutil
import threading
import time
from typing import List

import numpy as np
import pytest

import limn


def cpu(path, **kw):
    return limn.Model(path, device="cpu", precision="fp32", **kw)


# ---- The package -----------------------------------------------------------------------------


def test_installed_package_with_its_library_beside_it():
    here = os.path.dirname(os.path.abspath(__file__))
    src_root = os.path.dirname(os.path.dirname(here))
    pkg = os.path.dirname(limn.__file__)
    source_pkg = os.path.join(src_root, "bindings", "python", "limn")
    assert not os.path.samefile(pkg, source_pkg), "tests must run against the installed package"
    assert os.path.basename(os.path.dirname(pkg)) == "site-packages"
    assert os.path.isfile(os.path.join(pkg, "liblimn.so"))
    assert os.path.isfile(os.path.join(pkg, "_limn.pyi")) and os.path.isfile(os.path.join(pkg, "py.typed"))
    assert limn.build_info().startswith(f"limn {limn.__version__}")
    assert limn.__version__.count(".") == 2
    assert limn.Model.cartoonize.__doc__ and limn.load_image.__doc__


def test_devices_and_memory():
    devs = limn.devices()
    assert devs[0].id == "cpu" and devs[0].type == "cpu" and devs[0].total_memory > 0
    assert isinstance(limn.cuda_available(), bool)
    assert len(devs) == 1 + (limn.cuda_available() and sum(d.type == "cuda" for d in devs))
    assert limn.resolve_device("cpu") == "cpu"
    limn.set_memory_limit("cpu", 1 << 30)
    try:
        stats = limn.memory_stats("cpu")
        assert stats.limit == 1 << 30 and stats.device_total > 0 and stats.peak_reserved > 0
    finally:
        limn.set_memory_limit("cpu", 0)
    limn.reset_peak_memory("cpu")
    limn.release_cached_memory("cpu")
    with pytest.raises(limn.InvalidArgumentError, match="tpu"):
        limn.memory_stats("tpu")


def test_memory_stats_count_the_allocations_of_limn_calls(fixtures):
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m:
        before = limn.memory_stats("cpu").allocations
        m.cartoonize(np.zeros((64, 96, 3), np.uint8))
        assert limn.memory_stats("cpu").allocations > before  # tensors outside any arena's cache


def test_model_info_and_loading_from_bytes(fixtures):
    path = os.path.join(fixtures, "identity_face.pt")
    with cpu(path) as m:
        info = m.info
        assert (info.kind, info.name, info.device, info.precision) == ("face_restore", "identity-face", "cpu", "fp32")
        assert info.fixed_size == (64, 64) and info.face_template.shape == (5, 2)
        assert "identity-face" in repr(m)
    with open(path, "rb") as f:
        data = f.read()
    with limn.Model(data, device="cpu", name="from-bytes") as m:
        assert m.info.name == "identity-face"
    with limn.Model(memoryview(data), device="cpu") as m:
        assert m.info.kind == "face_restore"


def test_compiled_packages(fixtures, astronaut, bin_dir, tmp_path):
    """A .pt2 package: same results as the TorchScript file, from a path or bytes, its fixed
    precision, the expected SHA-256, and the CLI."""
    digests = dict(reversed(line.split()) for line in open(os.path.join(fixtures, "SHA256SUMS")))
    path = os.path.join(fixtures, "tiny_unet.pt2")
    photo = np.ascontiguousarray(astronaut[:200, :300])
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as ts, limn.Model(path, expected_sha256=digests["tiny_unet.pt2"]) as m:
        assert m.info.file_format == "pt2" and ts.info.file_format == "torchscript"
        assert (m.info.device, m.info.precision) == ("cpu", "fp32")  # "auto" takes the package's
        a, b = ts.cartoonize(photo), m.cartoonize(photo)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    with open(path, "rb") as f:
        data = f.read()
    with limn.Model(data, name="asset:tiny") as m:
        assert m.info.file_format == "pt2"
    with pytest.raises(limn.UnsupportedError, match="compiled for fp32"):
        limn.Model(path, precision="fp16")
    with pytest.raises(limn.InvalidModelError, match="SHA-256"):
        limn.Model(path, expected_sha256=digests["identity.pt"])
    with pytest.raises(limn.InvalidArgumentError, match="expected_sha256"):
        limn.Model(path, expected_sha256="abc")
    run = subprocess.run([os.path.join(bin_dir, "limn"), "info", path], capture_output=True, text=True)
    assert run.returncode == 0 and "compiled package (pt2) for cpu, fp32" in run.stdout
    assert "smallest input: 4x4" in run.stdout
    src = tmp_path / "in.png"
    limn.save_image(str(src), photo)
    run = subprocess.run([os.path.join(bin_dir, "limn"), "cartoonize", str(src), "-o", str(tmp_path / "out.png"),
                          "-m", path], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert limn.load_image(str(tmp_path / "out.png")).shape == photo.shape


# ---- Images ----------------------------------------------------------------------------------


def test_rgb_and_rgba_round_trip_through_an_identity_model(fixtures, astronaut):
    with cpu(os.path.join(fixtures, "identity.pt")) as m:
        out = m.run(astronaut)
        assert out.dtype == np.uint8 and out.shape == astronaut.shape
        assert out is not astronaut and not np.shares_memory(out, astronaut)
        assert (out == astronaut).all()
        rgba = np.dstack([astronaut, np.arange(512 * 512, dtype=np.uint32).reshape(512, 512).astype(np.uint8)])
        out = m.run(rgba)
        assert out.shape == (512, 512, 4) and (out == rgba).all()  # alpha passes through
        batch = m.run_batch([astronaut[:64, :64], astronaut[64:128, :64]])
        assert len(batch) == 2 and (batch[1] == astronaut[64:128, :64]).all()


def test_views_are_used_without_a_copy_when_the_layout_allows(fixtures, astronaut):
    crop = astronaut[100:300, 50:250]          # rows of packed pixels, a longer row stride
    assert limn._limn.describe_image(crop) == {"width": 200, "height": 200, "stride": 512 * 3,
                                               "channels": 3, "copied": False}
    flipped = astronaut[:, ::-1]                # negative pixel stride: copied
    assert limn._limn.describe_image(flipped)["copied"] is True
    every_other = astronaut[::2, ::2]           # pixel stride 6: copied
    assert limn._limn.describe_image(every_other)["copied"] is True
    fortran = np.asfortranarray(astronaut)
    assert limn._limn.describe_image(fortran)["copied"] is True
    with limn.Model(os.path.join(fixtures, "tiny_unet.pt"), device="cpu", precision="fp32") as m:
        for view in (crop, flipped, every_other, fortran):
            assert (m.cartoonize(view) == m.cartoonize(np.ascontiguousarray(view))).all()


def test_wrong_images_give_type_and_value_errors(fixtures, astronaut):
    with cpu(os.path.join(fixtures, "identity.pt")) as m:
        with pytest.raises(TypeError, match="dtype float32; expected uint8"):
            m.run(astronaut.astype(np.float32))
        with pytest.raises(TypeError, match="uint16"):
            m.cartoonize(astronaut.astype(np.uint16))
        with pytest.raises(ValueError, match=r"shape \(512, 512\); expected \(height, width, 3\).*grayscale"):
            m.run(astronaut[:, :, 0])
        with pytest.raises(ValueError, match=r"shape \(512, 512, 2\)"):
            m.run(astronaut[:, :, :2])
        with pytest.raises(ValueError, match=r"shape \(4, 512, 512, 3\)"):
            m.run(np.stack([astronaut] * 4))
        with pytest.raises(ValueError, match="empty"):
            m.run(astronaut[:0])
        with pytest.raises(TypeError, match="numpy array"):
            m.run([[1, 2, 3]])
        with pytest.raises(TypeError, match="None"):
            m.run(None)
        with pytest.raises(TypeError, match="numpy array"):
            m.run("photo.png")
        with pytest.raises(ValueError, match="invalid precision 'fp8'"):
            limn.Model(os.path.join(fixtures, "identity.pt"), precision="fp8")
        assert m.info.precision_note == ""
    with pytest.raises(limn.UnsupportedError, match="tf32 is a mode of CUDA devices"):
        limn.Model(os.path.join(fixtures, "identity.pt"), device="cpu", precision="tf32")


def test_image_files(tmp_path, astronaut):
    path = tmp_path / "a.png"
    limn.save_image(path, astronaut)
    assert (limn.load_image(path) == astronaut).all()
    assert limn.load_image(str(path), "rgba").shape == (512, 512, 4)
    jpeg = limn.encode_image(astronaut, "jpeg", quality=90)
    assert jpeg[:2] == b"\xff\xd8"
    decoded = limn.load_image(jpeg)
    assert decoded.shape == astronaut.shape and np.abs(decoded.astype(int) - astronaut).mean() < 4
    assert (limn.load_image(limn.encode_image(astronaut[10:20, 30:45])) == astronaut[10:20, 30:45]).all()
    with pytest.raises(limn.FileError) as e:
        limn.save_image(tmp_path / "missing" / "b.png", astronaut)
    assert isinstance(e.value, OSError) and "missing" in str(e.value)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(limn.ImageTooLargeError):
        limn.load_image(path, max_pixels=1000)


# ---- Errors ----------------------------------------------------------------------------------


def test_every_status_has_its_exception_class():
    classes = limn._ERROR_CLASSES  # by status value, from the library's status table
    assert sorted(classes) == list(range(1, 15))
    for cls in classes.values():
        assert issubclass(cls, limn.Error) and cls.__name__ in limn.__all__
    assert issubclass(limn.FileError, OSError) and issubclass(limn.OutOfMemoryError, MemoryError)
    assert issubclass(limn.DeadlineExceededError, TimeoutError)
    assert issubclass(limn.InvalidArgumentError, ValueError) and issubclass(limn.InternalError, RuntimeError)


def test_statuses_raise_their_exceptions_with_the_library_message(fixtures, astronaut, tmp_path):
    f = lambda name: os.path.join(fixtures, name)  # noqa: E731
    with pytest.raises(limn.FileError, match="no-such-model.pt"):
        limn.Model(str(tmp_path / "no-such-model.pt"))
    with pytest.raises(limn.InvalidModelError, match="garbage.pt"):
        limn.Model(f("garbage.pt"), device="cpu")
    with pytest.raises(limn.WrongModelKindError, match="cartoon"):
        limn.Model(f("identity.pt"), device="cpu", kind="face_restore")
    if not limn.cuda_available():
        with pytest.raises(limn.DeviceUnavailableError, match="cuda"):
            limn.Model(f("identity.pt"), device="cuda")
    with pytest.raises(limn.DeviceUnavailableError, match="cuda:99"):
        limn.Model(f("identity.pt"), device="cuda:99")
    with pytest.raises(limn.InvalidImageError):
        limn.load_image(b"this is not an image")
    with cpu(f("identity.pt"), max_pixels=100) as m:
        with pytest.raises(limn.ImageTooLargeError, match="limit"):
            m.run(astronaut[:20, :20])
    with cpu(f("tiny_unet.pt")) as m:
        with pytest.raises(limn.SizeRuleError, match="multiples of 2"):
            m.run(astronaut[:21, :20])
        with pytest.raises(limn.InvalidArgumentError, match="strength"):
            m.cartoonize(astronaut, strength=2.0)
        with pytest.raises(limn.CancelledError, match="cancelled"):
            m.cartoonize(astronaut, tile=64, progress=lambda done, total: done < 2)
        with pytest.raises(limn.DeadlineExceededError, match="deadline"):
            m.cartoonize(astronaut, tile=64, timeout=0.05, progress=lambda d, t: time.sleep(0.02))
        with pytest.raises(ValueError, match="timeout"):
            m.cartoonize(astronaut, timeout=-1)
    with cpu(f("nan.pt"), warmup=False) as m:
        with pytest.raises(limn.NonFiniteError, match="non-finite"):
            m.run(astronaut[:8, :8])
    with cpu(f("oom_above_4096px.pt")) as m:
        with pytest.raises(limn.OutOfMemoryError):
            m.run(astronaut[:65, :65])
        assert m.run(astronaut[:64, :64]).shape == (64, 64, 3)  # still usable
    with cpu(f("fixed_cartoon.pt")) as m:
        with pytest.raises(limn.UnsupportedError, match="fixed size"):
            m.cartoonize(astronaut)


def test_progress_is_called_and_its_exceptions_come_back(fixtures, astronaut):
    calls = []
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m:
        out, stats = m.cartoonize(astronaut, tile=128, progress=lambda d, t: calls.append((d, t)),
                                  return_stats=True)
        assert calls[0] == (0, stats.tiles) and calls[-1] == (stats.tiles, stats.tiles) and stats.tiles > 1
        assert stats.width == 512 and stats.seconds > 0

        def boom(done, total):
            if done == 1:
                raise KeyError("from the callback")

        with pytest.raises(KeyError, match="from the callback"):
            m.cartoonize(astronaut, tile=128, progress=boom)
        with pytest.raises(TypeError, match="callable"):
            m.cartoonize(astronaut, progress=42)


# ---- Against the C command-line tool ---------------------------------------------------------


def test_cartoonize_equals_the_cli_bit_for_bit(bin_dir, parity, astronaut, tmp_path):
    model = os.path.join(parity, "cartoon-standin.pt")
    limn.save_image(tmp_path / "in.png", astronaut)
    run = subprocess.run([os.path.join(bin_dir, "limn"), "cartoonize", str(tmp_path / "in.png"), "-o",
                          str(tmp_path / "cli.png"), "-m", model, "-d", "cpu", "-p", "fp32", "-q"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with cpu(model) as m:
        ours = m.cartoonize(limn.load_image(tmp_path / "in.png"))
    cli = limn.load_image(tmp_path / "cli.png")
    assert np.abs(ours.astype(int) - astronaut).mean() > 2  # it did something
    assert (ours == cli).all()


# ---- Threads, closing ------------------------------------------------------------------------


def test_four_threads_share_one_model_in_parallel(parity, astronaut):
    images = [np.ascontiguousarray(np.roll(astronaut, 37 * i, axis=1)) for i in range(4)]
    with cpu(os.path.join(parity, "cartoon-standin.pt")) as m:
        serial = [m.cartoonize(img) for img in images]
        results, spans = [None] * 4, [None] * 4
        ticks = [0]
        running = threading.Event()

        def work(i):
            t0 = time.perf_counter()
            results[i] = m.cartoonize(images[i])
            spans[i] = (t0, time.perf_counter())

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):  # Python keeps running while the library works
            ticks[0] += 1
            running.set()
        for t in threads:
            t.join()
    for got, want in zip(results, serial):
        assert (got == want).all()
    starts, ends = [s for s, _ in spans], [e for _, e in spans]
    assert max(starts) < min(ends), f"calls did not overlap: {spans}"
    assert ticks[0] > 1000, "the main thread was starved: is the GIL held during the call?"


def test_close_and_context_manager(fixtures, astronaut):
    m = cpu(os.path.join(fixtures, "identity.pt"))
    with m as same:
        assert same is m and not m.closed
    assert m.closed and "closed" in repr(m)
    with pytest.raises(limn.InvalidArgumentError, match="closed"):
        m.run(astronaut)
    m.close()  # twice is fine
    # A close while another thread runs: that call finishes, later ones are refused.
    m = cpu(os.path.join(fixtures, "tiny_unet.pt"))
    started, go = threading.Event(), threading.Event()
    box = {}

    def slow_progress(done, total):
        started.set()
        go.wait(10)

    t = threading.Thread(target=lambda: box.setdefault("out", m.cartoonize(astronaut, tile=128,
                                                                            progress=slow_progress)))
    t.start()
    started.wait(10)
    m.close()
    go.set()
    t.join()
    assert box["out"].shape == astronaut.shape
    with pytest.raises(limn.InvalidArgumentError, match="closed"):
        m.cartoonize(astronaut)


def test_no_crash_at_interpreter_exit_with_open_models(fixtures, astronaut):
    script = (
        "import limn, numpy as np\n"
        f"a = limn.Model({os.path.join(fixtures, 'identity.pt')!r}, device='cpu')\n"
        f"b = limn.Model({os.path.join(fixtures, 'tiny_unet.pt')!r}, device='cpu')\n"
        "a.run(np.zeros((8, 8, 3), np.uint8))\n"
        "print('done')\n"
    )
    run = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"


# ---- Faces -----------------------------------------------------------------------------------


def test_detect_and_restore_faces(fixtures, detect_cases, astronaut):
    with cpu(os.path.join(detect_cases, "retinaface.pt")) as det, \
            cpu(os.path.join(fixtures, "identity_face.pt")) as face:
        faces = det.detect_faces(astronaut)
        assert len(faces) == 1
        (f,) = faces
        assert f.score > 0.9 and f.landmarks.shape == (5, 2) and f.landmarks.dtype == np.float32
        x0, y0, x1, y1 = f.box
        assert x0 < f.landmarks[:, 0].min() and f.landmarks[:, 0].max() < x1
        assert f.landmarks[0, 0] < f.landmarks[1, 0]  # left eye, right eye
        assert det.detect_faces(astronaut, score_threshold=0.99999) == []

        by_detector, stats = face.restore_faces(astronaut, detector=det, return_stats=True)
        assert (stats.faces_found, stats.faces, stats.faces_skipped) == (1, 1, 0)
        assert (face.restore_faces(astronaut, faces) == by_detector).all()
        assert (face.restore_faces(astronaut, f.landmarks) == by_detector).all()
        assert (face.restore_faces(astronaut, f.landmarks.reshape(1, 10)) == by_detector).all()
        assert (by_detector[400:] == astronaut[400:]).all()
        _, stats = face.restore_faces(astronaut, detector=det, min_face_size=5000, return_stats=True)
        assert (stats.faces, stats.faces_skipped) == (0, 1)
        with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
            face.restore_faces(astronaut, np.zeros((3, 2)))
        with pytest.raises(limn.WrongModelKindError, match="face_detect"):
            face.restore_faces(astronaut, detector=face)
        with pytest.raises(limn.WrongModelKindError):
            face.detect_faces(astronaut)
        with pytest.raises(limn.InvalidArgumentError, match="score_threshold"):
            det.detect_faces(astronaut, score_threshold=1.5)
        with pytest.raises(TypeError, match="limn.Model"):
            face.restore_faces(astronaut, detector="retinaface.pt")


@pytest.mark.skipif(not limn.cuda_available(), reason="no CUDA device")
def test_cuda_matches_the_cpu(parity, astronaut):
    model = os.path.join(parity, "cartoon-standin.pt")
    with cpu(model) as c, limn.Model(model, device="cuda", precision="fp32") as g:
        assert g.info.device.startswith("cuda")
        diff = np.abs(g.cartoonize(astronaut).astype(int) - c.cartoonize(astronaut))
        assert diff.max() <= 2
        g.close()
        stats = limn.memory_stats(g.info.device)
        assert stats.device_total > 0


def test_the_folder_example(parity, astronaut, tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "cartoonize_folder.py")
    photos = tmp_path / "photos"
    photos.mkdir()
    limn.save_image(photos / "a.png", astronaut)
    limn.save_image(photos / "b.jpg", astronaut[:300, 100:400])
    (photos / "broken.png").write_bytes(b"not a png")
    (photos / "notes.txt").write_text("skipped")
    model = os.path.join(parity, "cartoon-standin.pt")
    run = subprocess.run([sys.executable, "-I", example, str(photos), str(tmp_path / "out"), "--model", model,
                          "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr  # one photo was broken; the others were done
    assert "broken.png:" in run.stderr and "2 of 3 photos" in run.stderr and "100.0%" in run.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png"]
    with limn.Model(model, device="cpu") as m:  # as the example loads it (precision "auto")
        assert (limn.load_image(tmp_path / "out" / "a.png") == m.cartoonize(astronaut)).all()


def test_the_installed_command(tmp_path, astronaut):
    """pip puts `limn` on PATH (the CLI, with its built-in model) and `python -m limn` runs it;
    `limn models` lists the registry; a model name not fetched yet says how to fetch it."""
    command = os.path.join(os.path.dirname(sys.executable), "limn")
    env = {**os.environ, "LIMN_HOME": str(tmp_path / "cache")}
    env.pop("LIMN_CARTOON_MODEL", None)
    run = subprocess.run([command, "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("limn ")
    run = subprocess.run([sys.executable, "-m", "limn", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("limn ")
    photo, out = tmp_path / "photo.png", tmp_path / "cartoon.png"
    limn.save_image(photo, astronaut[:128, :160])
    run = subprocess.run([command, "cartoonize", str(photo), "-o", str(out), "-q"], capture_output=True,
                         text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert limn.load_image(out).shape == (128, 160, 3)
    run = subprocess.run([command, "models", "list"], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "gpen-bfr-512" in run.stdout and "retinaface" in run.stdout
    run = subprocess.run([command, "cartoonize", str(photo), "-o", str(out), "-m", "dctnet-anime"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 3 and "limn models fetch dctnet-anime" in run.stderr
    run = subprocess.run([command, "info", "--json", os.path.join(os.path.dirname(limn.__file__), "models",
                                                                  "classical-cartoon.pt")],
                         capture_output=True, text=True)
    assert run.returncode == 0 and json.loads(run.stdout)["kind"] == "cartoon"


def test_the_command_finds_torch_in_another_site_packages(tmp_path, astronaut):
    """The package installed apart from torch (a venv made with --system-site-packages, the user
    site, conda layers): the CLI binary's relative RUNPATH ($ORIGIN/../torch/lib) misses LibTorch,
    so the `limn` entry point puts the libraries of the torch this Python imports on its path."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(limn.__file__), site / "limn", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert not (site / "torch").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    photo, out = tmp_path / "photo.png", tmp_path / "cartoon.png"
    limn.save_image(photo, astronaut[:96, :128])
    for args in (["--version"], ["cartoonize", str(photo), "-o", str(out), "-q", "-d", "cpu"]):
        code = f"import sys; sys.path.insert(0, {str(site)!r}); from limn.__main__ import main; sys.exit(main({args!r}))"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=120)
        assert run.returncode == 0, run.stderr
    assert limn.load_image(out).shape == (96, 128, 3)


def _parameters(doc: str) -> List[str]:
    """Parameter names from a pybind11 signature line "f(a: T, b: U[V, W]) -> R" (self dropped)."""
    inner = doc[doc.index("(") + 1:doc.rindex(") ->")]
    names, depth, start = [], 0, 0
    for k, c in enumerate(inner + ","):
        depth += c in "[(" and 1 or c in "])" and -1 or 0
        if c == "," and depth == 0:
            part = inner[start:k].strip()
            if part:
                names.append(part.split(":")[0].strip())
            start = k + 1
    return [n for n in names if n != "self"]


def _limn_header() -> str:
    """The source tree's include/limn/limn.h (this test lives in the same tree)."""
    return open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "limn", "limn.h")).read()


def _number_fields(header: str, struct: str) -> List[str]:
    """The fields of C struct ``struct`` in limn.h whose type is a number (float, [u]intN_t; not
    struct_size or a size_t count, which go with their arrays), in order."""
    body = re.search(r"typedef struct " + struct + r" \{(.*?)\} " + struct + ";", header, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return re.findall(r"^\s*(?:float|u?int(?:8|16|32|64)_t)\s+(\w+);", body, re.M)


def test_the_extension_stubs_match_the_bindings():
    """_limn.pyi names every function and method of the extension with its parameters in order (the
    stubs had drifted: cartoonize's face options and read_icc_profile were missing)."""
    import ast

    from limn import _limn

    tree = ast.parse(open(os.path.join(os.path.dirname(limn.__file__), "_limn.pyi")).read())

    def stub_args(fn: ast.FunctionDef) -> List[str]:
        return [a.arg for a in fn.args.args if a.arg != "self"]

    stub_functions = {n.name: stub_args(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    model = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model")
    stub_methods = {n.name: stub_args(n) for n in model.body if isinstance(n, ast.FunctionDef)}
    bound = {name: getattr(_limn, name) for name in dir(_limn) if not name.startswith("__")
             and callable(getattr(_limn, name)) and not isinstance(getattr(_limn, name), type)}
    assert sorted(stub_functions) == sorted(bound)
    for name, fn in bound.items():
        assert stub_functions[name] == _parameters(fn.__doc__.splitlines()[0]), name
    methods = {name: getattr(_limn.Model, name) for name in dir(_limn.Model)
               if (not name.startswith("_") or name == "__init__")}
    assert sorted(stub_methods) == sorted(methods)
    for name, member in methods.items():
        if isinstance(member, property):
            continue
        assert stub_methods[name] == _parameters(member.__doc__.splitlines()[0]), name
    # The pipelines' option classes (the C structs): every number field of the C struct in limn.h is
    # named in its LIMN_*_OPTIONS_NUMBERS list (so a new one is bound, copied and given a default),
    # and is an attribute; the stub declares them generically.
    header = _limn_header()
    for cls, struct in (("CartoonizeOptions", "limn_cartoonize_options"),
                        ("DetectFacesOptions", "limn_detect_faces_options"),
                        ("RestoreFacesOptions", "limn_restore_faces_options")):
        options = getattr(_limn, cls)()
        assert [k for k in dir(options) if not k.startswith("_")] == sorted(options._fields), cls
        assert list(options._fields) == _number_fields(header, struct), cls
        stub = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
        assert [b.id for b in stub.bases] == ["_Options"], cls
    assert _limn.CartoonizeOptions().working_size == 720 and _limn.DetectFacesOptions().score_threshold > 0.89


# ---- DCT-Net's compound stylization against an eager reference ---------------------------------

# The astronaut's 5 landmarks as RetinaFace finds them (photo pixels): eyes, nose, mouth corners.
ASTRONAUT_LANDMARKS = np.array([[202.12, 101.25], [246.22, 102.28], [222.73, 128.48], [203.03, 141.32],
                                [244.85, 142.42]], np.float32)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping the
    points ``src`` onto ``dst``, as a 2x3 matrix [[a, -b, tx], [b, a, ty]]."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = (s ** 2).sum()
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    t = md - np.array([a * ms[0] - b * ms[1], b * ms[0] + a * ms[1]])
    return np.array([[a, -b, t[0]], [b, a, t[1]]])


def _compound_reference(photo: np.ndarray, faces: list, background, head, crop: int, template: np.ndarray,
                        working_size: int, feather: float) -> np.ndarray:
    """DCT-Net's compound flow in eager PyTorch, from its description: the photo worked on with its
    shorter side at most ``working_size`` (antialiased bilinear), the background network on it;
    each face aligned by a similarity transform of its landmarks (in working pixels) onto the head
    template, cropped (bilinear, white beyond the photo), stylized by the head network, warped back
    and blended with a mask rising linearly over ``feather * crop`` pixels from the crop's edges;
    then bilinear back to the photo's size."""
    import torch
    import torch.nn.functional as F

    H, W = photo.shape[:2]
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].double().div(255).float()
    s = min(1.0, working_size / min(H, W)) if working_size > 0 else 1.0
    h, w = (max(1, round(H * s)), max(1, round(W * s))) if s < 1 else (H, W)
    small = F.interpolate(x, (h, w), mode="bilinear", align_corners=False, antialias=True) if s < 1 else x
    with torch.no_grad():
        result = background(small).float()
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    ci, cj = torch.meshgrid(torch.arange(crop, dtype=torch.float64), torch.arange(crop, dtype=torch.float64), indexing="ij")
    for f in faces:
        pts = (f.astype(np.float64) + 0.5) * np.array([w / W, h / H]) - 0.5
        m = _similarity(pts, template.astype(np.float64))  # photo -> crop
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]  # crop -> photo
        # The crop: each crop pixel samples the working picture (pixel centres at integers).
        u = inv[0, 0] * cj + inv[0, 1] * ci + inv[0, 2]
        v = inv[1, 0] * cj + inv[1, 1] * ci + inv[1, 2]
        grid = torch.stack([u * 2 / (w - 1) - 1, v * 2 / (h - 1) - 1], -1)[None].float()
        cropped = 1 - F.grid_sample(1 - small, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        with torch.no_grad():
            styled = head(cropped).float()
        # Back: each picture pixel samples the stylized crop where the crop covers it.
        q_x = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        q_y = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        grid = torch.stack([q_x * 2 / (crop - 1) - 1, q_y * 2 / (crop - 1) - 1], -1)[None].float()
        back = F.grid_sample(styled, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        edge = torch.minimum(torch.minimum(q_x, crop - 1 - q_x), torch.minimum(q_y, crop - 1 - q_y))
        mask = ((edge / (feather * crop)).clamp(0, 1) * (edge >= 0)).float()[None, None]
        result = result + (back - result) * mask
    if s < 1:
        result = F.interpolate(result, (H, W), mode="bilinear", align_corners=False)
    return result[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_compound_cartoonize_matches_the_eager_reference(fixtures, astronaut):
    """limn's compound pipeline against the eager reference, within one level, on the astronaut
    (worked on at 384) and on a 2x2 collage of the portrait at four face sizes."""
    import torch

    background = torch.jit.load(os.path.join(fixtures, "tiny_unet.pt")).eval()
    head_net = torch.jit.load(os.path.join(fixtures, "tiny_head.pt")).eval()
    tiles = [(256, (0, 0)), (128, (256, 0)), (192, (0, 256)), (96, (256, 256))]
    collage = np.full((448, 512, 3), 255, np.uint8)
    collage_faces = []
    for side, (x0, y0) in tiles:
        t = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float()
        small = torch.nn.functional.interpolate(t, (side, side), mode="bilinear", antialias=True, align_corners=False)
        collage[y0:y0 + side, x0:x0 + side] = small[0].round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        k = side / 512
        collage_faces.append((ASTRONAUT_LANDMARKS + 0.5) * k - 0.5 + np.array([x0, y0], np.float32))
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as bg, cpu(os.path.join(fixtures, "tiny_head.pt")) as head:
        assert head.info.role == "head" and head.info.crop_size == 64
        template = head.info.face_template
        for photo, faces, working in ((astronaut, [ASTRONAUT_LANDMARKS], 384), (collage, collage_faces, 0)):
            got, stats = bg.cartoonize(photo, head_model=head, faces=faces, working_size=working, return_stats=True)
            assert stats.faces == len(faces) and stats.faces_found == len(faces)
            want = _compound_reference(photo, faces, background, head_net, 64, template, working, 0.1)
            diff = np.abs(got.astype(int) - want.astype(int))
            assert diff.max() <= 1, (diff.max(), (diff > 1).sum())
            plain = bg.cartoonize(photo, working_size=working)
            assert (got != plain).any()
        with cpu(os.path.join(fixtures, "tiny_detect.pt")) as det:
            seen = []
            _, stats = bg.cartoonize(astronaut, head_model=head, detector=det, return_stats=True,
                                     progress=lambda d, t: seen.append((d, t)) is None)
            assert (stats.faces_found, stats.faces) == (2, 2)  # the detector's fixed faces A and C
            assert seen[-1] == (stats.tiles + 2, stats.tiles + 2)
        with pytest.raises(limn.InvalidArgumentError, match="needs the faces"):
            bg.cartoonize(astronaut, head_model=head)
        with pytest.raises(limn.WrongModelKindError, match="role 'head'"):
            bg.cartoonize(astronaut, head_model=bg, faces=[ASTRONAUT_LANDMARKS])


def test_pil_modes_dtype_hints_and_clear_value_errors(fixtures, astronaut, tmp_path):
    """Issue 15, defects 2, 7, 10 and 14: PIL images in other modes are converted or refused by
    name, dtype hints fit the dtype, restore_faces without faces or detector, negative memory
    limits and bytes paths."""
    Image = pytest.importorskip("PIL.Image")
    rgb = Image.fromarray(np.ascontiguousarray(astronaut[:64, :80]))
    with cpu(os.path.join(fixtures, "identity.pt")) as m, cpu(os.path.join(fixtures, "identity_face.pt")) as face:
        for mode, back in (("CMYK", "CMYK"), ("YCbCr", "YCbCr"), ("HSV", "HSV"), ("P", "RGB"), ("L", "L"),
                           ("LA", "LA"), ("RGBA", "RGBA")):
            img = rgb.convert(mode)
            wide = "RGBA" if mode in ("LA", "RGBA") else "RGB"
            want = np.asarray(img.convert(wide)).astype(int)
            out = m.run(img)  # a PIL image in: a PIL image out, in the input's mode family
            assert out.mode == back and out.size == img.size, mode
            assert np.abs(np.asarray(out.convert(wide)).astype(int) - want).max() <= 3, mode
        with pytest.raises(TypeError, match="mode 'I'"):
            m.run(rgb.convert("I"))
        with pytest.raises(TypeError, match=r"np.clip\(x, 0, 1\) \* 255"):
            m.run(astronaut.astype(np.float32) / 255)
        with pytest.raises(TypeError, match=r"x >> 8"):
            m.run(astronaut.astype(np.uint16) * 257)
        with pytest.raises(ValueError, match="needs the faces"):
            face.restore_faces(astronaut)
    with pytest.raises(ValueError, match=">= 0"):
        limn.set_memory_limit("cpu", -5)
    path = tmp_path / "a.png"
    limn.save_image(path, astronaut)
    assert (limn.load_image(os.fsencode(str(path))) == astronaut).all()


def test_file_objects_pil_results_and_array_batches(fixtures, astronaut, tmp_path):
    """Pillow habits (issue 15): file objects and BytesIO in load_image/save_image, a PIL image
    in gives one out from cartoonize, (N, H, W, C) arrays through run_batch, os.PathLike paths."""
    import io
    import pathlib

    Image = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    limn.save_image(buf, astronaut, format="png")
    assert (limn.load_image(io.BytesIO(buf.getvalue())) == astronaut).all()
    path = tmp_path / "a.png"
    with open(path, "wb") as f:
        limn.save_image(f, astronaut)  # the format from the file's name
    with open(path, "rb") as f:
        assert (limn.load_image(f) == astronaut).all()
    assert (limn.load_image(pathlib.Path(path)) == astronaut).all()
    with pytest.raises(ValueError, match="format="):
        limn.save_image(io.BytesIO(), astronaut)
    with cpu(pathlib.Path(fixtures) / "tiny_unet.pt") as m:
        pil = Image.fromarray(astronaut[:96, :128])
        out = m.cartoonize(pil)
        assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (128, 96)
        assert (np.asarray(out) == m.cartoonize(np.asarray(pil))).all()
        batch = np.stack([astronaut[:64, :64], astronaut[64:128, :64]])
        got = m.run_batch(batch)
        assert isinstance(got, np.ndarray) and got.shape == batch.shape
        assert (got[1] == m.run(batch[1])).all()


def test_icc_profiles_and_library_defaults(fixtures, astronaut, tmp_path):
    """ICC profiles (issue 15): read from files, bytes and file objects, written into PNG, JPEG and
    WebP, carried from a PIL image to the result. Defaults (issue 16): the signatures show the
    library's own, from its *_options_init."""
    import inspect
    import io

    Image = pytest.importorskip("PIL.Image")
    profile = _icc_profile()
    img = Image.fromarray(astronaut[:48, :64])
    img.save(tmp_path / "a.jpg", icc_profile=profile)
    assert limn.read_icc_profile(tmp_path / "a.jpg") == profile
    assert limn.read_icc_profile((tmp_path / "a.jpg").read_bytes()) == profile
    with open(tmp_path / "a.jpg", "rb") as f:
        assert limn.read_icc_profile(f) == profile
    img.save(tmp_path / "plain.png")
    assert limn.read_icc_profile(tmp_path / "plain.png") is None
    pixels = limn.load_image(tmp_path / "a.jpg")
    for fmt in ("png", "jpeg", "webp"):
        try:
            data = limn.encode_image(pixels, fmt, icc_profile=profile)
        except limn.UnsupportedError:
            continue
        assert Image.open(io.BytesIO(data)).info.get("icc_profile") == profile
        assert limn.read_icc_profile(data) == profile
    limn.save_image(tmp_path / "b.png", pixels, icc_profile=profile)
    assert Image.open(tmp_path / "b.png").info["icc_profile"] == profile
    with pytest.raises(TypeError, match="icc_profile"):
        limn.save_image(tmp_path / "c.png", pixels, icc_profile="sRGB")
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m:
        out = m.cartoonize(Image.open(tmp_path / "a.jpg"))
        assert out.info.get("icc_profile") == profile
        out.save(tmp_path / "d.png")
        assert Image.open(tmp_path / "d.png").info.get("icc_profile") == profile
    cartoonize = inspect.signature(limn.Model.cartoonize).parameters
    assert cartoonize["working_size"].default == 720 and cartoonize["feather"].default == 0.1
    assert cartoonize["strength"].default == 1.0
    assert inspect.signature(limn.Model.detect_faces).parameters["score_threshold"].default == 0.9
    assert inspect.signature(limn.load_image).parameters["max_pixels"].default == 64 * 1024 * 1024
    assert inspect.signature(limn.save_image).parameters["quality"].default == 95


def test_tiff_in(tmp_path, astronaut):
    """TIFF photos in through libtiff (issue 15, formats): RGB, RGBA, the orientation tag, the
    size checked before decoding, a truncated file refused."""
    Image = pytest.importorskip("PIL.Image")
    crop = np.ascontiguousarray(astronaut[:40, :60])
    Image.fromarray(crop).save(tmp_path / "rgb.tif")
    try:
        got = limn.load_image(tmp_path / "rgb.tif")
    except limn.UnsupportedError as e:
        pytest.skip(str(e))
    assert (got == crop).all()
    alpha = np.arange(40 * 60, dtype=np.uint32).reshape(40, 60).astype(np.uint8) | 1
    alpha[:10] = 255
    rgba = np.dstack([crop, alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.tif", compression="tiff_lzw")
    back = limn.load_image(tmp_path / "rgba.tif")
    assert back.shape == rgba.shape and (back[..., 3] == alpha).all()
    assert (back[:10] == rgba[:10]).all()  # opaque: exact
    # Partly transparent: libtiff premultiplies, limn divides back; within that rounding.
    step = np.ceil(255.0 / alpha[..., None])
    assert (np.abs(back[..., :3].astype(int) - crop.astype(int)) <= step).all()
    Image.fromarray(crop).save(tmp_path / "turned.tif", tiffinfo={274: 6})  # orientation: 90 clockwise
    turned = limn.load_image(tmp_path / "turned.tif")
    assert turned.shape == (60, 40, 3)
    assert (turned == np.rot90(crop, -1)).all()
    with pytest.raises(limn.ImageTooLargeError, match="60x40"):
        limn.load_image(tmp_path / "rgb.tif", max_pixels=100)
    data = (tmp_path / "rgba.tif").read_bytes()
    with pytest.raises(limn.InvalidImageError, match="TIFF"):
        limn.load_image(data[: len(data) // 3])


def test_corrupted_models_raise_limn_errors_never_unicode_errors(fixtures, tmp_path):
    """Byte-mutated copies of a model: every failure is a limn.Error with a readable message
    (issue 16, defect 2: messages quoting file bytes were not UTF-8)."""
    data = open(os.path.join(fixtures, "tiny_unet.pt"), "rb").read()
    rng = np.random.default_rng(7)
    failures = 0
    for i in range(60):
        mutated = bytearray(data)
        for at in rng.integers(0, len(data), size=8):
            mutated[at] = int(rng.integers(128, 256))
        path = tmp_path / f"m{i}.pt"
        path.write_bytes(bytes(mutated))
        try:
            limn.Model(path, device="cpu", precision="fp32", warmup=True).close()
        except limn.Error as e:
            failures += 1
            assert str(e).encode("utf-8").decode("utf-8") == str(e)
    assert failures > 0


def test_the_gpu_harness_detector_step_runs_from_the_installed_package(detect_cases, tmp_path):
    """tests/gpu/run.sh times RetinaFace with examples/bench/python_and_detect.py over the installed
    package (its limn_models, not the checkout's), from another folder, with the weights named by
    LIMN_RETINAFACE_WEIGHTS. The same step once, on the CPU, on the smallest photo."""
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    name = "retinaface-mobilenet0.25.pth"
    weights = next((p for p in (os.path.join(src, "..", "shared", "data", name), os.path.join(src, ".deps", "data", name))
                    if os.path.isfile(p)), None)
    if weights is None:
        pytest.skip(f"no {name} beside {src} (../shared/data or .deps/data)")
    env = {**os.environ, "LIMN_RETINAFACE_WEIGHTS": weights, "OMP_NUM_THREADS": "2"}
    env.pop("PYTHONPATH", None)
    script = os.path.join(src, "examples", "bench", "python_and_detect.py")
    run = subprocess.run([sys.executable, "-I", script, "--device", "cpu", "--smoke"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| detect faces 512x512, full size |" in run.stdout, run.stdout
    assert "| cartoonize 512x512 (classical) |" in run.stdout, run.stdout


# ---- Precision on the CPU, and names ----------------------------------------------------------


def _psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255.0 ** 2 / mse) if mse else float("inf")


def test_native_precisions_and_auto_follow_the_cpu_and_emulated_ones_warn(fixtures):
    """What limn devices says, what AUTO takes, and bf16 asked for where the CPU lacks it: loads,
    with a RuntimeWarning that it is slow (here the features are masked with LIMN_CPU_DISABLE)."""
    from limn_models import fetch

    cpu_dev = limn.devices()[0]
    assert cpu_dev.native_precisions.split()[0] == "fp32"
    assert cpu_dev.auto_precision == ("bf16" if "bf16" in cpu_dev.native_precisions.split() else "fp32")
    # limn_models' own copy of the rule (it must work without the library) decides the same here.
    assert fetch.native_bf16() == (cpu_dev.auto_precision == "bf16")
    with limn.Model(os.path.join(fixtures, "identity.pt"), device="cpu") as m:
        assert m.info.precision == cpu_dev.auto_precision
    script = ("import json, warnings, limn\n"
              "with warnings.catch_warnings(record=True) as w:\n"
              "    warnings.simplefilter('always')\n"
              f"    m = limn.Model({os.path.join(fixtures, 'identity.pt')!r}, device='cpu', precision='bf16')\n"
              f"    a = limn.Model({os.path.join(fixtures, 'identity.pt')!r}, device='cpu')\n"
              "d = limn.devices()[0]\n"
              "print(json.dumps([d.native_precisions, d.auto_precision, a.info.precision, m.info.precision,\n"
              "                  [str(x.message) for x in w if x.category is RuntimeWarning]]))\n")
    env = dict(os.environ, LIMN_CPU_DISABLE="avx512_bf16 amx_bf16 avx512_fp16 amx_fp16")
    run = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    native, auto, loaded_auto, loaded_bf16, warned = json.loads(run.stdout)
    assert (native, auto, loaded_auto, loaded_bf16) == ("fp32", "fp32", "fp32", "bf16")
    assert len(warned) == 1 and "bf16 is slow on this CPU" in warned[0] and "AVX512-BF16" in warned[0]
    cli = subprocess.run([os.path.join(os.path.dirname(limn.__file__), "bin", "limn"), "devices", "--json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert cli.returncode == 0 and json.loads(cli.stdout)[0]["auto_precision"] == "fp32"


def test_bf16_stays_within_45_db_of_fp32_on_every_architecture_and_tiles_stay_exact(parity, astronaut, tmp_path):
    """The fidelity guard, measured on a photo: each image architecture (random weights, the real
    DCT-Net and GPEN-BFR-512 graphs; GPEN-tiny and the stand-ins) in bf16 against fp32, at least
    45 dB where AUTO takes bf16; and tiled bf16 equals one pass of bf16 to its rounding."""
    if limn.devices()[0].auto_precision != "bf16":
        pytest.skip("this CPU has no native bf16 (AMX-BF16 or AVX512-BF16): AUTO never takes bf16 here, "
                    "and emulated bf16 runs GPEN-512 minutes long")
    from limn_models import export

    gpen512 = str(tmp_path / "gpen-bfr-512.pt")
    export.export_gpen(gpen512, "GPEN-BFR-512", None, seed=0)
    cases = {"dctnet.pt": astronaut, "cartoon-standin.pt": astronaut,
             "gpen-tiny.pt": np.ascontiguousarray(astronaut[100:164, 200:264]),
             "face-standin.pt": np.ascontiguousarray(astronaut[100:164, 200:264]),
             gpen512: astronaut}
    for name, photo in cases.items():
        path = name if os.path.isabs(name) else os.path.join(parity, name)
        with cpu(path) as f32, limn.Model(path, device="cpu", precision="bf16") as b16, \
                limn.Model(path, device="cpu") as auto:
            db = _psnr8(f32.run(photo), b16.run(photo))
            print(f"{os.path.basename(path)}: bf16 vs fp32 {db:.1f} dB; auto {auto.info.precision}")
            if auto.info.precision == "bf16":
                assert db >= 45.0, name
            else:
                assert "dB from its fp32" in auto.info.precision_note or limn.devices()[0].auto_precision == "fp32"
    with limn.Model(os.path.join(parity, "dctnet.pt"), device="cpu", precision="bf16") as m:
        whole = m.cartoonize(astronaut).astype(int)
        tiled, stats = m.cartoonize(astronaut, tile=200, return_stats=True)
        tiled = tiled.astype(int)
        assert stats.tiles > 1
        print(f"dctnet bf16, tiles of 200 against one pass: max {np.abs(whole - tiled).max()} levels, "
              f"{_psnr8(whole, tiled):.1f} dB")
        assert np.abs(whole - tiled).max() <= 1  # bf16's rounding, no seams


def test_a_fetched_name_runs_its_cpu_package_first_and_falls_back_to_its_torchscript_file(
        fixtures, astronaut, tmp_path, monkeypatch, bin_dir):
    """models/NAME.cpu-P.pt2 (what `limn models fetch` compiles here) is what a name runs on the CPU
    in "auto" (or P); any other precision, and a package this CPU cannot run, get NAME.pt."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(os.path.join(fixtures, "tiny_unet.pt"), models / "toy.pt")
    shutil.copyfile(os.path.join(fixtures, "tiny_unet.pt2"), models / "toy.cpu-fp32.pt2")
    monkeypatch.setenv("LIMN_HOME", str(tmp_path))
    with limn.Model("toy", device="cpu") as m:
        assert m.info.file_format == "pt2"
    with limn.Model("toy", device="cpu", precision="fp32") as m:
        assert m.info.file_format == "pt2"
    with limn.Model("toy", device="cpu", precision="bf16") as m:
        assert m.info.file_format == "torchscript"
    src = tmp_path / "in.png"
    limn.save_image(str(src), np.ascontiguousarray(astronaut[:64, :96]))
    run = subprocess.run([os.path.join(bin_dir, "limn"), "cartoonize", str(src), "-o", str(tmp_path / "o.png"),
                          "-m", "toy", "-d", "cpu"], capture_output=True, text=True, env=dict(os.environ))
    assert run.returncode == 0 and "(pt2) on cpu" in run.stderr, run.stderr
    # A package compiled on a CPU with features this one lacks: the TorchScript file instead.
    shutil.copyfile(os.path.join(fixtures, "alien_cpu.pt2"), models / "toy.cpu-bf16.pt2")
    with limn.Model("toy", device="cpu") as m:
        assert m.info.file_format == "pt2" and m.info.precision == "fp32"  # the next package
    os.remove(models / "toy.cpu-fp32.pt2")
    with limn.Model("toy", device="cpu") as m:
        assert m.info.file_format == "torchscript"
    run = subprocess.run([os.path.join(bin_dir, "limn"), "cartoonize", str(src), "-o", str(tmp_path / "o.png"),
                          "-m", "toy", "-d", "cpu", "--overwrite"], capture_output=True, text=True, env=dict(os.environ))
    assert run.returncode == 0 and "(torchscript) on cpu" in run.stderr, run.stderr


# ---- Issue 23: arguments the C types cannot hold, PIL modes, ICC profiles, atomic writes -------

INT32, UINT64 = "-2147483648..2147483647 (int32)", "0..18446744073709551615 (uint64)"


def test_integers_the_c_types_cannot_hold_are_value_errors_naming_the_argument(fixtures, astronaut, tmp_path):
    """An int beyond the C type of its argument is an InvalidArgumentError saying which argument,
    the value and the range, not pybind11's 'incompatible function arguments' and the array; True
    and ints in range work as before, None stays a TypeError, and the library still refuses what
    is in range but invalid with its own words."""
    small = np.ascontiguousarray(astronaut[:32, :32])
    png = limn.encode_image(small)
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m, cpu(os.path.join(fixtures, "tiny_detect.pt")) as det, \
            cpu(os.path.join(fixtures, "identity_face.pt")) as face:
        marks = np.zeros((5, 2), np.float32)
        calls = [
            ("max_side", 2**40, INT32, lambda v: m.cartoonize(small, max_side=v)),
            ("max_side", -2**40, INT32, lambda v: m.cartoonize(small, max_side=v)),
            ("max_side", float("inf"), INT32, lambda v: m.cartoonize(small, max_side=v)),
            ("tile", 2**40, INT32, lambda v: m.cartoonize(small, tile=v)),
            ("memory_budget", -1, UINT64, lambda v: m.cartoonize(small, memory_budget=v)),
            ("memory_budget", 2**64, UINT64, lambda v: m.cartoonize(small, memory_budget=v)),
            ("working_size", 2**31, INT32, lambda v: m.cartoonize(small, working_size=v)),
            ("max_faces", 2**31, INT32, lambda v: m.cartoonize(small, max_faces=v)),
            ("detect_max_side", -2**31 - 1, INT32, lambda v: m.cartoonize(small, detect_max_side=v)),
            ("max_faces", 2**40, INT32, lambda v: det.detect_faces(small, max_faces=v)),
            ("max_side", 2**40, INT32, lambda v: det.detect_faces(small, max_side=v)),
            ("max_faces", 2**40, INT32, lambda v: face.restore_faces(small, marks, max_faces=v)),
            ("max_side", 2**40, INT32, lambda v: face.restore_faces(small, marks, max_side=v)),
            ("max_pixels", -1, UINT64, lambda v: limn.load_image(png, max_pixels=v)),
            ("max_pixels", 2**64, UINT64, lambda v: limn.load_image(png, max_pixels=v)),
            ("quality", 2**40, INT32, lambda v: limn.encode_image(small, "jpeg", quality=v)),
            ("quality", 2**40, INT32, lambda v: limn.save_image(tmp_path / "q.jpg", small, quality=v)),
            ("max_pixels", -1, UINT64, lambda v: cpu(os.path.join(fixtures, "tiny_unet.pt"), max_pixels=v)),
            ("bytes", 2**70, UINT64, lambda v: limn.set_memory_limit("cpu", v)),
        ]
        for name, value, accepted, call in calls:
            with pytest.raises(limn.InvalidArgumentError) as e:
                call(value)
            assert str(e.value) == f"{name}={value!r} is out of range: {accepted}", (name, value)
        assert not (tmp_path / "q.jpg").exists()
        # As before: True is 1, None is a TypeError, and in range the library judges.
        assert m.cartoonize(small, max_faces=True).shape == small.shape
        assert limn.load_image(limn.encode_image(small, "jpeg", quality=True)).shape == small.shape
        with pytest.raises(TypeError):
            m.cartoonize(small, max_side=None)
        with pytest.raises(limn.InvalidArgumentError, match="max_side -1"):
            m.cartoonize(small, max_side=-1)
        with pytest.raises(limn.InvalidArgumentError, match="1..100"):
            limn.encode_image(small, "jpeg", quality=1000)
        # A timeout longer than any float is as long as the library can wait, as 1e9 seconds is.
        assert m.cartoonize(small, timeout=10**400).shape == small.shape


def test_pil_modes_pillow_cannot_convert_to_rgba_are_converted_first(fixtures, astronaut):
    """A PIL image in mode "La" (premultiplied grey and alpha) raised Pillow's own ValueError
    ('conversion from La to RGBA not supported'); it goes in as "LA", and "RGBX" (RGB padded to 4
    bytes, refused before) as "RGB". Modes limn cannot take are still refused by name; load_image, which reads
    files, says what it takes when given a PIL image."""
    Image = pytest.importorskip("PIL.Image")
    crop = np.ascontiguousarray(astronaut[:40, :56])
    alpha = (np.arange(40 * 56).reshape(40, 56) % 251 + 5).astype(np.uint8)
    la = Image.fromarray(np.dstack([crop[..., 0], alpha]), "LA").convert("La")
    straight = np.asarray(la.convert("LA").convert("RGBA")).astype(int)
    rgbx = Image.fromarray(crop).convert("RGBX")
    with cpu(os.path.join(fixtures, "identity.pt")) as m:
        out = m.run(la)
        assert out.mode == "LA" and out.size == la.size
        assert np.abs(np.asarray(out.convert("RGBA")).astype(int) - straight).max() <= 3
        assert m.run_batch([la])[0].mode == "LA"
        out = m.run(rgbx)
        assert out.mode == "RGB" and np.abs(np.asarray(out).astype(int) - crop.astype(int)).max() <= 3
        with pytest.raises(TypeError, match="mode 'I;16'"):
            m.run(Image.new("I;16", (8, 8)))
    assert (limn.load_image(limn.encode_image(la)) == np.asarray(la.convert("LA").convert("RGBA"))).all()
    assert (limn.load_image(limn.encode_image(rgbx)) == crop).all()
    with pytest.raises(TypeError, match="load_image reads a path, encoded bytes or a binary file object, not a PIL"):
        limn.load_image(Image.fromarray(crop))


def _icc_profile(size: int = 7680) -> bytes:
    """Bytes with an ICC profile's header, which is what limn checks: the size, big-endian, in
    bytes 0..3 and the signature 'acsp' at byte 36."""
    profile = bytearray((bytes(range(256)) * (size // 256 + 1))[:size])
    profile[0:4] = size.to_bytes(4, "big")
    profile[36:40] = b"acsp"
    return bytes(profile)


def test_icc_profiles_without_an_icc_header_are_refused(astronaut, tmp_path):
    """save_image and encode_image embedded any bytes as icc_profile, making files whose profile
    readers reject; a profile must have the ICC header (128 bytes at least, its own size in bytes
    0..3, 'acsp' at 36), or it is an InvalidArgumentError saying what is wrong, and nothing is
    written."""
    import io

    small = np.ascontiguousarray(astronaut[:16, :24])
    good = _icc_profile(300)
    for profile, said in ((b"garbage", "7 bytes given as an ICC profile are not one: shorter than a profile's "
                                       "128-byte header"),
                          (good + b"\0", "301 bytes .* its header gives its size as 300 bytes"),
                          (good[:299], "299 bytes .* its header gives its size as 300 bytes"),
                          (good[:36] + b"RIFF" + good[40:], "no 'acsp' signature at byte 36")):
        for fmt in ("png", "jpeg", "bmp"):
            with pytest.raises(limn.InvalidArgumentError, match=said):
                limn.encode_image(small, fmt, icc_profile=profile)
        with pytest.raises(limn.InvalidArgumentError, match=said):
            limn.save_image(tmp_path / "a.png", small, icc_profile=profile)
        with pytest.raises(limn.InvalidArgumentError, match=said):
            limn.save_image(io.BytesIO(), small, format="webp", icc_profile=bytearray(profile))
    assert os.listdir(tmp_path) == []
    for profile in (good, bytearray(good), memoryview(good)):
        assert limn.read_icc_profile(limn.encode_image(small, "png", icc_profile=profile)) == good
    try:
        from PIL import ImageCms
    except ImportError:
        return
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    limn.save_image(tmp_path / "srgb.jpg", small, icc_profile=srgb)
    assert limn.read_icc_profile(tmp_path / "srgb.jpg") == srgb


def test_write_file_takes_names_of_255_bytes_and_writes_through_symbolic_links(tmp_path):
    """limn.ray.batch had its own atomic write, whose temporary name was too long for an output name
    of 239 to 255 bytes (NAME_MAX) and which replaced a symbolic link by a file. It writes with the
    library's limn.write_file now (limn_file_write, the write limn_image_save uses): a short
    temporary name, and a link written through (the target gets the data, the link stays)."""
    from limn.ray import batch

    assert "write_atomically" not in dir(batch)
    write_atomically = limn.write_file
    long_name = "a" * 251 + ".png"
    assert len(long_name.encode()) == 255
    write_atomically(str(tmp_path / long_name), b"long")
    assert (tmp_path / long_name).read_bytes() == b"long"
    real = tmp_path / "real"
    real.mkdir()
    (real / "target.png").write_bytes(b"old")
    (tmp_path / "link.png").symlink_to("real/target.png")
    (tmp_path / "chain.png").symlink_to("link.png")  # a link to a link
    (tmp_path / "dangling.png").symlink_to(real / "new.png")  # absolute, to nothing yet: created, as cp does
    write_atomically(str(tmp_path / "link.png"), b"new")
    assert os.readlink(tmp_path / "link.png") == "real/target.png" and (real / "target.png").read_bytes() == b"new"
    write_atomically(str(tmp_path / "chain.png"), b"chain")
    assert os.readlink(tmp_path / "chain.png") == "link.png" and (real / "target.png").read_bytes() == b"chain"
    write_atomically(str(tmp_path / "dangling.png"), b"made")
    assert (tmp_path / "dangling.png").is_symlink() and (real / "new.png").read_bytes() == b"made"
    (tmp_path / "loop.png").symlink_to("loop.png")
    with pytest.raises(limn.FileError, match="loop.png.*Too many levels of symbolic links"):
        write_atomically(str(tmp_path / "loop.png"), b"x")
    assert (tmp_path / "loop.png").is_symlink()
    with pytest.raises(limn.FileError, match="cannot write '.*no-such-folder/a.png'"):
        limn.write_file(tmp_path / "no-such-folder" / "a.png", b"x")
    assert sorted(os.listdir(tmp_path)) == sorted([long_name, "real", "link.png", "chain.png", "dangling.png",
                                                   "loop.png"])
    assert sorted(os.listdir(real)) == ["new.png", "target.png"]  # no temporary file left anywhere


def test_names_come_from_the_library_and_limn_models_copies_equal_them(tmp_path, monkeypatch):
    """One table of names (limn_name, issue 23): the package's options, error classes and
    limn_models' own copies (it must work without the library) all equal the library's."""
    from limn_models import metadata, pt2, registry

    names = limn._limn.names()
    assert set(names["tables"]) == {"tables", "status", "precision", "model_kind", "model_role", "file_format",
                                    "pixel_format"}
    assert limn._PRECISIONS == names["precision"] and set(limn._KINDS) == set(names["model_kind"]) - {"any"}
    assert limn._FILE_FORMATS["jpg"] == limn._FILE_FORMATS["jpeg"] == names["file_format"]["jpeg"]
    for status, value in names["status"].items():  # each status raises its own class
        cls = limn._ERROR_CLASSES.get(value)
        assert (cls is None) == (status == "ok"), status
        if cls is not None:
            assert cls.status == value and f"LIMN_ERR_{status.upper()}" in cls.__doc__
    assert set(metadata.KINDS) == set(registry.KINDS) == set(names["model_kind"]) - {"any"}
    assert set(pt2.PRECISIONS) | {"auto", "tf32"} == set(names["precision"])
    assert set(registry.PACKAGE_PRECISIONS) <= set(names["precision"])
    assert set(names["model_role"]) == {"", "head"}
    # The model cache and the name rule: the library's (limn_model_path) and registry.py's.
    for word in ("dctnet", "gpen-bfr-512", "a_b", "9x", "Dctnet", "-x", "x.pt", "dir/x", "x" * 64, "x" * 65, ""):
        try:
            said = limn.model_path(word) != word
        except limn.FileError:
            said = True
        assert said == registry.looks_like_name(word), word
    monkeypatch.chdir(tmp_path)
    for env in ({"LIMN_HOME": str(tmp_path / "home")}, {"LIMN_HOME": "rel/home"},
                {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, {"XDG_CACHE_HOME": "relative"}, {"HOME": str(tmp_path)}):
        for key in ("LIMN_HOME", "XDG_CACHE_HOME"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        os.makedirs(os.path.dirname(registry.model_file("toy")), exist_ok=True)
        open(registry.model_file("toy"), "wb").close()
        assert limn.model_path("toy") == registry.model_file("toy"), env
        os.remove(registry.model_file("toy"))
        with pytest.raises(limn.FileError, match="limn models fetch toy"):
            limn.model_path("toy")


# ---- Asynchronous jobs (Model.submit) --------------------------------------------------------


def test_submitted_jobs_from_4_threads_equal_the_synchronous_calls(fixtures, astronaut):
    import concurrent.futures as cf

    photo = np.ascontiguousarray(astronaut[100:164, 180:276])
    marks = ASTRONAUT_LANDMARKS - np.array([180, 100], np.float32)
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m, cpu(os.path.join(fixtures, "tiny_face.pt")) as face, \
            cpu(os.path.join(fixtures, "tiny_detect.pt")) as det:
        calls = [(m, "cartoonize", {"tile": 32, "strength": 0.5}), (m, "run", {}),
                 (face, "restore_faces", {"landmarks": marks, "return_stats": True}), (det, "detect_faces", {})]
        expected = [getattr(model, call)(photo, **kw) for model, call, kw in calls]
        done_calls = []

        def submit_some(t):
            futures = []
            for k in range(10):
                model, call, kw = calls[(t + k) % 4]
                f = model.submit(call, photo, **kw)
                f.add_done_callback(done_calls.append)
                futures.append(((t + k) % 4, f))
            return futures

        with cf.ThreadPoolExecutor(4) as pool:
            submitted = [x for fs in pool.map(submit_some, range(4)) for x in fs]
        assert len(submitted) == 40
        for i, f in submitted:
            got, want = f.result(timeout=120), expected[i]
            if i == 2:
                assert (got[0] == want[0]).all()
                assert dataclasses.replace(got[1], seconds=0.0) == dataclasses.replace(want[1], seconds=0.0)
            elif i == 3:
                assert [(g.box, g.score) for g in got] == [(w.box, w.score) for w in want]
                assert all((g.landmarks == w.landmarks).all() for g, w in zip(got, want))
            else:
                assert (got == want).all()
        assert len(done_calls) == 40 and len({id(f) for f in done_calls}) == 40  # each callback once


def test_future_cancel_reaches_the_library_and_closing_the_model_cancels_its_jobs(fixtures):
    import concurrent.futures as cf

    photo = np.full((48, 64, 3), 90, np.uint8)
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m:
        ref = m.cartoonize(photo, tile=24)
        futures = [m.submit("cartoonize", photo, tile=24) for _ in range(60)]
        cancels = [f.cancel() for f in futures[1::2]]
        done, pending = cf.wait(futures, timeout=120)
        assert not pending
        assert all(f.cancelled() for f, c in zip(futures[1::2], cancels) if c)
        for f in futures[::2]:
            assert (f.result() == ref).all()
        with pytest.raises(cf.CancelledError):
            next(f for f in futures if f.cancelled()).result()
        futures = [m.submit("cartoonize", photo, tile=24) for _ in range(30)]
    # closed: each job ends, as cancelled or (the ones that had already ended) with its result
    done, pending = cf.wait(futures, timeout=120)
    assert not pending and any(f.cancelled() for f in futures)
    assert all(f.cancelled() or (f.result() == ref).all() for f in futures)


def test_a_submitted_job_runs_without_the_gil_and_result_takes_a_timeout(fixtures):
    import concurrent.futures as cf

    photo = np.full((600, 800, 3), 120, np.uint8)
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m:
        release = threading.Event()
        steps = []

        def progress(done, total):
            steps.append(done)
            if done == 1:
                release.wait(60)  # the job holds here (on its worker) until the test lets it go

        f = m.submit("cartoonize", photo, tile=128, progress=progress)
        with pytest.raises(cf.TimeoutError):
            f.result(timeout=0.05)
        assert not f.done()
        release.set()
        loops = 0
        while not f.done():  # the job works without the GIL: this thread keeps running meanwhile
            loops += 1
        assert loops > 100
        assert f.result().shape == photo.shape and len(steps) > 1


def test_submit_checks_arguments_at_once_and_jobs_report_their_errors(fixtures):
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m:
        photo = np.zeros((26, 40, 3), np.uint8)
        with pytest.raises(ValueError, match="invalid call 'paint'"):
            m.submit("paint", photo)
        with pytest.raises(limn.InvalidArgumentError, match="invalid strength 3"):
            m.submit("cartoonize", photo, strength=3)
        with pytest.raises(TypeError):
            m.submit("cartoonize", photo, no_such_option=1)
        odd = np.zeros((25, 39, 3), np.uint8)  # the raw run needs the size multiple: checked at submit
        with pytest.raises(limn.SizeRuleError, match="multiples of 2"):
            m.submit("run", odd)

        def boom(done, total):
            raise KeyError("from progress")

        error = m.submit("cartoonize", photo, tile=24, progress=boom).exception(timeout=60)
        assert isinstance(error, KeyError)  # the callback's own exception, as in a synchronous call
    # What only the job finds, it reports: a face model is no cartoon model (as the synchronous call).
    with cpu(os.path.join(fixtures, "tiny_face.pt")) as face:
        error = face.submit("cartoonize", np.zeros((26, 40, 3), np.uint8)).exception(timeout=60)
        assert isinstance(error, limn.WrongModelKindError)


def test_blocking_calls_from_a_job_callback_are_refused_not_deadlocks(fixtures):
    photo = np.zeros((26, 40, 3), np.uint8)
    with cpu(os.path.join(fixtures, "tiny_unet.pt")) as m:
        seen = {}

        def inside(future):  # on a pool worker
            try:
                m.cartoonize(photo)
            except limn.InvalidArgumentError as e:
                seen["sync"] = str(e)
            try:
                limn.jobs_shutdown()
            except limn.InvalidArgumentError as e:
                seen["shutdown"] = str(e)
            seen["nested"] = m.submit("run", photo)  # submitting is allowed there

        release = threading.Event()
        f = m.submit("cartoonize", photo, tile=24, progress=lambda done, total: release.wait(60))
        f.add_done_callback(inside)  # before the job can end, so that it runs on the job's worker
        release.set()
        f.result(timeout=60)
        for _ in range(600):
            if "nested" in seen:
                break
            time.sleep(0.1)
        assert "from a job's callback would block a worker" in seen["sync"]
        assert "would wait for itself" in seen["shutdown"]
        assert seen["nested"].result(timeout=60).shape == photo.shape
    limn.jobs_shutdown()
    limn.jobs_start(3)
    with pytest.raises(limn.InvalidArgumentError, match="runs already with 3 workers"):
        limn.jobs_start(2)
    limn.jobs_shutdown()
