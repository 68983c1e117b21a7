"""Fixtures of the Ray tests: a real two-node Ray cluster on this machine that never leaves loopback.

Ray advertises the machine's external address even when told 127.0.0.1, and traffic to any address
but loopback is not allowed here. So, before anything else, this conftest moves the test process
into a network namespace of its own where only ``lo`` exists (``unshare(CLONE_NEWNET)``, as
``unshare --net`` does; it needs root or CAP_SYS_ADMIN); every Ray process and every client the
tests start inherits it. tests/ray/run.sh runs them so (CTest ``python_ray``); ``python3 -m pytest
tests/ray`` works too. Only a missing ``ray`` skips them.

Fixtures:

- ``cluster`` (session): a ``RayCluster``: a head node (``ray start --head``, 2 CPUs) and a worker
  node (``ray start --address``, 2 CPUs), each a ``ray start --block`` process group of its own;
  ``cluster.address`` ("127.0.0.1:PORT"), ``cluster.node_ids()`` (alive nodes),
  ``cluster.kill_worker()`` (SIGKILL to the worker node's whole process group: a machine that
  dies), ``cluster.ensure_worker()`` (starts a worker node unless one is alive), ``cluster.stop()``
  (SIGTERM to each node's ``ray start``, which stops the node's processes; returns the cluster's
  processes still alive after it).
- ``models`` (session): model files: ``"cartoon"`` the installed built-in classical-cartoon.pt,
  ``"unet"`` a random-weight tiny U-Net (cartoon, loaded name ``tiny_unet``).
- ``photos(folder, count, width, height)``: writes ``count`` PNG crops of a real photo (scikit-image's
  astronaut) into ``folder``; returns their paths.
- ``limn_cmd(*args, timeout)``: runs ``python -m limn ARGS`` (the installed package's command) and
  returns the CompletedProcess (text output).
- ``free_port()``: a free TCP port on 127.0.0.1.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

CLONE_NEWNET = 0x40000000


def _interfaces() -> List[str]:
    return sorted(name for _, name in socket.if_nameindex())


def enter_loopback_namespace() -> None:
    """Moves this process into a new network namespace holding only ``lo``, brought up."""
    if _interfaces() == ["lo"]:
        return  # already isolated (tests/ray/run.sh, or a container without a network)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        pytest.exit(f"the Ray tests need a network namespace of their own (Ray would otherwise use the "
                    f"machine's external address), and unshare(CLONE_NEWNET) failed: {os.strerror(err)}; "
                    "run them as root", returncode=3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # ip link set lo up
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 0x1))


enter_loopback_namespace()
ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'limn[ray]')")
os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")

import numpy as np  # noqa: E402

import limn  # noqa: E402
from limn.serve.config import builtin_model  # noqa: E402

HOST = "127.0.0.1"


def free_port_number() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    return free_port_number


def _stop_with_parent() -> None:
    """In a node's `ray start --block`: SIGTERM when the test process dies, even by SIGKILL (a
    CTest timeout), so that the node stops its processes instead of outliving the run (Linux's
    PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class RayCluster:
    """A head node and worker nodes on this machine, in this process's network namespace."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        # Ray's socket paths must stay under 107 characters: a short folder of its own.
        self.temp = tempfile.mkdtemp(prefix="limn-ray-", dir="/tmp")
        self.port = free_port_number()
        self.address = f"{HOST}:{self.port}"
        self.head: Optional[subprocess.Popen] = None
        self.workers: List[subprocess.Popen] = []
        self._count = 0

    def _ray_start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        return subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--block",
                                 "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp}", "--disable-usage-stats",
                                 "--num-cpus=2", "--num-gpus=0", *args],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_stop_with_parent)

    def node_ids(self) -> List[str]:
        return [n["NodeID"] for n in ray.nodes() if n["Alive"]]

    def _wait_nodes(self, count: int, timeout: float = 90.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.node_ids()) == count:
                return
            time.sleep(0.5)
        raise AssertionError(f"the cluster did not reach {count} alive nodes in {timeout:.0f}s "
                             f"(logs in {self.logs})")

    def start(self) -> None:
        self.head = self._ray_start("head", "--head", f"--port={self.port}", "--include-dashboard=false")
        end = time.monotonic() + 90
        while True:
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="WARNING")
                break
            except (ConnectionError, RuntimeError):
                if time.monotonic() > end or self.head.poll() is not None:
                    raise AssertionError(f"the head node did not start (log: {self.logs / 'head.log'})")
                time.sleep(0.5)
        self.ensure_worker()

    def ensure_worker(self) -> str:
        """A worker node is alive (started if needed); returns its node id."""
        alive = [w for w in self.workers if w.poll() is None]
        if not alive:
            before = set(self.node_ids())
            self._count += 1
            self.workers.append(self._ray_start(f"worker{self._count}", f"--address={self.address}"))
            self._wait_nodes(len(before) + 1)
            return (set(self.node_ids()) - before).pop()
        head = self.head_node_id()
        return next(n for n in self.node_ids() if n != head)

    def head_node_id(self) -> str:
        return next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("node:__internal_head__"))

    def kill_worker(self) -> None:
        """The worker node dies at once: SIGKILL to its process group (raylet, its workers, agents)."""
        alive = [w for w in self.workers if w.poll() is None]
        assert alive, "no worker node to kill"
        before = len(self.node_ids())
        for w in alive:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait(30)
        self._wait_nodes(before - len(alive), timeout=120)

    def processes(self) -> List[int]:
        """Processes of this cluster still running (their command line names its temp folder)."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if self.temp.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
        return found

    def stop(self, timeout: float = 60.0) -> List[int]:
        """Serve shut down, then SIGTERM to every node; returns the cluster's processes still alive
        after ``timeout`` (a node drains its Serve proxies for up to 30 s before it stops)."""
        if ray.is_initialized():
            from ray import serve

            try:
                serve.shutdown()
            except ray.exceptions.RayError:  # Serve was shut down by another driver (limn serve --ray)
                pass
            ray.shutdown()
        nodes = [p for p in [*self.workers, self.head] if p is not None and p.poll() is None]
        for p in nodes:  # `ray start --block` stops its node's processes itself (a signal to all at once does not)
            p.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        for p in nodes:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        while self.processes() and time.monotonic() < end:
            time.sleep(0.2)
        return self.processes()

    def kill_all(self) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> RayCluster:
    c = RayCluster(tmp_path_factory.mktemp("ray-logs"))
    try:
        c.start()
        yield c
    finally:
        c.stop()
        c.kill_all()
        # Ray's session files (sockets, its own logs); the nodes' output stays in c.logs.
        shutil.rmtree(c.temp, ignore_errors=True)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    from limn_models import fixtures
    from limn_models.metadata import Metadata, export

    out = tmp_path_factory.mktemp("ray-models")
    paths = {"cartoon": builtin_model(), "unet": str(out / "tiny_unet.pt")}
    export(fixtures._seeded(fixtures.TinyUNet, 1),
           Metadata(kind="cartoon", name="tiny-unet", source="generated by tests/ray/conftest.py",
                    license="CC0-1.0 (test fixture)", size_multiple=2, tile_margin=8), paths["unet"])
    return paths


def make_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A crop of a real photo (scikit-image's astronaut, mirrored and tiled when larger)."""
    import skimage.data

    src = np.ascontiguousarray(skimage.data.astronaut()[:, :, :3])
    big = np.tile(np.concatenate([src, src[:, ::-1]], axis=1), (height // 512 + 2, width // 1024 + 2, 1))
    y, x = (seed * 37) % 256, (seed * 53) % 256
    return np.ascontiguousarray(big[y:y + height, x:x + width])


@pytest.fixture(scope="session")
def photos() -> Callable[..., List[Path]]:
    def write(folder: Path, count: int, width: int = 160, height: int = 128) -> List[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(count):
            p = folder / f"photo{i:03d}.png"
            limn.save_image(str(p), make_photo(width, height, seed=i))
            paths.append(p)
        return paths
    return write


@pytest.fixture(scope="session")
def limn_cmd() -> Callable[..., subprocess.CompletedProcess]:
    def run(*args: Any, timeout: float = 180.0, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "limn", *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd)
    return run
