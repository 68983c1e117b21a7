"""The `limn` command-line tool and the C, C++ and engine examples, end to end on real photos."""
import os
import signal
import subprocess

import numpy as np
import pytest
import skimage.data
from PIL import Image

from limn_models import export

TEMPLATE_64 = [v * 64 / 512 for v in (202.0, 242.9, 309.4, 242.3, 256.1, 304.0, 212.0, 366.8, 300.9, 366.3)]


@pytest.fixture(scope="module")
def cartoon_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("models") / "classical-cartoon.pt")
    export.export_cartoon_standin(path)
    return path


@pytest.fixture(scope="module")
def face_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("models") / "face-64.pt")
    export.export_face_standin(path, size=64)
    return path


def limn(bin_dir, *args):
    return subprocess.run([os.path.join(bin_dir, "limn"), *args], capture_output=True, text=True)


def photo(size=(160, 120)):
    return Image.fromarray(skimage.data.astronaut()).resize(size, Image.LANCZOS)


def test_cartoonize_a_folder_of_real_photos(bin_dir, cartoon_model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    photo((161, 117)).save(src / "astronaut.jpg", quality=92)
    photo((96, 128)).save(src / "portrait.png")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    run = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "-d", "cpu")
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(out)) == ["astronaut.png", "portrait.png"]
    for name, size in [("astronaut", (161, 117)), ("portrait", (96, 128))]:
        got = Image.open(out / f"{name}.png")
        assert got.size == size
        before = np.asarray(Image.open(next(src.glob(name + ".*"))).convert("RGB"), dtype=int)
        after = np.asarray(got.convert("RGB"), dtype=int)
        assert np.abs(after - before).mean() > 2  # it was cartoonized, not copied
    assert "2 of 2 images done" in run.stderr
    assert "peak memory" in run.stderr and "s per image" in run.stderr


def test_one_file_with_options_and_jpeg_output(bin_dir, cartoon_model, tmp_path):
    photo((300, 200)).save(tmp_path / "a.png")
    run = limn(bin_dir, "cartoonize", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.jpg"), "-m", cartoon_model,
               "-d", "cpu", "--max-side", "100", "--strength", "0.5", "--quality", "80", "--tile", "64", "-q")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    out = Image.open(tmp_path / "b.jpg")
    assert out.format == "JPEG" and out.size == (300, 200)


def test_bad_arguments_and_exit_codes(bin_dir, cartoon_model, tmp_path):
    photo().save(tmp_path / "a.png")
    a = str(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    assert limn(bin_dir).returncode == 2
    assert limn(bin_dir, "paint", a).returncode == 2
    assert limn(bin_dir, "cartoonize", a, "-o", str(tmp_path / "o.png"), "--bogus").returncode == 2
    r = limn(bin_dir, "cartoonize", a, "-o", str(tmp_path / "o.png"), "--strength", "2")
    assert r.returncode == 2 and "--strength" in r.stderr
    r = limn(bin_dir, "cartoonize", a, "-o", str(tmp_path / "o.txt"), "-m", cartoon_model)
    assert r.returncode == 2 and "extension" in r.stderr
    # Never overwrite an input.
    r = limn(bin_dir, "cartoonize", a, "-o", a, "-m", cartoon_model, "-d", "cpu")
    assert r.returncode == 2 and "never overwrites what it reads" in r.stderr
    assert (tmp_path / "a.png").read_bytes() == before
    # A model that cannot be used.
    r = limn(bin_dir, "cartoonize", a, "-o", str(tmp_path / "o.png"), "-m", str(tmp_path / "missing.pt"))
    assert r.returncode == 3 and "missing.pt" in r.stderr
    # One broken photo among good ones: the others are done, the status says something failed.
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    r = limn(bin_dir, "cartoonize", a, str(tmp_path / "broken.jpg"), "-o", str(tmp_path / "outs"), "-m",
             cartoon_model, "-d", "cpu")
    assert r.returncode == 1 and "broken.jpg" in r.stderr
    assert os.listdir(tmp_path / "outs") == ["a.png"]


def test_info_and_devices(bin_dir, cartoon_model, tmp_path):
    r = limn(bin_dir, "info", cartoon_model)
    assert r.returncode == 0, r.stderr
    assert "classical-cartoon" in r.stdout and "kind:          cartoon" in r.stdout
    assert limn(bin_dir, "info", str(tmp_path / "nope.pt")).returncode == 3
    r = limn(bin_dir, "devices")
    assert r.returncode == 0 and r.stdout.startswith("cpu")
    assert limn(bin_dir, "--version").stdout.startswith("limn ")


def face_landmarks(cx, cy, size):
    k = size / 64.0
    return [cx + k * (v - 32.0) if i % 2 == 0 else cy + k * (v - 32.0) for i, v in enumerate(TEMPLATE_64)]


def test_restore_faces_with_a_landmarks_file(bin_dir, face_model, tmp_path):
    photo((200, 200)).save(tmp_path / "p.png")
    marks = face_landmarks(100, 90, 96)
    (tmp_path / "faces.txt").write_text("# x y of eyes, nose, mouth corners\n" + " ".join(f"{v:.2f}" for v in marks) + "\n")
    r = limn(bin_dir, "restore-faces", str(tmp_path / "p.png"), "-o", str(tmp_path / "r.png"), "--landmarks",
             str(tmp_path / "faces.txt"), "-m", face_model, "-d", "cpu")
    assert r.returncode == 0, r.stderr
    assert "1 face restored" in r.stderr
    before = np.asarray(Image.open(tmp_path / "p.png"), dtype=int)
    after = np.asarray(Image.open(tmp_path / "r.png"), dtype=int)
    assert np.abs(after - before)[60:120, 60:140].mean() > 0.5  # the face changed
    assert (after[:10] == before[:10]).all()                   # far from it, nothing did
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    r = limn(bin_dir, "restore-faces", str(tmp_path / "p.png"), "-o", str(tmp_path / "r2.png"), "--landmarks",
             str(tmp_path / "bad.txt"), "-m", face_model)
    assert r.returncode == 2 and "bad.txt:1" in r.stderr


@pytest.fixture(scope="module")
def detector_model(tmp_path_factory):
    from limn_models import retinaface

    if not os.path.isfile(retinaface.DEFAULT_WEIGHTS):
        pytest.skip(f"no RetinaFace weights at {retinaface.DEFAULT_WEIGHTS}")
    path = str(tmp_path_factory.mktemp("models") / "retinaface.pt")
    export.export_retinaface(path)
    return path


def test_restore_faces_of_a_plain_portrait_with_the_detector(bin_dir, detector_model, tmp_path):
    """A portrait in, its face restored out: no landmarks, only the photo and two model files."""
    face_512 = str(tmp_path / "face-512.pt")
    export.export_face_standin(face_512, size=512)
    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "portrait.png")
    r = limn(bin_dir, "restore-faces", str(tmp_path / "portrait.png"), "-o", str(tmp_path / "restored.png"),
             "--detector", detector_model, "-m", face_512, "-d", "cpu")
    assert r.returncode == 0, r.stderr
    assert "1 face restored" in r.stderr
    before = np.asarray(Image.open(tmp_path / "portrait.png"), dtype=int)
    after = np.asarray(Image.open(tmp_path / "restored.png"), dtype=int)
    face = (slice(60, 175), slice(185, 265))  # inside RetinaFace's box (179, 54)-(270, 178)
    assert np.abs(after - before)[face].mean() > 1.0
    changed = np.argwhere(np.abs(after - before).max(axis=2) > 0)
    assert changed[:, 0].min() > 0 and changed[:, 0].max() < 330  # only around the face
    assert changed[:, 1].min() > 100 and changed[:, 1].max() < 350
    assert (after[350:] == before[350:]).all() and (after[:, :100] == before[:, :100]).all()

    # The faces as a landmarks file, then restored from it; and a face too small to restore.
    r = limn(bin_dir, "detect-faces", str(tmp_path / "portrait.png"), "--detector", detector_model,
             "-o", str(tmp_path / "faces.txt"), "-d", "cpu")
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "faces.txt").read_text().splitlines()
    assert lines[0].endswith("1 face with score >= 0.90") and lines[1].startswith("# face 1: score 0.99")
    marks = [float(v) for v in lines[2].split()]
    assert len(marks) == 10 and marks[0] < marks[2]  # left eye left of the right eye
    r = limn(bin_dir, "restore-faces", str(tmp_path / "portrait.png"), "-o", str(tmp_path / "from-file.png"),
             "--landmarks", str(tmp_path / "faces.txt"), "-m", face_512, "-d", "cpu")
    assert r.returncode == 0 and "1 face restored" in r.stderr, r.stderr
    r = limn(bin_dir, "restore-faces", str(tmp_path / "portrait.png"), "-o", str(tmp_path / "small.png"),
             "--detector", detector_model, "-m", face_512, "-d", "cpu", "--min-face-size", "1000")
    assert r.returncode == 0, r.stderr
    assert "0 faces restored, 1 skipped" in r.stderr
    assert (np.asarray(Image.open(tmp_path / "small.png"), dtype=int) == before).all()


def test_detector_usage_errors(bin_dir, detector_model, face_model, tmp_path):
    photo((64, 64)).save(tmp_path / "p.png")
    (tmp_path / "f.txt").write_text("1 2 3 4 5 6 7 8 9 10\n")
    base = ["restore-faces", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "-m", face_model]
    r = limn(bin_dir, *base)
    assert r.returncode == 2 and "--detector FILE" in r.stderr
    # Both sources of faces: said as both, not as neither (issue 23).
    r = limn(bin_dir, *base, "--detector", detector_model, "--landmarks", str(tmp_path / "f.txt"))
    assert r.returncode == 2 and "--detector or from --landmarks, not both" in r.stderr
    r = limn(bin_dir, *base, "--detector", face_model)  # not a face_detect model
    assert r.returncode == 3 and "face_detect" in r.stderr
    r = limn(bin_dir, *base, "--detector", detector_model, "--threshold", "2")
    assert r.returncode == 2 and "--threshold" in r.stderr
    r = limn(bin_dir, "detect-faces", str(tmp_path / "p.png"))
    assert r.returncode == 2 and "--detector" in r.stderr


def test_c_cpp_and_engine_examples(bin_dir, cartoon_model, face_model, tmp_path):
    photo((150, 110)).save(tmp_path / "in.png")
    r = subprocess.run([os.path.join(bin_dir, "limn-cartoonize-c"), cartoon_model, str(tmp_path / "in.png"),
                        str(tmp_path / "c.png"), "cpu"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "c.png").size == (150, 110)
    r = subprocess.run([os.path.join(bin_dir, "limn-cartoonize-c"), cartoon_model, str(tmp_path / "nope.png"),
                        str(tmp_path / "c2.png"), "cpu"], capture_output=True, text=True)
    assert r.returncode == 1 and "nope.png" in r.stderr and not (tmp_path / "c2.png").exists()

    marks = [f"{v:.2f}" for v in face_landmarks(75, 50, 64)]
    r = subprocess.run([os.path.join(bin_dir, "limn-example-cpp"), face_model, cartoon_model, str(tmp_path / "in.png"),
                        str(tmp_path / "cpp.png"), *marks, "cpu"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "1 face(s) restored" in r.stdout

    r = subprocess.run([os.path.join(bin_dir, "limn-engine-loop"), cartoon_model, "cpu", "3", "96", "64", "256"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [l.split(":")[0] for l in lines[:3]] == ["frame 0", "frame 1", "frame 2"]
    assert "3 frames of 96x64 on cpu" in lines[3] and "cap 256 MiB" in lines[3]
    assert lines[4].startswith("sync: the engine's thread was inside limn")
    assert lines[5] == "allocations: 0.00 per frame (0 in 3 frames)"  # limn_frames, once warm

    # The asynchronous loop: the engine renders while limn's pool works, and polls.
    r = subprocess.run([os.path.join(bin_dir, "limn-engine-loop"), "--async", cartoon_model, "cpu", "3", "96", "64",
                        "256"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "3 frames of 96x64 on cpu" in lines[0]
    assert lines[1].startswith("async: the engine's thread was inside limn") and "engine frames rendered" in lines[1]
    assert lines[2] == "allocations: 0.00 per frame (0 in 3 frames)"
    assert lines[3].startswith("async: a submit took")

    # PRECISION (the 8th argument) is the model's: fp32 asked, fp32 run; an unknown name is refused.
    r = subprocess.run([os.path.join(bin_dir, "limn-engine-loop"), cartoon_model, "cpu", "2", "96", "64", "256",
                        "fp32"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 frames of 96x64 on cpu in fp32:" in r.stdout, r.stdout
    r = subprocess.run([os.path.join(bin_dir, "limn-engine-loop"), cartoon_model, "cpu", "2", "96", "64", "256",
                        "fp12"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "PRECISION: unknown precision 'fp12'" in r.stderr, r.stderr

    # The device loop (frames in CUDA memory) needs a CUDA device: refused at once on the CPU.
    r = subprocess.run([os.path.join(bin_dir, "limn-engine-loop"), "--device", cartoon_model, "cpu", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert ("need a CUDA device, and DEVICE is cpu" in r.stderr or "built without the CUDA runtime" in r.stderr), r.stderr


def test_compound_cartoonize_with_a_head_model(bin_dir, cartoon_model, tmp_path):
    """--head-model with --detector or --landmarks: DCT-Net's compound stylization (tiny fixtures:
    a random-weight DCT-Net head exported here, the fixed-detection detector from the fixtures)."""
    fixtures = os.environ.get("LIMN_TEST_FIXTURES", "")
    if not os.path.isfile(os.path.join(fixtures, "tiny_detect.pt")):
        pytest.skip("LIMN_TEST_FIXTURES is not set: run through ctest")
    head = str(tmp_path / "head.pt")
    export.export_dctnet_random(head, seed=5, head=True)
    src = tmp_path / "in.png"
    photo((200, 160)).save(src)
    out = tmp_path / "out.png"
    run = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "--head-model", head,
               "--detector", os.path.join(fixtures, "tiny_detect.pt"), "--working-size", "128", "-d", "cpu")
    assert run.returncode == 0, run.stderr
    assert "2 faces stylized" in run.stderr
    assert np.asarray(Image.open(out)).shape == (160, 200, 3)
    marks = tmp_path / "faces.txt"
    marks.write_text("60 70 100 70 80 95 65 115 95 115\n")
    run = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "--head-model", head,
               "--landmarks", str(marks), "-d", "cpu")
    assert run.returncode == 0 and "1 face stylized" in run.stderr, run.stderr
    run = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "--head-model", cartoon_model,
               "--landmarks", str(marks), "-d", "cpu")
    assert run.returncode == 3 and "not a head model" in run.stderr
    run = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "--head-model", head)
    assert run.returncode == 2 and "--detector" in run.stderr
    info = limn(bin_dir, "info", head)
    assert "role:          head network: aligned 288x288 face crops" in info.stdout


def test_outputs_never_destroy_what_limn_reads_nor_collide(bin_dir, cartoon_model, tmp_path):
    """detect-faces -o onto its photo or its model, two inputs for one output name, several inputs
    for one file, a read-only output (issue 15, defects 1, 3, 4, 9)."""
    fixtures = os.environ.get("LIMN_TEST_FIXTURES", "")
    detector = os.path.join(fixtures, "tiny_detect.pt")
    if not os.path.isfile(detector):
        pytest.skip("LIMN_TEST_FIXTURES is not set: run through ctest")
    photo().save(tmp_path / "a.png")
    a = str(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    model_copy = tmp_path / "det.pt"
    model_copy.write_bytes(open(detector, "rb").read())
    model_bytes = model_copy.read_bytes()
    for target in (a, str(model_copy)):
        r = limn(bin_dir, "detect-faces", a, "--detector", str(model_copy), "-o", target, "-d", "cpu")
        assert r.returncode == 2 and "never overwrites what it reads" in r.stderr
    assert (tmp_path / "a.png").read_bytes() == before and model_copy.read_bytes() == model_bytes
    r = limn(bin_dir, "detect-faces", a, "--detector", str(model_copy), "-o", str(tmp_path / "faces.txt"), "-d", "cpu")
    assert r.returncode == 0 and (tmp_path / "faces.txt").read_text().startswith("# ")
    assert sorted(os.listdir(tmp_path)) == ["a.png", "det.pt", "faces.txt"]  # no temporary left
    # The same name from two folders, and a.jpg beside a.png.
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    photo().save(tmp_path / "one" / "x.png")
    photo().save(tmp_path / "two" / "x.png")
    photo().save(tmp_path / "two" / "a.jpg")
    photo().save(tmp_path / "two" / "a.png")
    for inputs in ([str(tmp_path / "one"), str(tmp_path / "two")], [str(tmp_path / "two")]):
        r = limn(bin_dir, "cartoonize", *inputs, "-o", str(tmp_path / "out"), "-m", cartoon_model, "-d", "cpu")
        assert r.returncode == 2 and "would both be written to" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()
    # Several inputs need a folder.
    r = limn(bin_dir, "cartoonize", a, str(tmp_path / "one" / "x.png"), "-o", str(tmp_path / "multi.png"), "-m",
             cartoon_model)
    assert r.returncode == 2 and "several inputs need -o FOLDER" in r.stderr
    assert not (tmp_path / "multi.png").exists()
    # A read-only output is refused unless --overwrite.
    out = tmp_path / "ro.png"
    photo().save(out)
    os.chmod(out, 0o444)
    r = limn(bin_dir, "cartoonize", a, "-o", str(out), "-m", cartoon_model, "-d", "cpu")
    assert r.returncode == 2 and "read-only" in r.stderr and "--overwrite" in r.stderr
    r = limn(bin_dir, "cartoonize", a, "-o", str(out), "-m", cartoon_model, "-d", "cpu", "--overwrite", "-q")
    assert r.returncode == 0, r.stderr


def test_usage_help_bad_values_and_early_checks(bin_dir, cartoon_model, tmp_path):
    """Per-command --help exits 0, a usage error is a line and a hint, bad device strings exit 2,
    missing inputs and empty folders fail before any work, a missing output folder is created
    (issue 15, defects 5, 6, 8, 12, 13)."""
    r = limn(bin_dir, "cartoonize", "--help")
    assert r.returncode == 0 and "limn cartoonize IN" in r.stdout and "options:" in r.stdout
    assert "limn restore-faces" not in r.stdout
    r = limn(bin_dir, "cartoonize", "--bogus")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 2 and "limn --help" in r.stderr
    photo().save(tmp_path / "a.png")
    a = str(tmp_path / "a.png")
    for device in ("gpu", "CPU", "cuda:-1", "cuda:x"):
        r = limn(bin_dir, "cartoonize", a, "-o", str(tmp_path / "o.png"), "-m", cartoon_model, "-d", device)
        assert r.returncode == 2 and "--device expects" in r.stderr, device
    # A missing input is a command-line error, found before the (missing) model is loaded.
    r = limn(bin_dir, "cartoonize", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png"), "-m",
             str(tmp_path / "no-model.pt"))
    assert r.returncode == 2 and "nope.png does not exist" in r.stderr
    (tmp_path / "empty").mkdir()
    r = limn(bin_dir, "cartoonize", str(tmp_path / "empty"), "-o", str(tmp_path / "outs"), "-m", cartoon_model)
    assert r.returncode == 2 and "no images in the folder" in r.stderr
    r = limn(bin_dir, "cartoonize", a, "-o", str(tmp_path / "new" / "deeper" / "o.png"), "-m", cartoon_model,
             "-d", "cpu", "-q")
    assert r.returncode == 0 and (tmp_path / "new" / "deeper" / "o.png").is_file()
    r = limn(bin_dir, "cartoonize", a, "-o", str(tmp_path / "big.png"), "-m", cartoon_model, "-d", "cpu",
             "--max-pixels", "1000")
    assert r.returncode == 1 and "1000" in r.stderr


def test_batch_conventions_and_warnings(bin_dir, cartoon_model, tmp_path):
    """--option=value, -r keeping the layout, --skip-existing, unsupported files listed as skipped,
    devices --json, and warnings for options that do nothing (issue 15, conventions and defect 11)."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    photo().save(src / "a.png")
    photo().save(src / "sub" / "b.png")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    r = limn(bin_dir, "cartoonize", str(src), f"--output={out}", f"--model={cartoon_model}", "--device=cpu", "-r")
    assert r.returncode == 0, r.stderr
    assert (out / "a.png").is_file() and (out / "sub" / "b.png").is_file()
    assert "1 file(s) skipped" in r.stderr and "notes.txt" in r.stderr
    before = (out / "a.png").stat().st_mtime_ns
    (out / "sub" / "b.png").unlink()
    r = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "-d", "cpu", "-r", "--skip-existing")
    assert r.returncode == 0 and "1 input(s) skipped, their output exists" in r.stderr, r.stderr
    assert (out / "a.png").stat().st_mtime_ns == before and (out / "sub" / "b.png").is_file()
    r = limn(bin_dir, "cartoonize", str(src / "a.png"), "-o", str(tmp_path / "x.png"), "-m", cartoon_model,
             "-d", "cpu", "--format", "jpg", "--quality", "80")
    assert r.returncode == 0 and "--format applies to folder outputs" in r.stderr
    assert "--quality applies to JPEG and WebP outputs only" in r.stderr
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([np.asarray(photo()), np.full((120, 160), 128, np.uint8)])).save(rgba)
    r = limn(bin_dir, "cartoonize", str(rgba), "-o", str(tmp_path / "y.jpg"), "-m", cartoon_model, "-d", "cpu")
    assert r.returncode == 0 and "transparency" in r.stderr and "dropped" in r.stderr
    import json

    devices = json.loads(limn(bin_dir, "devices", "--json").stdout)
    assert devices[0]["id"] == "cpu" and devices[0]["total_memory"] > 0
    r = limn(bin_dir, "cartoonize", str(src / "a.png"), "-o", str(tmp_path / "z.png"), "-m", cartoon_model, "-g", "x")
    assert r.returncode == 2 and "--device expects" in r.stderr


def test_pipes_stdin_and_stdout(bin_dir, cartoon_model, tmp_path):
    """`-` reads the photo from stdin, `-o -` writes to stdout with --format (issue 15, pipes)."""
    import io

    buf = io.BytesIO()
    photo().save(buf, format="PNG")
    exe = os.path.join(bin_dir, "limn")
    run = subprocess.run([exe, "cartoonize", "-", "-o", "-", "--format", "jpg", "-m", cartoon_model, "-d", "cpu",
                          "-q"], input=buf.getvalue(), capture_output=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout[:3] == b"\xff\xd8\xff" and Image.open(io.BytesIO(run.stdout)).size == (160, 120)
    run = subprocess.run([exe, "cartoonize", "-", "-o", str(tmp_path / "o.png"), "-m", cartoon_model, "-d", "cpu"],
                         input=buf.getvalue(), capture_output=True)
    assert run.returncode == 0 and Image.open(tmp_path / "o.png").size == (160, 120)
    run = subprocess.run([exe, "cartoonize", "-", "-o", "-", "-m", cartoon_model], input=b"", capture_output=True)
    assert run.returncode == 2 and b"needs --format" in run.stderr


def test_parallel_jobs_give_the_serial_results(bin_dir, cartoon_model, tmp_path):
    """-j N: several photos in flight on one model; the files equal those of -j 1 (issue 15)."""
    src = tmp_path / "in"
    src.mkdir()
    for i, size in enumerate([(160, 120), (120, 160), (200, 100), (96, 96), (130, 90)]):
        photo(size).save(src / f"p{i}.png")
    for jobs in ("1", "3"):
        r = limn(bin_dir, "cartoonize", str(src), "-o", str(tmp_path / f"out{jobs}"), "-m", cartoon_model, "-d", "cpu",
                 "-j", jobs)
        assert r.returncode == 0 and "5 of 5 images done" in r.stderr, r.stderr
    for i in range(5):
        assert (tmp_path / "out1" / f"p{i}.png").read_bytes() == (tmp_path / "out3" / f"p{i}.png").read_bytes()


def test_webp_in_and_out(bin_dir, cartoon_model, tmp_path):
    """WebP photos in, WebP results out, in folders and through pipes (issue 15, formats)."""
    photo().save(tmp_path / "a.webp", format="WEBP", lossless=True)
    r = limn(bin_dir, "cartoonize", str(tmp_path / "a.webp"), "-o", str(tmp_path / "b.webp"), "-m", cartoon_model,
             "-d", "cpu", "--quality", "100")
    if r.returncode != 0 and "without libwebp" in r.stderr:
        pytest.skip("this limn was built without libwebp")
    assert r.returncode == 0, r.stderr
    assert "--quality applies" not in r.stderr
    out = Image.open(tmp_path / "b.webp")
    assert out.format == "WEBP" and out.size == (160, 120)
    r = limn(bin_dir, "cartoonize", str(tmp_path / "a.webp"), "-o", str(tmp_path / "folder") + "/", "--format", "webp",
             "-m", cartoon_model, "-d", "cpu")
    assert r.returncode == 0 and (tmp_path / "folder" / "a.webp").is_file()


def _icc_profile():
    """A real sRGB profile where Pillow has LittleCMS, else bytes that only need to survive."""
    try:
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    except ImportError:  # an ICC header's size and signature, the rest arbitrary
        profile = bytearray(range(256)) * 40
        profile[:4] = len(profile).to_bytes(4, "big")
        profile[36:40] = b"acsp"
        return bytes(profile)


def test_icc_profile_goes_with_the_photo(bin_dir, cartoon_model, tmp_path):
    """A JPEG's or PNG's colour profile is kept in PNG, JPEG and WebP results, through files and
    pipes; BMP cannot hold one and says so (issue 15, formats)."""
    profile = _icc_profile()
    photo().save(tmp_path / "a.jpg", quality=95, icc_profile=profile)
    photo().save(tmp_path / "p.png", icc_profile=profile)
    for src in ("a.jpg", "p.png"):
        for ext in ("png", "jpg", "webp"):
            out = tmp_path / f"{src[0]}-out.{ext}"
            r = limn(bin_dir, "cartoonize", str(tmp_path / src), "-o", str(out), "-m", cartoon_model, "-d", "cpu")
            if r.returncode != 0 and "without libwebp" in r.stderr:
                continue
            assert r.returncode == 0, r.stderr
            assert Image.open(out).info.get("icc_profile") == profile, (src, ext)
    r = limn(bin_dir, "cartoonize", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "a.bmp"), "-m", cartoon_model,
             "-d", "cpu")
    assert r.returncode == 0 and "cannot hold the ICC colour profile" in r.stderr
    with open(tmp_path / "a.jpg", "rb") as f:
        r = subprocess.run([os.path.join(bin_dir, "limn"), "cartoonize", "-", "-o", "-", "--format", "png", "-m",
                            cartoon_model, "-d", "cpu", "-q"], stdin=f, capture_output=True)
    assert r.returncode == 0, r.stderr
    import io

    assert Image.open(io.BytesIO(r.stdout)).info.get("icc_profile") == profile
    # A photo without one gives a result without one.
    photo().save(tmp_path / "plain.jpg")
    r = limn(bin_dir, "cartoonize", str(tmp_path / "plain.jpg"), "-o", str(tmp_path / "plain.png"), "-m",
             cartoon_model, "-d", "cpu")
    assert r.returncode == 0 and "icc_profile" not in Image.open(tmp_path / "plain.png").info


def test_dry_run_prints_the_plan_and_touches_nothing(bin_dir, cartoon_model, tmp_path):
    """--dry-run: the outputs the command would write (the plan `limn ... --ray` runs), as lines or
    JSON with the resolved model and the options given; nothing is loaded, created or written."""
    import json

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    photo().save(src / "a.png")
    photo().save(src / "sub" / "b.jpg")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    r = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "-r", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"{src / 'a.png'} -> {out / 'a.png'}", f"{src / 'sub' / 'b.jpg'} -> {out / 'sub' / 'b.png'}"]
    assert not out.exists()
    r = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "--dry-run", "--json",
             "--strength", "0.25", "--format", "webp", "--quality", "70", "--tile", "64", "-d", "cpu")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["command"] == "cartoonize" and plan["model"] == cartoon_model and plan["detector"] is None
    assert plan["device"] == "cpu" and plan["precision"] == "auto"
    assert plan["options"] == {"strength": 0.25, "tile": 64, "quality": 70}
    assert plan["jobs"] == [{"in": str(src / "a.png"), "out": str(out / "a.webp")}]
    assert plan["skipped_files"] == [str(src / "notes.txt")] and plan["skipped_existing"] == 0
    assert not out.exists()
    # The same rules as a real run: a collision and an unknown model are still refused.
    photo().save(src / "a.jpg")
    r = limn(bin_dir, "cartoonize", str(src), "-o", str(out), "-m", cartoon_model, "--dry-run")
    assert r.returncode == 2 and "would both be written to" in r.stderr
    r = limn(bin_dir, "cartoonize", str(src / "a.png"), "-o", str(out / "x.png"), "-m", "no-such-model", "--dry-run")
    assert r.returncode == 3 and "no-such-model" in r.stderr
    r = limn(bin_dir, "cartoonize", str(src / "a.png"), "-o", str(out / "x.png"), "--ray")
    assert r.returncode == 2 and "pip-installed limn" in r.stderr


def test_output_to_a_full_device_is_an_error(bin_dir, cartoon_model, tmp_path):
    """What a command prints (a plan, JSON, --version) must reach stdout: /dev/full is exit 1."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    photo().save(tmp_path / "a.png")
    exe = os.path.join(bin_dir, "limn")
    for args in (["--version"], ["devices", "--json"],
                 ["cartoonize", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "-m", cartoon_model,
                  "--dry-run", "--json"]):
        with open("/dev/full", "w") as full:
            r = subprocess.run([exe, *args], stdout=full, stderr=subprocess.PIPE, text=True)
        assert r.returncode == 1, args
        assert "cannot write to standard output" in r.stderr, args
    assert not (tmp_path / "b.png").exists()


# ---- What a new user found (issue 23, defects 8.1-8.18): each failed before its fix. -----------


def _run(bin_dir, cartoon_model, *args):
    return limn(bin_dir, "cartoonize", *args, "-m", cartoon_model, "-d", "cpu")


def test_stdout_write_failures_are_errors(bin_dir, cartoon_model, tmp_path):
    """An image to a full device, a pipe closed early or a closed stdout: exit 1 with a message."""
    photo((640, 480)).save(tmp_path / "a.png")
    exe = os.path.join(bin_dir, "limn")
    args = [exe, "cartoonize", str(tmp_path / "a.png"), "-o", "-", "--format", "png", "-m", cartoon_model, "-q"]
    if os.path.exists("/dev/full"):
        with open("/dev/full", "wb") as full:
            r = subprocess.run(args, stdout=full, stderr=subprocess.PIPE, text=True)
        assert r.returncode == 1 and "cannot write the image to standard output" in r.stderr, r.stderr
    # A reader that stops after 10 bytes, with SIGPIPE ignored as Python (the pip launcher) leaves it.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN))
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and "Broken pipe" in err, err
    # stdout closed (`>&-`): an error, and nothing written anywhere else in its place.
    r = subprocess.run(["sh", "-c", '"$@" >&-', "sh", exe, "devices"], capture_output=True, text=True)
    assert r.returncode == 1 and "cannot write to standard output" in r.stderr


def test_recursive_walk_leaves_its_own_output_folder_out(bin_dir, cartoon_model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    photo().save(src / "x.png")
    for _ in range(2):
        r = _run(bin_dir, cartoon_model, str(src), "-r", "-o", str(src / "out"), "--skip-existing")
        assert r.returncode == 0, r.stderr
    assert not (src / "out" / "out").exists()
    assert "nothing to do" in r.stderr
    r = _run(bin_dir, cartoon_model, str(src), "-r", "-o", str(src / "out"))  # again, replacing its output
    assert r.returncode == 0 and "1 of 1 images done" in r.stderr, r.stderr
    assert sorted(p.name for p in (src / "out").iterdir()) == ["x.png"]


def test_a_fifo_input_is_read_once(bin_dir, cartoon_model, tmp_path):
    import threading

    photo().save(tmp_path / "a.png")
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    data = (tmp_path / "a.png").read_bytes()

    def feed():
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    exe = os.path.join(bin_dir, "limn")
    try:
        r = subprocess.run([exe, "cartoonize", str(fifo), "-o", str(tmp_path / "b.png"), "-m", cartoon_model,
                            "-d", "cpu", "-q"], capture_output=True, text=True, timeout=60)
    finally:
        if writer.is_alive():  # the binary never opened it: open it ourselves so the thread can end
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    assert r.returncode == 0, r.stderr
    ref = _run(bin_dir, cartoon_model, str(tmp_path / "a.png"), "-o", str(tmp_path / "c.png"), "-q")
    assert ref.returncode == 0
    assert (np.asarray(Image.open(tmp_path / "b.png")) == np.asarray(Image.open(tmp_path / "c.png"))).all()


def test_the_longest_legal_output_names(bin_dir, cartoon_model, tmp_path):
    photo().save(tmp_path / "a.png")
    for name in ("x" * 251 + ".png", "漫" * 80 + ".png"):  # 255 bytes; 80 CJK characters, 244 bytes
        out = tmp_path / name
        r = _run(bin_dir, cartoon_model, str(tmp_path / "a.png"), "-o", str(out), "-q")
        assert r.returncode == 0, r.stderr
        assert Image.open(out).size == (160, 120)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_an_empty_cartoon_model_variable_is_unset(bin_dir, tmp_path):
    # The built-in model exists only after the setup command's main job, so this compares the two
    # runs (both succeed with the same pixels, or both fail the same way) instead of assuming it.
    photo().save(tmp_path / "a.png")
    env = {k: v for k, v in os.environ.items() if k != "LIMN_CARTOON_MODEL"}
    runs = []
    for out, extra in (("unset.png", {}), ("empty.png", {"LIMN_CARTOON_MODEL": ""})):
        r = subprocess.run([os.path.join(bin_dir, "limn"), "cartoonize", str(tmp_path / "a.png"), "-o",
                            str(tmp_path / out), "-d", "cpu", "-q"], capture_output=True, text=True,
                           env={**env, **extra})
        runs.append(r)
    unset, empty = runs
    assert "''" not in empty.stderr, empty.stderr
    assert (empty.returncode, empty.stderr) == (unset.returncode, unset.stderr)
    if unset.returncode == 0:
        assert (np.asarray(Image.open(tmp_path / "unset.png")) == np.asarray(Image.open(tmp_path / "empty.png"))).all()
    else:
        assert "classical-cartoon.pt" in unset.stderr and not (tmp_path / "empty.png").exists()


def test_what_cannot_work_is_refused_before_any_photo(bin_dir, cartoon_model, tmp_path):
    photo().save(tmp_path / "a.png")
    a = str(tmp_path / "a.png")
    for out in ("o.tif", "o.gif"):  # limn reads these but does not write them: before the model loads
        r = limn(bin_dir, "cartoonize", a, "-o", str(tmp_path / out), "-m", str(tmp_path / "no-model.pt"))
        assert r.returncode == 2 and "writes only .png, .jpg, .bmp, .tga and .webp" in r.stderr, r.stderr
    photo((400, 300)).save(tmp_path / "b.png")
    r = _run(bin_dir, cartoon_model, a, str(tmp_path / "b.png"), "-o", str(tmp_path / "out"), "--tile", "8")
    assert r.returncode == 2 and "--tile 8 is too small" in r.stderr and "images done" not in r.stderr, r.stderr
    assert not any((tmp_path / "out").iterdir())


def test_a_finished_batch_is_not_a_usage_error(bin_dir, cartoon_model, tmp_path):
    photo().save(tmp_path / "a.png")
    args = (str(tmp_path / "a.png"), "-o", str(tmp_path / "out") + "/", "--skip-existing")
    assert _run(bin_dir, cartoon_model, *args).returncode == 0
    r = _run(bin_dir, cartoon_model, *args)
    assert r.returncode == 0 and "nothing to do" in r.stderr and "--help" not in r.stderr


def test_landmarks_files_name_what_is_wrong(bin_dir, face_model, tmp_path):
    photo((64, 64)).save(tmp_path / "p.png")
    base = ["restore-faces", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "-m", face_model, "-d", "cpu"]
    good = " ".join(f"{v:g}" for v in face_landmarks(32, 30, 24))
    for text, said in ((good.replace(good.split()[0], "nan", 1), "'nan' is not a finite number"),
                       (good.replace(good.split()[0], "1e300", 1), "'1e300' is not a finite number"),
                       (good.replace(good.split()[0], "abc", 1), "'abc' is not a number"),
                       (" ".join(good.split()[:9]), "expected 10 numbers (5 x y pairs), found 9")):
        (tmp_path / "f.txt").write_text(text + "\n")
        r = limn(bin_dir, *base, "--landmarks", str(tmp_path / "f.txt"))
        assert r.returncode == 2 and said in r.stderr, (text, r.stderr)
    (tmp_path / "f.txt").write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\n")  # a UTF-8 byte order mark
    r = limn(bin_dir, *base, "--landmarks", str(tmp_path / "f.txt"))
    assert r.returncode == 0 and "1 face restored" in r.stderr, r.stderr


def test_a_photo_given_twice_is_said_so(bin_dir, cartoon_model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    photo().save(src / "a.png")
    r = _run(bin_dir, cartoon_model, str(src / "a.png"), str(src / "a.png"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "is given twice" in r.stderr and "rename" not in r.stderr
    r = _run(bin_dir, cartoon_model, str(src), str(src / "a.png"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and f"is also in the folder {src}" in r.stderr, r.stderr


def test_each_command_takes_only_its_own_options(bin_dir, cartoon_model, tmp_path):
    r = limn(bin_dir, "devices", "--help")
    assert r.returncode == 0 and "--json" in r.stdout and "--strength" not in r.stdout
    assert "--landmarks FILE" in limn(bin_dir, "--help").stdout
    assert "--landmarks FILE" in limn(bin_dir, "restore-faces", "--help").stdout
    photo().save(tmp_path / "a.png")
    a = str(tmp_path / "a.png")
    for args, said in ((["info", cartoon_model, "-o", "x"], "info does not take -o"),
                       (["devices", "--strength", "1"], "devices does not take --strength"),
                       (["detect-faces", a, "--format", "png"], "detect-faces does not take --format"),
                       (["cartoonize", a, "-o", str(tmp_path / "b.png"), "--json"], "--json prints the plan of --dry-run"),
                       (["cartoonize", a, "-o", str(tmp_path / "b.png"), "-o", str(tmp_path / "c.png")],
                        "-o is given twice")):
        r = limn(bin_dir, *args)
        assert r.returncode == 2 and said in r.stderr, (args, r.stderr)
    photo().save(tmp_path / "-x.png")  # `--` ends the options: a file whose name starts with -
    r = subprocess.run([os.path.abspath(os.path.join(bin_dir, "limn")), "cartoonize", "-o", "y.png", "-m", cartoon_model, "-d", "cpu",
                        "-q", "--", "-x.png"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "y.png").is_file(), r.stderr


def test_memory_limit_values(bin_dir, cartoon_model, tmp_path):
    photo().save(tmp_path / "a.png")
    base = ("cartoonize", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "-m", cartoon_model, "-d", "cpu")
    r = limn(bin_dir, *base, "--memory-limit", "1")
    assert r.returncode == 2 and "less than any model works in" in r.stderr
    r = limn(bin_dir, *base, "--memory-limit", "0x100")
    assert r.returncode == 2 and "expects a size" in r.stderr
    r = limn(bin_dir, *base, "--memory-limit", "9223372036854775807")
    assert "9223372036854775808" not in r.stderr
    r = limn(bin_dir, *base, "--memory-limit", "1.5G", "-q")
    assert r.returncode == 0, r.stderr


def test_what_a_folder_walk_leaves_out_is_said(bin_dir, cartoon_model, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    photo().save(src / "a.png")
    photo().save(src / "sub" / "b.png")
    os.symlink(src / "gone.png", src / "link.png")
    r = _run(bin_dir, cartoon_model, str(src), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "1 dangling symbolic link(s) skipped" in r.stderr and "link.png" in r.stderr
    assert "1 subfolder(s) not entered (-r walks them)" in r.stderr and "sub" in r.stderr


def test_device_numbers_and_symlinked_outputs(bin_dir, cartoon_model, tmp_path):
    photo().save(tmp_path / "a.png")
    r = _run(bin_dir, cartoon_model, str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "-d", "cuda:00")
    assert r.returncode == 2 and "--device expects" in r.stderr
    # An output that is a symbolic link is written through, as cp does: the link stays.
    photo((32, 24)).save(tmp_path / "target.png")
    os.symlink("target.png", tmp_path / "link.png")
    r = _run(bin_dir, cartoon_model, str(tmp_path / "a.png"), "-o", str(tmp_path / "link.png"), "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "link.png").is_symlink() and Image.open(tmp_path / "target.png").size == (160, 120)


def test_transparency_warning_only_when_there_is_transparency(bin_dir, cartoon_model, tmp_path):
    rgb = np.asarray(photo())
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(tmp_path / "opaque.png")
    r = _run(bin_dir, cartoon_model, str(tmp_path / "opaque.png"), "-o", str(tmp_path / "o.jpg"))
    assert r.returncode == 0 and "JPEG has no alpha" not in r.stderr, r.stderr


def test_pictures_of_several_frames_are_refused_with_the_reason(bin_dir, cartoon_model, tmp_path):
    """Animated GIF and WebP and multi-page TIFF: refused, saying so (an animated WebP was called
    corrupt, and the first frame of the others was used without a word)."""
    frames = [photo((64, 48)), photo((64, 48)).transpose(Image.FLIP_LEFT_RIGHT)]
    files = {"g.gif": {}, "t.tif": {}, "w.webp": {"lossless": True}}
    for name, kw in files.items():
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], **kw)
    r = _run(bin_dir, cartoon_model, *(str(tmp_path / n) for n in files), "-o", str(tmp_path / "out"))
    assert r.returncode == 1 and "0 of 3 images done" in r.stderr, r.stderr
    assert "is an animated GIF file (2 frames); limn reads still pictures" in r.stderr
    assert "is a TIFF file of several pages; limn reads still pictures" in r.stderr
    assert "is an animated WebP file; limn reads still pictures" in r.stderr
    for name in files:  # one frame of each is a picture like any other
        frames[0].save(tmp_path / ("one-" + name))
        r = _run(bin_dir, cartoon_model, str(tmp_path / ("one-" + name)), "-o", str(tmp_path / (name + ".png")), "-q")
        assert r.returncode == 0, (name, r.stderr)


def test_a_gif_without_transparency_is_rgb_and_a_tiff_keeps_its_profile(bin_dir, cartoon_model, tmp_path):
    photo().convert("P").save(tmp_path / "opaque.gif")
    r = _run(bin_dir, cartoon_model, str(tmp_path / "opaque.gif"), "-o", str(tmp_path / "o.jpg"))
    assert r.returncode == 0 and "JPEG has no alpha" not in r.stderr, r.stderr
    r = _run(bin_dir, cartoon_model, str(tmp_path / "opaque.gif"), "-o", str(tmp_path / "o.png"), "-q")
    assert r.returncode == 0 and Image.open(tmp_path / "o.png").mode == "RGB"
    profile = _icc_profile()
    photo().save(tmp_path / "p.tif", icc_profile=profile)
    r = _run(bin_dir, cartoon_model, str(tmp_path / "p.tif"), "-o", str(tmp_path / "p.png"), "-q")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "p.png").info.get("icc_profile") == profile


def test_option_values_are_checked_by_the_library_before_any_model_loads(bin_dir, tmp_path):
    # The ranges are the library's (limn_*_options_check), said with the flag, exit 2; the model
    # named does not exist, so a later check would have been exit 3.
    photo().save(tmp_path / "a.png")
    a, missing = str(tmp_path / "a.png"), str(tmp_path / "no-model.pt")
    for command, flag, value, said in (
            ("cartoonize", "--strength", "1.5", "--strength 1.5: invalid strength 1.5: expected 0..1"),
            ("restore-faces", "--strength", "-0.5", "invalid strength -0.5: expected 0..1"),
            ("detect-faces", "--threshold", "nan", "--threshold nan: invalid score_threshold nan: expected 0..1"),
            ("restore-faces", "--min-face-size", "-1", "--min-face-size -1: invalid min_face_size -1"),
            ("cartoonize", "--quality", "0", "--quality 0: invalid jpeg_quality 0: expected 1..100"),
            ("cartoonize", "--quality", "101", "invalid jpeg_quality 101: expected 1..100"),
            ("cartoonize", "--strength", "abc", "--strength expects a number, not 'abc'")):
        model = ("--detector", missing) if command == "detect-faces" else ("-o", str(tmp_path / "b.png"), "-m", missing)
        r = limn(bin_dir, command, a, *model, flag, value)
        assert r.returncode == 2 and said in r.stderr, (command, flag, value, r.stderr)
    assert not (tmp_path / "b.png").exists()
