"""Models by name (limn_models.registry, limn_models.fetch, `limn models`, `-m NAME`), with no
internet: a local HTTP server on 127.0.0.1 serves files at the same paths as the real hosts
(ModelScope's per-file endpoint, raw GitHub), and $LIMN_FETCH_HOSTS sends the requests there.
Covered: a fetch and conversion, resuming after a cut connection, a checksum mismatch refused with
nothing left behind, 404, a timeout, no network at all, trust on first use, licences that need
accepting, --from a folder, and RetinaFace fetched from the served copy of ../shared/data and run
by name from Python and the CLI.

Run: cd /work/main && python3 -m pytest -q tests/python/test_fetch.py
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, Optional
from urllib.parse import quote_plus

import numpy as np
import pytest

from limn_models import dctnet, fetch, registry
from limn_models.dctnet import dctnet_random_init
from test_convert_dctnet import enc_graph, synthetic_nodes, tf_variables

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_WEIGHTS = os.path.join(ROOT, "..", "shared", "data", "retinaface-mobilenet0.25.pth")
MODELSCOPE = "https://www.modelscope.cn"
GITHUB_RAW = "https://raw.githubusercontent.com"
GPEN_HOST = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com"


# ---- A local server laid out like the real hosts -------------------------------------------------


class Served:
    """What the server answers for one path (with its query)."""

    def __init__(self, data: bytes = b"", status: int = 200, cut_after: Optional[int] = None,
                 delay: float = 0.0) -> None:
        self.data, self.status, self.cut_after, self.delay = data, status, cut_after, delay
        self.requests = []  # the Range header of each request ('' without one)


class Handler(http.server.BaseHTTPRequestHandler):
    routes: Dict[str, Served] = {}

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout case)

    def _answer(self) -> None:
        served = self.routes.get(self.path)
        if served is None or served.status == 404:
            self.send_error(404, "Not Found")
            return
        served.requests.append(self.headers.get("Range", ""))
        if served.delay:
            time.sleep(served.delay)
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        if start >= len(served.data) and start:
            self.send_response(416)
            self.end_headers()
            return
        body = served.data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(served.data) - 1}/{len(served.data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if served.cut_after is not None and not start:
            self.wfile.write(body[:served.cut_after])  # then the connection drops
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    Handler.routes = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(tmp_path, server, monkeypatch):
    """A private cache, and the hosts sent to the local server."""
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("LIMN_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LIMN_FETCH_HOSTS",
                       f"{MODELSCOPE}={base}/modelscope,{GITHUB_RAW}={base}/github,{GPEN_HOST}={base}/oss")
    return tmp_path


def modelscope_path(model_id: str, file: str, revision: str = "master") -> str:
    """The path of ModelScope's per-file download endpoint on the local server."""
    return f"/modelscope/api/v1/models/{model_id}/repo?Revision={quote_plus(revision)}&FilePath={quote_plus(file)}"


def write_registry(path, models: Dict[str, dict]) -> str:
    with open(path, "w") as f:
        json.dump({"format": 1, "models": models}, f)
    return str(path)


def dctnet_entry(url: str, data: Optional[bytes], sha: Optional[str] = "auto", restricted: bool = False) -> dict:
    return {"kind": "cartoon", "description": "test DCT-Net", "converter": "dctnet", "source": "test",
            "license": {"spdx": "Apache-2.0", "text": "test licence", "restricted": restricted},
            "files": [{"name": "cartoon_bg.pb", "url": url,
                       "size": len(data) if data is not None and sha else None,
                       "sha256": hashlib.sha256(data).hexdigest() if sha == "auto" else sha}]}


@pytest.fixture(scope="module")
def pb_bytes() -> bytes:
    """A synthetic DCT-Net frozen graph (random weights), as the official cartoon_bg.pb is laid out."""
    data, _ = enc_graph(synthetic_nodes(tf_variables(dctnet_random_init(3))))
    return data


@pytest.fixture(autouse=True)
def no_compiles(request, monkeypatch):
    """Fetches here skip the compile for this CPU (minutes each), but in the tests marked
    `compiles`, which run the compile step (for real, or with a stand-in converter)."""
    calls = []
    if "compiles" not in request.keywords:
        monkeypatch.setattr(fetch, "compile_for_this_cpu", lambda entry, original, say: calls.append(entry.name))
    return calls


def cache_files(root) -> list:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def quiet(*_args) -> None:
    pass


# ---- The registry ------------------------------------------------------------------------------


def test_the_bundled_registry_is_valid_and_names_what_the_issue_lists():
    entries = registry.load()
    for name in ("dctnet-anime", "dctnet-anime-head", "dctnet-3d", "dctnet-handdrawn", "dctnet-sketch",
                 "dctnet-artstyle", "dctnet-design", "dctnet-illustration", "gpen-bfr-512", "gpen-bfr-256",
                 "retinaface"):
        assert name in entries, name
    assert entries["gpen-bfr-512"].license.restricted
    assert not entries["dctnet-anime"].license.restricted
    face = entries["retinaface"].files[0]
    assert face.sha256 == "ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1"
    assert face.size == 1789735
    head = entries["dctnet-anime-head"].files[0]
    assert (head.size, head.sha256[:8]) == (5894895, "bca966dd")
    assert entries["dctnet-anime"].files[0].url == (
        "https://www.modelscope.cn/api/v1/models/damo/cv_unet_person-image-cartoon_compound-models/repo"
        "?Revision=master&FilePath=cartoon_bg.pb")


def test_malformed_registries_are_refused_with_the_reason(tmp_path):
    bad = dctnet_entry("ftp://x/y", b"x")
    with pytest.raises(registry.RegistryError, match="url must be http"):
        registry.load(write_registry(tmp_path / "r.json", {"m": bad}))
    with pytest.raises(registry.RegistryError, match="names are lowercase"):
        registry.load(write_registry(tmp_path / "r.json", {"Bad Name": dctnet_entry("https://x/y", b"x")}))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(registry.RegistryError, match="not valid JSON"):
        registry.load(str(tmp_path / "broken.json"))


def test_cache_folder_follows_limn_home_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("LIMN_HOME", str(tmp_path / "home"))
    assert registry.model_file("retinaface") == str(tmp_path / "home" / "models" / "retinaface.pt")
    monkeypatch.delenv("LIMN_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert registry.cache_dir() == str(tmp_path / "xdg" / "limn")


# ---- Fetching ------------------------------------------------------------------------------------


def test_fetch_converts_and_a_cut_connection_resumes(env, pb_bytes, monkeypatch):
    path = modelscope_path("damo/test-dctnet", "cartoon_bg.pb")
    served = Handler.routes[path] = Served(pb_bytes, cut_after=len(pb_bytes) // 3)
    url = MODELSCOPE + path[len("/modelscope"):]
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"test-dctnet": dctnet_entry(url, pb_bytes)}))
    out = fetch.fetch("test-dctnet", retries=2, quiet=True, say=quiet)
    assert out == registry.model_file("test-dctnet") and os.path.isfile(out)
    # The first request was cut after a third; the second asked for the rest only.
    assert served.requests == ["", f"bytes={len(pb_bytes) // 3}-"]
    with open(os.path.join(registry.cache_dir(), "downloads", "test-dctnet", "cartoon_bg.pb"), "rb") as f:
        assert f.read() == pb_bytes
    from limn_models.metadata import read_metadata
    import torch

    meta = read_metadata(torch.jit.load(out))
    assert meta.kind == "cartoon" and meta.name == "test-dctnet"
    assert not [f for f in cache_files(registry.cache_dir()) if f.endswith(".part")]
    # Fetched already: nothing is downloaded again.
    fetch.fetch("test-dctnet", quiet=True, say=quiet)
    assert len(served.requests) == 2


def test_a_checksum_mismatch_is_refused_and_leaves_nothing(env, pb_bytes, monkeypatch):
    path = modelscope_path("damo/test-dctnet", "cartoon_bg.pb")
    Handler.routes[path] = Served(pb_bytes)
    url = MODELSCOPE + path[len("/modelscope"):]
    entry = dctnet_entry(url, pb_bytes, sha="0" * 64)
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"test-dctnet": entry}))
    with pytest.raises(fetch.FetchError, match="SHA-256 .* expected 0000.*refused, nothing kept"):
        fetch.fetch("test-dctnet", quiet=True, say=quiet)
    assert cache_files(registry.cache_dir()) == []


def test_404_timeout_and_no_network_fail_with_the_url_and_the_manual_way(env, pb_bytes, monkeypatch):
    missing = MODELSCOPE + "/api/v1/models/damo/nothing/repo?Revision=master&FilePath=cartoon_bg.pb"
    slow_path = modelscope_path("damo/slow", "cartoon_bg.pb")
    Handler.routes[slow_path] = Served(pb_bytes, delay=3.0)
    with socket.socket() as s:  # a port nobody listens on: no network
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    models = {"missing": dctnet_entry(missing, pb_bytes),
              "slow": dctnet_entry(MODELSCOPE + slow_path[len("/modelscope"):], pb_bytes),
              "offline": dctnet_entry("https://models.example.org/cartoon_bg.pb", pb_bytes)}
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", models))
    with pytest.raises(fetch.FetchError, match=r"cannot download .*damo/nothing.*HTTP 404.*--from"):
        fetch.fetch("missing", quiet=True, say=quiet)
    t0 = time.monotonic()
    with pytest.raises(fetch.FetchError, match=r"cannot download .*damo/slow.*timed out"):
        fetch.fetch("slow", timeout=0.5, retries=1, quiet=True, say=quiet)
    assert time.monotonic() - t0 < 10
    monkeypatch.setenv("LIMN_FETCH_HOSTS", f"https://models.example.org=http://127.0.0.1:{closed}")
    with pytest.raises(fetch.FetchError) as e:
        fetch.fetch("offline", quiet=True, say=quiet)
    text = str(e.value)
    assert "https://models.example.org/cartoon_bg.pb" in text and "refused" in text
    assert "download it by hand" in text and "--from" in text
    assert not [f for f in cache_files(registry.cache_dir()) if not f.endswith(".part")]


def test_trust_on_first_use_records_the_hash_and_refuses_a_changed_file(env, pb_bytes, monkeypatch):
    path = modelscope_path("damo/test-dctnet", "cartoon_bg.pb")
    Handler.routes[path] = Served(pb_bytes)
    url = MODELSCOPE + path[len("/modelscope"):]
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"tofu": dctnet_entry(url, pb_bytes, sha=None)}))
    said = []
    fetch.fetch("tofu", quiet=True, say=said.append)
    assert any("trust on first use" in s for s in said)
    with open(os.path.join(registry.cache_dir(), "trusted.json")) as f:
        assert json.load(f)["tofu/cartoon_bg.pb"]["sha256"] == hashlib.sha256(pb_bytes).hexdigest()
    changed = bytearray(pb_bytes)
    changed[-1] ^= 1
    Handler.routes[path] = Served(bytes(changed))
    with pytest.raises(fetch.FetchError, match="first download"):
        fetch.fetch("tofu", force=True, quiet=True, say=quiet)
    assert os.path.isfile(registry.model_file("tofu"))  # the earlier, verified file stays


def test_a_restricted_licence_needs_accepting_and_from_takes_a_folder(env, pb_bytes, monkeypatch, tmp_path):
    entry = dctnet_entry("https://example.org/never/cartoon_bg.pb", pb_bytes, restricted=True)
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"academic": entry}))
    with pytest.raises(fetch.LicenseNotAccepted, match="--accept-license"):
        fetch.fetch("academic", quiet=True, say=quiet)
    assert fetch.main(["fetch", "academic", "-q"]) == 2
    folder = tmp_path / "originals"
    folder.mkdir()
    with pytest.raises(fetch.FetchError, match="no cartoon_bg.pb in"):
        fetch.fetch("academic", origin=str(folder), accept_license=True, quiet=True, say=quiet)
    (folder / "cartoon_bg.pb").write_bytes(pb_bytes)
    out = fetch.fetch("academic", origin=str(folder), accept_license=True, quiet=True, say=quiet)
    assert os.path.isfile(out)
    assert fetch.main(["path", "academic"]) == 0
    assert fetch.main(["remove", "academic"]) == 0
    assert not os.path.exists(out)
    assert fetch.main(["path", "academic"]) == 1
    assert fetch.main(["fetch", "no-such-model"]) == 2


def test_gpen_is_converted_with_its_configuration_once_its_licence_is_accepted(env, monkeypatch):
    import torch

    from limn_models import gpen
    from limn_models.metadata import read_metadata

    cfg = gpen.GPEN_CONFIGS["GPEN-BFR-256"]
    net = gpen.gpen_random_init(seed=1, size=256, channel_multiplier=int(cfg["channel_multiplier"]),
                                narrow=float(cfg["narrow"]))
    weights = env / "GPEN-BFR-256.pth"
    torch.save(net.state_dict(), weights)
    data = weights.read_bytes()
    Handler.routes["/oss/robin/models/GPEN-BFR-256.pth"] = Served(data)
    bundled = registry.load()["gpen-bfr-256"]
    entry = {"kind": "face_restore", "description": "GPEN 256, random weights", "converter": "gpen",
             "config": "GPEN-BFR-256", "source": bundled.source,
             "license": {"spdx": bundled.license.spdx, "text": bundled.license.text, "restricted": True},
             "files": [{"name": "GPEN-BFR-256.pth", "url": bundled.files[0].url, "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()}]}
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"gpen-bfr-256": entry}))
    assert fetch.main(["fetch", "gpen-bfr-256", "-q"]) == 2  # the licence first
    out = fetch.fetch("gpen-bfr-256", accept_license=True, quiet=True, say=quiet)
    meta = read_metadata(torch.jit.load(out))
    assert (meta.kind, meta.fixed_width, meta.fixed_height) == ("face_restore", 256, 256)


def test_retinaface_by_name_from_the_served_shared_copy(env, bin_dir, monkeypatch, capsys):
    if not os.path.isfile(SHARED_WEIGHTS):
        pytest.skip(f"RetinaFace weights not found at {os.path.normpath(SHARED_WEIGHTS)} (../shared/data)")
    with open(SHARED_WEIGHTS, "rb") as f:
        Handler.routes["/github/biubug6/Face-Detector-1MB-with-landmark/master/weights/mobilenet0.25_Final.pth"] = \
            Served(f.read())
    cli = os.path.join(bin_dir, "limn")
    photo = str(env / "astronaut.png")
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(photo)
    # Not fetched yet: the CLI says how to fetch it.
    run = subprocess.run([cli, "detect-faces", photo, "--detector", "retinaface"], capture_output=True, text=True)
    assert run.returncode == 3 and "limn models fetch retinaface" in run.stderr
    # The real registry entry (published URL, size and SHA-256), through the CLI.
    run = subprocess.run([cli, "models", "fetch", "retinaface", "-q"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "models")})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == registry.model_file("retinaface")
    assert "licence (MIT)" in run.stderr
    run = subprocess.run([cli, "detect-faces", photo, "--detector", "retinaface"], capture_output=True, text=True)
    assert run.returncode == 0 and "1 face" in run.stdout
    info = json.loads(subprocess.run([cli, "info", "retinaface", "--json"], capture_output=True, text=True).stdout)
    assert info["kind"] == "face_detect" and info["name"] == "retinaface"
    limn = pytest.importorskip("limn")
    with limn.Model("retinaface", device="cpu") as det:
        faces = det.detect_faces(np.asarray(Image.open(photo).convert("RGB")))
    assert len(faces) == 1
    with pytest.raises(limn.FileError, match="limn models fetch dctnet-anime"):
        limn.Model("dctnet-anime")



def test_an_original_nothing_vouches_for_is_not_kept_when_it_fails_to_convert(env, pb_bytes, monkeypatch, capsys):
    """No SHA-256 known: a file that fails to convert is deleted, so the next fetch takes the
    corrected copy from --from (it was reused until --force before); the failure says how to retry,
    in one line."""
    entry = dctnet_entry("https://example.org/never/cartoon_bg.pb", None, sha=None)
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"unvouched": entry}))
    folder = env / "originals"
    folder.mkdir()
    (folder / "cartoon_bg.pb").write_bytes(b"not a frozen graph")
    assert fetch.main(["fetch", "unvouched", "--from", str(folder), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("limn models: converting cartoon_bg.pb from ") and "failed:" in err
    assert "not kept" in err and f"`limn models fetch unvouched --from {folder}`" in err
    downloaded = os.path.join(registry.cache_dir(), "downloads", "unvouched", "cartoon_bg.pb")
    assert not os.path.exists(downloaded)
    assert not os.path.exists(os.path.join(registry.cache_dir(), "trusted.json"))  # nothing trusted
    (folder / "cartoon_bg.pb").write_bytes(pb_bytes)  # the corrected file
    out = fetch.fetch("unvouched", origin=str(folder), quiet=True, say=quiet)
    assert os.path.isfile(out)
    with open(downloaded, "rb") as f:
        assert f.read() == pb_bytes


def test_a_verified_original_is_kept_when_the_conversion_fails_and_from_is_still_taken(env, pb_bytes, monkeypatch):
    """SHA-256 known and matched: the conversion's failure is not the file's, so it is kept (the
    message says --force downloads it again) and the next fetch converts it without downloading;
    --from takes the file from the folder it names, not the kept copy."""
    path = modelscope_path("damo/test-dctnet", "cartoon_bg.pb")
    served = Handler.routes[path] = Served(pb_bytes)
    url = MODELSCOPE + path[len("/modelscope"):]
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"vouched": dctnet_entry(url, pb_bytes)}))
    real_convert = fetch.convert

    def out_of_memory(entry, original, out, **target):
        raise MemoryError("out of memory\nmore detail")

    monkeypatch.setattr(fetch, "convert", out_of_memory)
    with pytest.raises(fetch.FetchError) as e:
        fetch.fetch("vouched", quiet=True, say=quiet)
    text = str(e.value)
    assert "converting" in text and "out of memory" in text and "\n" not in text
    assert "kept" in text and "`limn models fetch vouched`" in text and "--force" in text
    downloaded = os.path.join(registry.cache_dir(), "downloads", "vouched", "cartoon_bg.pb")
    assert os.path.isfile(downloaded) and len(served.requests) == 1
    folder = env / "originals"
    folder.mkdir()
    (folder / "cartoon_bg.pb").write_bytes(pb_bytes)
    said = []
    with pytest.raises(fetch.FetchError, match="--force"):
        fetch.fetch("vouched", origin=str(folder), quiet=True, say=said.append)
    assert f"copying cartoon_bg.pb from {folder / 'cartoon_bg.pb'}" in said
    monkeypatch.setattr(fetch, "convert", real_convert)
    assert os.path.isfile(fetch.fetch("vouched", quiet=True, say=quiet))
    assert len(served.requests) == 1  # converted from the kept file


def test_a_kept_original_that_no_longer_verifies_is_deleted(env, pb_bytes, monkeypatch):
    """A reused download that fails its check is deleted, as a fresh one is ("nothing kept"), so
    the next fetch downloads it again rather than failing the same way until --force."""
    path = modelscope_path("damo/test-dctnet", "cartoon_bg.pb")
    served = Handler.routes[path] = Served(pb_bytes)
    url = MODELSCOPE + path[len("/modelscope"):]
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"m": dctnet_entry(url, pb_bytes)}))
    downloaded = os.path.join(registry.cache_dir(), "downloads", "m", "cartoon_bg.pb")
    os.makedirs(os.path.dirname(downloaded))
    with open(downloaded, "wb") as f:  # what an interrupted or older fetch could leave
        f.write(b"x" * len(pb_bytes))
    with pytest.raises(fetch.FetchError, match="nothing kept"):
        fetch.fetch("m", quiet=True, say=quiet)
    assert not os.path.exists(downloaded)
    assert os.path.isfile(fetch.fetch("m", quiet=True, say=quiet)) and len(served.requests) == 1


# ---- A cache that cannot be used -----------------------------------------------------------------


def models_cli(cache: str, *args: str, prefix=()) -> subprocess.CompletedProcess:
    """`limn models ARGS` (python -m limn_models.fetch) with $LIMN_HOME at ``cache``."""
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "models"), "LIMN_HOME": cache}
    return subprocess.run([*prefix, sys.executable, "-m", "limn_models.fetch", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def one_line_error(run: subprocess.CompletedProcess, *words: str) -> str:
    """Checks that ``run`` failed with status 1 and one line of `limn models: ...` holding
    ``words``, and no traceback; returns the line."""
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1, run.stderr
    assert lines[0].startswith("limn models: ") and "Traceback" not in run.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def one_model(env, pb_bytes, monkeypatch) -> str:
    """A registry of one model whose original is in env/originals."""
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"m": dctnet_entry("https://x.invalid/a", pb_bytes)}))
    (env / "originals").mkdir()
    (env / "originals" / "cartoon_bg.pb").write_bytes(pb_bytes)
    return str(env / "originals")


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_a_cache_that_is_a_file_fails_every_command_in_one_line(env, one_model, where):
    (env / "plain").write_text("a file, not a folder")
    cache = str(env / "plain") if where == "file" else str(env / "plain" / "cache")
    for args in (["list"], ["path", "m"], ["remove", "m"], ["fetch", "m", "--from", one_model, "-q", "--no-compile"]):
        one_line_error(models_cli(cache, *args), cache, f"{env / 'plain'} is a file, not a folder", "$LIMN_HOME")
    assert (env / "plain").read_text() == "a file, not a folder"


def unprivileged_prefix(folder) -> tuple:
    """A command prefix under which permission bits stop writes in ``folder`` (mode 0o500): none
    for an ordinary user; as root, setpriv dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
    Skips the test, saying why, where neither stops writes."""
    prefix: tuple = ()
    if os.geteuid() == 0 and shutil.which("setpriv"):
        prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")
    probe = os.path.join(str(folder), "probe")
    run = subprocess.run([*prefix, sys.executable, "-c", f"open({probe!r}, 'w')"], capture_output=True, text=True)
    if run.returncode == 0:
        os.remove(probe)
        pytest.skip("permission bits do not stop writes here (root, and setpriv cannot drop "
                    "CAP_DAC_OVERRIDE): a read-only cache cannot be made")
    if "PermissionError" not in run.stderr:
        pytest.skip(f"cannot run a command without write permission here: {run.stderr.strip()[-200:]}")
    return prefix


def test_a_cache_without_write_permission_fails_fetch_and_remove_in_one_line(env, one_model):
    """fetch and remove need to write and say so; list and path only read, so a read-only cache
    filled beforehand (a shared or image-baked one) still answers them."""
    cache = env / "ro"
    (cache / "models").mkdir(parents=True)
    (cache / "models" / "m.pt").write_bytes(b"stands for a fetched model")
    os.chmod(cache / "models", 0o500)
    os.chmod(cache, 0o500)
    try:
        prefix = unprivileged_prefix(cache)
        line = one_line_error(models_cli(str(cache), "fetch", "m", "--force", "--from", one_model, "-q",
                                         "--no-compile", prefix=prefix),
                              str(cache), "Permission denied")
        assert "cannot write" in line
        one_line_error(models_cli(str(cache), "remove", "m", prefix=prefix), str(cache), "Permission denied")
        assert (cache / "models" / "m.pt").is_file()
        run = models_cli(str(cache), "path", "m", prefix=prefix)
        assert run.returncode == 0 and run.stdout.strip() == str(cache / "models" / "m.pt"), run.stderr
        run = models_cli(str(cache), "list", prefix=prefix)
        assert run.returncode == 0 and "not writable" in run.stdout, run.stderr
        os.chmod(cache, 0o000)  # not even readable: list and path cannot tell what is there
        for args in (["list"], ["path", "m"]):
            one_line_error(models_cli(str(cache), *args, prefix=prefix), str(cache), "Permission denied")
    finally:
        os.chmod(cache, 0o700)
        os.chmod(cache / "models", 0o700)


# ---- Listing -------------------------------------------------------------------------------------


def list_table(out: str) -> tuple:
    """The header's column starts and the rows of `limn models list`, each cut at those starts."""
    lines = out.splitlines()
    header = lines[0]
    starts = [header.index(title) for title in ("name", "kind", "licence", "fetched", "description")]
    assert header.split() == ["name", "kind", "licence", "fetched", "description"]
    rows = []
    for line in lines[1:lines.index("")]:
        for start in starts[1:]:
            assert line[start - 1] == " " and line[start] != " ", (start, line)  # a cell starts there
        rows.append([line[a:b].strip() for a, b in zip(starts, starts[1:] + [len(line)])])
    return starts, rows


def test_list_lines_up_its_columns_for_every_entry(env, monkeypatch, capsys):
    def expected(entries, fetched) -> list:
        return [[name, e.kind, e.license.spdx + (" (!)" if e.license.restricted else ""), fetched.get(name, "no"),
                 e.description] for name, e in sorted(entries.items())]

    assert fetch.main(["list"]) == 0  # the bundled registry
    assert list_table(capsys.readouterr().out)[1] == expected(registry.load(), {})
    long = dctnet_entry("https://x.invalid/a", b"x")
    long["license"] = {"spdx": "LicenseRef-" + "x" * 40, "text": "t", "restricted": True}
    models = {"a" * 64: long, "b": dctnet_entry("https://x.invalid/b", b"x"), "c": dctnet_entry("https://x.invalid/c", b"x")}
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", models))
    for path in (registry.model_file("b"), registry.model_file("c"), registry.package_file("c", "bf16")):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()
    assert fetch.main(["list"]) == 0
    assert list_table(capsys.readouterr().out)[1] == expected(registry.load(), {"b": "yes", "c": "+bf16"})


# ---- Compiling for this CPU ----------------------------------------------------------------------


@pytest.mark.compiles
def test_fetch_compiles_the_network_for_this_cpu_and_names_load_it_first(env, pb_bytes, monkeypatch):
    """The package in the precision fastest here (bf16 where the CPU has it natively and it stays
    within 45 dB), listed, tried first for the name on the CPU in "auto", removed with the model."""
    path = modelscope_path("damo/test-dctnet", "cartoon_bg.pb")
    Handler.routes[path] = Served(pb_bytes)
    url = MODELSCOPE + path[len("/modelscope"):]
    monkeypatch.setenv("LIMN_REGISTRY", write_registry(env / "r.json", {"test-dctnet": dctnet_entry(url, pb_bytes)}))
    said = []
    out = fetch.fetch("test-dctnet", quiet=True, say=said.append)
    precision = "bf16" if fetch.native_bf16() else "fp32"
    package = registry.package_file("test-dctnet", precision)
    assert registry.package_files("test-dctnet") == [package]
    assert any(f"compiling test-dctnet for this CPU in {precision}" in line for line in said)
    from limn_models import pt2

    record = pt2.read_record(package)
    assert record["limn_package_precision"] == precision and record["limn_name"] == "test-dctnet"
    if precision == "bf16":
        assert fetch.package_psnr(package) >= fetch.MIN_PSNR
    assert registry.candidates("test-dctnet", on_cpu=True) == [package, out]
    assert registry.candidates("test-dctnet", on_cpu=True, precision="fp16") == [out]
    assert registry.candidates("test-dctnet", on_cpu=False) == [out]
    assert fetch.main(["list"]) == 0
    assert set(fetch.remove("test-dctnet")) >= {out, package}
    assert registry.package_files("test-dctnet") == []


@pytest.mark.compiles
def test_the_compile_falls_back_to_fp32_below_45_db_and_a_failure_keeps_the_torchscript_file(env, monkeypatch):
    """The compile's decisions, with the converter replaced by a recorder: bf16 first where the CPU
    has it, fp32 when bf16 is too far from fp32, nothing for a detector, and a failed compile is said
    and leaves no file."""
    entry = registry.Entry(name="m", kind="cartoon", description="", converter="dctnet", source="",
                           license=registry.License("MIT", "", False))
    made = []

    def fake_convert(entry, original, out, **target):
        made.append((os.path.basename(out), target["precision"]))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        open(out, "wb").close()

    monkeypatch.setattr(fetch, "convert", fake_convert)
    monkeypatch.setattr(fetch, "native_bf16", lambda: True)
    monkeypatch.setattr(fetch, "package_psnr", lambda path: 38.0)
    said = []
    assert fetch.compile_for_this_cpu(entry, "orig", said.append) == registry.package_file("m", "fp32")
    assert made == [("m.cpu-bf16.pt2", "bf16"), ("m.cpu-fp32.pt2", "fp32")]
    assert registry.package_files("m") == [registry.package_file("m", "fp32")]
    assert any("38.0 dB" in line and "fp32 instead" in line for line in said)

    made.clear()
    monkeypatch.setattr(fetch, "package_psnr", lambda path: 52.0)
    assert fetch.compile_for_this_cpu(entry, "orig", said.append) == registry.package_file("m", "bf16")
    assert registry.package_files("m") == [registry.package_file("m", "bf16")]  # the older one went

    detector = registry.Entry(name="d", kind="face_detect", description="", converter="retinaface", source="",
                              license=registry.License("MIT", "", False))
    made.clear()
    assert fetch.compile_for_this_cpu(detector, "orig", said.append) is None and made == []

    def no_compiler(entry, original, out, **target):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(fetch, "convert", no_compiler)
    said.clear()
    assert fetch.compile_for_this_cpu(entry, "orig", said.append) is None
    assert registry.package_files("m") == []
    assert any("could not compile it for this CPU (InvalidCxxCompiler" in line for line in said)


def test_the_exporters_bf16_rule_is_the_librarys(monkeypatch):
    """limn_models decides native bf16 without the library (it must work without it): the same
    features, and $LIMN_CPU_DISABLE masks them the same way."""
    from limn_models import pt2

    have = set(pt2.cpu_features())
    assert fetch.native_bf16() == bool(have & set(fetch.BF16_FEATURES))
    monkeypatch.setenv("LIMN_CPU_DISABLE", "avx512_bf16, amx_bf16")
    assert not fetch.native_bf16()
