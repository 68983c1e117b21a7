"""The `limn serve` app as a Ray Serve application, on the two-node cluster (loopback only).

``limn serve --ray --address ADDR`` deploys two replicas, one per node; their answers must equal
the library's direct call byte for byte, both nodes must answer, and when the worker node dies in
the middle of a load, Serve keeps answering: only requests in flight there fail, and the client's
retry gets them through.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

import numpy as np
import pytest

from conftest import HOST, make_photo

httpx = pytest.importorskip("httpx")

import limn  # noqa: E402
from limn.serve import ServeConfig  # noqa: E402

serve = pytest.importorskip("ray.serve")


def _png(image: np.ndarray) -> bytes:
    return limn.encode_image(image, "png")


def _wait_ready(url: str, proc: Optional[subprocess.Popen] = None, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} was not ready in {timeout:.0f}s")


def _wait_replicas(app: str, count: int, timeout: float = 120.0) -> None:
    """Until the application runs ``count`` replicas (/readyz answers as soon as one does)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = serve.status().applications.get(app)
        if status is not None:
            running = sum(d.replica_states.get("RUNNING", 0) for d in status.deployments.values())
            if running == count:
                return
        time.sleep(0.5)
    raise AssertionError(f"application {app} did not run {count} replicas in {timeout:.0f}s")


@pytest.fixture(scope="module")
def http_port(cluster, free_port) -> int:
    """Serve's HTTP proxy on the head node only, at a free port of 127.0.0.1."""
    port = free_port()
    serve.start(proxy_location="HeadOnly", http_options={"host": HOST, "port": port})
    return port


class RayServer:
    def __init__(self, proc: subprocess.Popen, url: str, log: str) -> None:
        self.proc, self.url, self.log = proc, url, log

    def output(self) -> str:
        with open(self.log) as f:
            return f.read()


@pytest.fixture(scope="module")
def ray_server(cluster, models, http_port, tmp_path_factory) -> RayServer:
    """`limn serve --ray --address ADDR --replicas 2` with the tiny U-Net, one replica per node."""
    log = str(tmp_path_factory.mktemp("ray-serve") / "server.log")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "limn", "serve", "--ray", "--address", cluster.address,
                                 "--replicas", "2", "--cpus-per-replica", "1", "--port", str(http_port),
                                 "--device", "cpu", "--model", models["unet"], "--grace", "5"],
                                stdout=out, stderr=subprocess.STDOUT)
    server = RayServer(proc, f"http://{HOST}:{http_port}", log)
    try:
        _wait_ready(server.url, proc)
        _wait_replicas("limn", 2)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _post(url: str, body: bytes, timeout: float = 60.0) -> httpx.Response:
    return httpx.post(url + "/v1/cartoonize", content=body, headers={"content-type": "image/png"}, timeout=timeout)


def test_every_address_ray_uses_is_loopback(cluster):
    import socket

    import ray

    assert sorted(name for _, name in socket.if_nameindex()) == ["lo"]
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    assert {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}


def test_replicas_on_both_nodes_answer_as_the_direct_call(cluster, models, ray_server):
    images = [make_photo(160, 128, seed=s) for s in range(4)]
    direct = limn.Model(models["unet"], "cpu")
    expected = [_png(direct.cartoonize(img)) for img in images]
    bodies = [_png(img) for img in images]

    def one(k: int) -> httpx.Response:
        return _post(ray_server.url, bodies[k % 4])

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(one, range(24)))
    assert [r.status_code for r in responses] == [200] * 24
    for k, r in enumerate(responses):
        assert r.content == expected[k % 4]
    assert {r.headers["x-limn-node"] for r in responses} == set(cluster.node_ids())
    assert len({r.headers["x-limn-replica"] for r in responses}) == 2


def test_jobs_are_off_behind_ray_and_the_page_is_told(ray_server):
    r = httpx.post(ray_server.url + "/v1/jobs", content=_png(make_photo(64, 64)),
                   headers={"content-type": "image/png"}, timeout=30)
    assert r.status_code == 501
    assert r.json()["error"]["code"] == "jobs_unavailable"
    assert httpx.get(ray_server.url + "/v1/models", timeout=30).json()["jobs"] is False


def test_a_full_ray_queue_answers_429_with_retry_after(cluster, models, http_port):
    from limn.ray import build_app

    config = ServeConfig(models=[models["cartoon"]], device="cpu", queue=1, concurrency=1)
    serve.run(build_app(config, "1", max_ongoing=1), name="busy", route_prefix="/busy")
    try:
        body = _png(make_photo(1536, 1536))
        url = f"http://{HOST}:{http_port}/busy"
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: _post(url, body, timeout=120), range(8)))
        codes = sorted(r.status_code for r in responses)
        assert set(codes) <= {200, 429}, codes
        assert codes.count(200) >= 1 and codes.count(429) >= 1, codes
        refused = [r for r in responses if r.status_code == 429]
        assert all(r.headers.get("retry-after") for r in refused)
    finally:
        serve.delete("busy")


def test_the_replica_deadline_answers_504_through_ray(cluster, models, http_port):
    from limn.ray import build_app

    config = ServeConfig(models=[models["cartoon"]], device="cpu", timeout=0.2)
    serve.run(build_app(config, "1"), name="slow", route_prefix="/slow")
    try:
        r = _post(f"http://{HOST}:{http_port}/slow", _png(make_photo(2048, 2048)), timeout=120)
        assert r.status_code == 504, r.text
        assert r.json()["error"]["code"] == "timeout"
        small = make_photo(64, 64)
        # The replica goes on serving once the cancelled call has finished its step (the whole image,
        # for a one-step model); until then a request waits for the slot and may time out too.
        end = time.monotonic() + 90
        while True:
            r = _post(f"http://{HOST}:{http_port}/slow", _png(small), timeout=120)
            if r.status_code != 504 or time.monotonic() > end:
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        assert r.content == _png(limn.Model(models["cartoon"], "cpu").cartoonize(small))
    finally:
        serve.delete("slow")


def test_the_serve_run_builder_and_its_options(cluster, models, http_port):
    from limn.ray import app

    scaled = app({"model": [models["unet"]], "device": "cpu", "replicas": "auto", "max_replicas": 3,
                  "queue": 4, "concurrency": 2})
    config = scaled._bound_deployment._deployment_config
    assert config.autoscaling_config.min_replicas == 1 and config.autoscaling_config.max_replicas == 3
    assert config.autoscaling_config.target_ongoing_requests == 2
    assert config.max_queued_requests == 4 and config.max_ongoing_requests == 4
    assert config.backpressure_config.status_code == 429
    actor = scaled._bound_deployment.ray_actor_options
    assert actor["num_cpus"] == 1 and actor["num_gpus"] == 0
    assert actor["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "1"
    with pytest.raises(ValueError, match="belong to the cluster"):
        app({"port": 9000})
    with pytest.raises(ValueError, match="--replicas"):
        app({"replicas": "many"})
    with pytest.raises(ValueError, match="unrecognized arguments: --colour"):
        app({"colour": "blue"})

    # Ray's own command: `serve run limn.ray:app key=value ...`.
    ran = subprocess.run([sys.executable, "-c", "from ray.serve.scripts import cli; cli()", "run",
                          "--address", cluster.address, "--name", "built", "--route-prefix", "/built",
                          "--non-blocking", "limn.ray:app", f"model={models['unet']}", "device=cpu", "replicas=1"],
                         capture_output=True, text=True, timeout=180)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    try:
        url = f"http://{HOST}:{http_port}/built"
        _wait_ready(url)
        img = make_photo(96, 64)
        r = _post(url, _png(img))
        assert r.status_code == 200
        assert r.content == _png(limn.Model(models["unet"], "cpu").cartoonize(img))
    finally:
        serve.delete("built")


def test_serve_keeps_answering_when_a_worker_node_dies(cluster, models, ray_server):
    """4 clients send requests (each one at a time) until 10 have been answered after Ray marks
    the killed node dead. A replica takes at most 2 at once (max_ongoing_requests), so the proxy,
    which prefers the replica on its own node, must send some to the worker node, and at most 2
    can fail there; each failure is retried and must succeed."""
    img = make_photo(256, 192, seed=7)
    body, expected = _png(img), _png(limn.Model(models["unet"], "cpu").cartoonize(img))
    worker = cluster.ensure_worker()
    done: List[tuple] = []
    failures: List[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    # A bound on the requests, whatever happens. Each client pauses 0.1 s after an answer, so the
    # bound lasts well past the minute Ray may take to mark the killed node dead (400 without the
    # pause ran out before that once the network ran in bf16: nothing was left to send after it).
    counter = iter(range(3000))

    def client() -> None:
        while not stop.is_set():
            with lock:
                k = next(counter, None)
            if k is None:
                return
            for attempt in range(4):
                try:
                    r = _post(ray_server.url, body, timeout=60)
                    ok, why = r.status_code == 200, f"{r.status_code} {r.text[:120]}"
                except httpx.HTTPError as e:
                    ok, why = False, f"{type(e).__name__}: {e}"
                if ok:
                    assert r.content == expected
                    with lock:
                        done.append((k, r.headers["x-limn-node"], time.monotonic()))
                    time.sleep(0.1)
                    break
                with lock:
                    failures.append(why)
                time.sleep(0.5)
            else:
                with lock:
                    failures.append(f"request {k}: still failing after 4 attempts")

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        end = time.monotonic() + 90
        while ((len(done) < 10 or not any(node == worker for _, node, _ in done))
               and time.monotonic() < end):
            time.sleep(0.05)
        assert any(node == worker for _, node, _ in done), "the worker node served nothing before the kill"
        cluster.kill_worker()  # returns once Ray has marked the node dead
        dead = time.monotonic()
        end = dead + 120
        while sum(1 for _, _, at in done if at > dead) < 10 and time.monotonic() < end:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert not any(t.is_alive() for t in threads)
    started = max(k for k, _, _ in done) + 1
    assert sorted(k for k, _, _ in done) == list(range(started)), failures  # none lost
    assert len(failures) <= 2, failures
    assert not any("after 4 attempts" in f for f in failures), failures
    after = [node for _, node, at in done if at > dead]
    assert len(after) >= 10 and worker not in after
    # The replacement replica comes up on the head node; the worker node comes back for later tests.
    cluster.ensure_worker()


def test_limn_serve_on_ray_stops_cleanly_on_sigterm(ray_server, http_port):
    """SIGTERM: the application is deleted (its replicas drain), and since no other Serve application
    is left on the cluster, Serve's proxy is shut down too."""
    ray_server.proc.send_signal(signal.SIGTERM)
    assert ray_server.proc.wait(90) == 0, ray_server.output()
    assert "stopped" in ray_server.output()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{HOST}:{http_port}/readyz", timeout=10)


def test_limn_serve_on_ray_says_which_model_did_not_load(cluster, free_port, tmp_path):
    """A model the replicas cannot load: exit 1 with the library's own error, and the half-deployed
    application deleted (after the server above is gone: it is deployed under the same name)."""
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    port = free_port()
    run = subprocess.run([sys.executable, "-m", "limn", "serve", "--ray", "--address", cluster.address,
                          "--port", str(port), "--device", "cpu", "--model", str(bad)],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 1, run.stderr
    assert "did not start" in run.stderr
    assert f"InvalidModelError: model '{bad}'" in run.stderr
    with pytest.raises(httpx.ConnectError):  # deleted, and Serve (which held nothing else) shut down
        httpx.get(f"http://{HOST}:{port}/readyz", timeout=10)
