"""`limn cartoonize IN -o OUT --ray ADDR`: folder batches on Ray Data over the two-node cluster.

The outputs must be byte for byte those of the local command (same naming, same pixels, same
encoding), every output written once and never partly, failed photos listed without stopping the
job, and a job whose worker node dies in the middle must still finish with every output.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


def _outputs(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _progress_lines(stderr: str) -> list:
    return re.findall(r"^limn: \[\d+/\d+\] (\S+) -> (\S+) ", stderr, flags=re.M)


def _nodes(stderr: str) -> list:
    return re.findall(r"^limn: \[\d+/\d+\] .*, node ([0-9a-f]+)\)$", stderr, flags=re.M)


def test_a_folder_on_ray_equals_the_local_command_byte_for_byte(cluster, models, photos, limn_cmd, tmp_path):
    photos(tmp_path / "in", 10)
    (tmp_path / "in" / "notes.txt").write_text("not a photo")
    common = ["-m", models["unet"], "--strength", "0.8", "--format", "webp", "--quality", "90", "--device", "cpu"]
    local = limn_cmd("cartoonize", tmp_path / "in", "-o", tmp_path / "local", "-q", *common)
    assert local.returncode == 0, local.stderr
    run = limn_cmd("cartoonize", tmp_path / "in", "-o", tmp_path / "ray", "--ray", cluster.address,
                   "--replicas", "2", *common)
    assert run.returncode == 0, run.stderr
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
    assert sorted(_outputs(tmp_path / "ray")) == [f"photo{i:03d}.webp" for i in range(10)]
    assert "10 of 10 images done on" in run.stderr
    assert "1 file(s) skipped, not images limn reads" in run.stderr
    assert len(_progress_lines(run.stderr)) == 10


def test_failed_photos_are_listed_and_the_job_resumes_with_skip_existing(cluster, models, photos, limn_cmd,
                                                                          tmp_path):
    photos(tmp_path / "in", 4)
    broken = tmp_path / "in" / "photo002.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but not really a PNG")
    out = tmp_path / "out"
    first = limn_cmd("cartoonize", tmp_path / "in", "-o", out, "--ray", cluster.address, "-m", models["unet"],
                     "--device", "cpu")
    assert first.returncode == 1, first.stderr
    assert sorted(p.name for p in out.iterdir()) == ["photo000.png", "photo001.png", "photo003.png"]
    assert re.search(r"1 photo\(s\) failed.*\n  \S*photo002\.png: \S", first.stderr), first.stderr
    assert "3 of 4 images done" in first.stderr

    photos(tmp_path / "fixed", 4)
    broken.write_bytes((tmp_path / "fixed" / "photo002.png").read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = limn_cmd("cartoonize", tmp_path / "in", "-o", out, "--ray", cluster.address, "-m", models["unet"],
                     "--device", "cpu", "--skip-existing")
    assert again.returncode == 0, again.stderr
    assert [Path(o).name for _, o in _progress_lines(again.stderr)] == ["photo002.png"]
    assert "3 input(s) skipped, their output exists (--skip-existing)" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in before} == before
    local = limn_cmd("cartoonize", tmp_path / "fixed", "-o", tmp_path / "local", "-m", models["unet"],
                     "--device", "cpu", "-q")
    assert local.returncode == 0, local.stderr
    assert _outputs(out) == _outputs(tmp_path / "local")


def test_restore_faces_runs_on_ray_too(cluster, models, photos, limn_cmd, tmp_path):
    photos(tmp_path / "in", 2)
    # A cartoon model is not a face_restore model: the actors fail to load it, and the job says so.
    run = limn_cmd("restore-faces", tmp_path / "in", "-o", tmp_path / "out", "--ray", cluster.address,
                   "-m", models["unet"], "--detector", models["unet"], "--device", "cpu", timeout=120)
    assert run.returncode == 3, run.stderr
    assert "face_restore" in run.stderr or "kind" in run.stderr, run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("args, message", [
    (["-j", "2"], "--replicas N sets how many actors"),
    (["--replicas", "0"], "--replicas is out of range"),
    (["--tile", "0"], "--tile"),
])
def test_command_line_mistakes_are_usage_errors_before_ray_starts(args, message, models, photos, limn_cmd,
                                                                   tmp_path):
    photos(tmp_path / "in", 1)
    run = limn_cmd("cartoonize", tmp_path / "in", "-o", tmp_path / "out", "--ray", "127.0.0.1:1", *args)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert not (tmp_path / "out").exists()


def test_stdin_is_refused_with_ray(limn_cmd, tmp_path):
    run = subprocess.run([sys.executable, "-m", "limn", "cartoonize", "-", "-o", str(tmp_path / "x.png"), "--ray",
                          "127.0.0.1:1"], input=b"", capture_output=True, timeout=60)
    assert run.returncode == 2
    assert b"stdin or stdout" in run.stderr


def test_a_worker_node_dying_mid_job_still_gives_every_output_exactly_once(cluster, models, photos, tmp_path):
    count = 64
    worker = cluster.ensure_worker()
    photos(tmp_path / "in", count, width=640, height=480)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "limn", "cartoonize", str(tmp_path / "in"), "-o", str(out),
                             "--ray", cluster.address, "--replicas", "2", "-m", models["cartoon"], "--device", "cpu"],
                            stderr=subprocess.PIPE, text=True)
    lines: list = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        # Kill the worker node once its actor has written a few photos (both actors are then busy).
        end = time.monotonic() + 120
        while (_nodes("".join(lines)).count(worker[:8]) < 2 and proc.poll() is None
               and time.monotonic() < end):
            time.sleep(0.05)
        before = "".join(lines)
        assert proc.poll() is None and len(_progress_lines(before)) < count, \
            f"the job ended before the worker node could be killed: give it more work\n{before}"
        assert worker[:8] in _nodes(before), f"the worker node did nothing in 120 s\n{before}"
        cluster.kill_worker()
        assert proc.wait(240) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(10)
        cluster.ensure_worker()
    stderr = "".join(lines)
    written = [Path(o).name for _, o in _progress_lines(stderr)]
    assert sorted(written) == [f"photo{i:03d}.png" for i in range(count)], stderr  # each once
    assert sorted(p.name for p in out.iterdir()) == sorted(written)  # and no partial or temporary files
    local = subprocess.run([sys.executable, "-m", "limn", "cartoonize", str(tmp_path / "in"), "-o",
                            str(tmp_path / "local"), "-m", models["cartoon"], "--device", "cpu", "-q", "-j", "2"],
                           capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    assert _outputs(out) == _outputs(tmp_path / "local")
