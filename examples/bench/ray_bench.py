"""Ray Serve against `limn serve` on one machine, in one script; prints Markdown for BENCHMARKS.md.

    PYTHONPATH=models python3 examples/bench/ray_bench.py [--quick] [--size 1024] [--load-size 512]
        [--rounds 3] [--iters 3] [--requests 16] [--clients 4]

Needs ray (pip install 'limn[ray]') and root: it runs itself in a network namespace holding only
loopback (``unshare --net``), where it starts a one-node Ray cluster (``ray start --head``, 5
logical CPUs: every configuration below is deployed at once and measured one at a time).

The model is DCT-Net's architecture with random weights (seed 0; speed is that of the real
weights), fp32, device cpu; images are scikit-image's astronaut resized to each size, sent as PNG
to ``POST /v1/cartoonize`` (multipart, max_side=0, PNG back); every answer is checked against the
direct call.

Configurations:
- ``limn serve``: one process, --concurrency 1, LibTorch's default threads (the machine's cores).
- Ray 1x1: one replica, 1 CPU (Ray sets OMP_NUM_THREADS=1: one thread).
- Ray 2x1: two replicas of 1 CPU each.
- Ray 1x2: one replica of 2 CPUs (two threads), the same work as ``limn serve`` behind Ray's proxy.

0. Batching, its upper bound: the library's own batched call, ``Model.run_batch`` of 4 images at
   --load-size, against 4 ``Model.run`` calls, alternating, medians over --rounds x 2. A Ray Serve
   ``@serve.batch`` into run_batch can gain at most this (it adds its own wait for a batch to fill).
1. Overhead: one request at a time at --size (keep-alive client), ``limn serve`` against Ray 1x2,
   alternating request by request (the order rotating each round); medians over all rounds;
   overhead % = Ray / limn serve - 1.
2. Throughput: --requests requests from --clients concurrent clients at --load-size, against each
   configuration, the configurations alternating within each round; requests/s is the median
   over rounds, and the ratio is against ``limn serve``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))


def _isolated() -> bool:
    return sorted(name for _, name in socket.if_nameindex()) == ["lo"]


if __name__ == "__main__" and not _isolated():
    # Ray would use the machine's external address: run in a namespace where only loopback exists.
    if shutil.which("unshare") is None:
        sys.exit("ray_bench.py: needs unshare (util-linux) to run in a network namespace of its own")
    os.execvp("unshare", ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
                          sys.executable, *sys.argv])

sys.path.insert(0, HERE)
os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")

import httpx  # noqa: E402
import numpy as np  # noqa: E402

import limn  # noqa: E402
import ray  # noqa: E402
import serve_bench as sb  # noqa: E402  (machine line, servers, bodies, load runs)
import torch  # noqa: E402
from limn.ray import build_app  # noqa: E402
from limn.serve import ServeConfig  # noqa: E402
from limn_models import export  # noqa: E402
from ray import serve  # noqa: E402

RAY_CONFIGS = {"Ray 1x1": (1, 1.0), "Ray 2x1": (2, 1.0), "Ray 1x2": (1, 2.0)}  # replicas, CPUs each


def start_cluster(tmp: str) -> subprocess.Popen:
    port = sb.free_port()
    log = open(os.path.join(tmp, "ray-head.log"), "w")
    head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                             f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=5", "--num-gpus=0",
                             "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={tempfile.mkdtemp(prefix='rb-', dir='/tmp')}"],
                            stdout=log, stderr=subprocess.STDOUT)
    end = time.monotonic() + 120
    while True:
        try:
            ray.init(address=f"127.0.0.1:{port}", log_to_driver=False, logging_level="WARNING")
            return head
        except (ConnectionError, RuntimeError):
            if time.monotonic() > end or head.poll() is not None:
                raise RuntimeError("the Ray head node did not start")
            time.sleep(0.5)


def timed(client: httpx.Client, url: str, body: sb.Body) -> float:
    t0 = time.perf_counter()
    sb.post(client, url, body)
    return time.perf_counter() - t0


def overhead(urls: Dict[str, str], side: int, rounds: int, iters: int, check) -> Dict[str, float]:
    body = sb.multipart_body(sb.png_bytes(sb.astronaut(side)), {"max_side": "0", "format": "png"})
    urls = {n: u + "/v1/cartoonize" for n, u in urls.items()}
    names = list(urls)
    times: Dict[str, List[float]] = {n: [] for n in names}
    with httpx.Client(timeout=600) as client:
        for n in names:  # warm each path (connection, first-call allocations)
            assert check(sb.post(client, urls[n], body).content), n
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for _ in range(iters):
                for n in order:
                    times[n].append(timed(client, urls[n], body))
    return {n: statistics.median(v) for n, v in times.items()}


def batching(model: limn.Model, side: int, repeats: int) -> Dict[str, float]:
    """Median seconds of run_batch(4 images) and of 4 run() calls, alternating, on a worker thread."""
    images = [sb.astronaut(side) for _ in range(4)]

    def one_by_one() -> None:
        for img in images:
            model.run(img)

    def batched() -> None:
        model.run_batch(images)

    times: Dict[str, List[float]] = {"4 x run": [], "run_batch(4)": []}
    with ThreadPoolExecutor(1) as pool:
        pool.submit(batched).result()  # warm both shapes
        pool.submit(one_by_one).result()
        for r in range(repeats):
            for name, fn in (("4 x run", one_by_one), ("run_batch(4)", batched))[::1 if r % 2 else -1]:
                t0 = time.perf_counter()
                pool.submit(fn).result()
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=1024, help="side of the overhead images")
    p.add_argument("--load-size", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=3, help="requests per configuration per round (overhead)")
    p.add_argument("--requests", type=int, default=16, help="requests per load run")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="a short smoke run (256x256, one round)")
    args = p.parse_args()
    if args.quick:
        args.size, args.load_size, args.rounds, args.iters, args.requests, args.clients = 256, 256, 1, 1, 4, 2
    threads = torch.get_num_threads()
    t_start, load_start = time.monotonic(), sb.loadavg()
    print(sb.machine_line(threads) + f"; ray {ray.__version__}")
    print(f"Command: PYTHONPATH=models python3 examples/bench/ray_bench.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"Settings: overhead at {args.size}x{args.size}, {args.rounds} rounds x {args.iters}; load: "
          f"{args.requests} requests x {args.clients} clients at {args.load_size}x{args.load_size}; fp32, cpu; "
          "one-node Ray cluster in a loopback-only network namespace, proxy on the head node")
    sys.stdout.flush()

    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        model_path = os.path.join(tmp, f"{sb.MODEL_NAME}.pt")
        export.export_dctnet_random(model_path, seed=0)
        model = limn.Model(model_path, device="cpu", precision="fp32")
        head = start_cluster(tmp)
        local = sb.start_limn(model_path, 1, tmp)
        try:
            port = sb.free_port()
            serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
            config = ServeConfig(models=[model_path], device="cpu", precision="fp32", concurrency=1, queue=64)
            for name, (replicas, cpus) in RAY_CONFIGS.items():
                route = "/" + name.replace(" ", "").lower()
                serve.run(build_app(config, str(replicas), cpus_per_replica=cpus), name=route[1:],
                          route_prefix=route)
            local.wait_ready(time.monotonic() + 300)
            urls = {"limn serve": local.url}
            urls.update({n: f"http://127.0.0.1:{port}/" + n.replace(" ", "").lower() for n in RAY_CONFIGS})
            print(f"servers ready ({time.monotonic() - t_start:.0f} s)", file=sys.stderr, flush=True)

            def reference(side: int) -> bytes:
                with ThreadPoolExecutor(1) as pool:
                    out = pool.submit(model.cartoonize, sb.astronaut(side), max_side=0).result()
                return limn.encode_image(out, "png")

            batch = batching(model, args.load_size, max(2, args.rounds * 2))
            ref = reference(args.size)
            med = overhead({k: urls[k] for k in ("limn serve", "Ray 1x2")}, args.size, args.rounds, args.iters,
                           lambda data: data == ref)
            load_ref = reference(args.load_size)
            body = sb.multipart_body(sb.png_bytes(sb.astronaut(args.load_size)), {"max_side": "0", "format": "png"})
            names = ["limn serve", *RAY_CONFIGS]
            rates: Dict[str, List[float]] = {n: [] for n in names}
            lat: Dict[str, List[float]] = {n: [] for n in names}
            for r in range(args.rounds):
                for n in names[r % len(names):] + names[:r % len(names)]:
                    wall, ms, wrong = sb.load_run(urls[n] + "/v1/cartoonize", body, args.requests, args.clients,
                                                  lambda data: data == load_ref)
                    if wrong:
                        raise RuntimeError(f"{n}: {wrong} answers differ from the direct call")
                    rates[n].append(args.requests / wall)
                    lat[n] += ms
        finally:
            local.stop()
            serve.shutdown()
            ray.shutdown()
            head.send_signal(signal.SIGTERM)
            try:
                head.wait(60)
            except subprocess.TimeoutExpired:
                head.kill()

    base = med["limn serve"]
    print(f"\n**Overhead at {args.size}x{args.size}** (one request at a time, median of "
          f"{args.rounds * args.iters}):\n")
    print("| server | median | vs limn serve |")
    print("| --- | ---: | ---: |")
    for n, v in med.items():
        print(f"| {n} ({'2 threads' if n != 'limn serve' else f'{threads} threads'}) | {v * 1e3:.0f} ms | "
              f"{(v / base - 1) * 100:+.1f} % |")
    print(f"\n**Batching's upper bound at {args.load_size}x{args.load_size}** (the library alone, 4 images, "
          f"median of {max(2, args.rounds * 2)}):\n")
    print("| call | seconds | per image | vs one by one |")
    print("| --- | ---: | ---: | ---: |")
    for n, v in batch.items():
        print(f"| {n} | {v:.2f} | {v / 4 * 1e3:.0f} ms | {v / batch['4 x run']:.2f}x |")
    top = statistics.median(rates["limn serve"])
    print(f"\n**Throughput at {args.load_size}x{args.load_size}** ({args.requests} requests x {args.clients} "
          f"clients, median of {args.rounds} rounds):\n")
    print("| configuration | requests/s | vs limn serve | p50 | p99 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    labels = {"limn serve": f"limn serve, {threads} threads", "Ray 1x1": "Ray, 1 replica x 1 thread",
              "Ray 2x1": "Ray, 2 replicas x 1 thread", "Ray 1x2": "Ray, 1 replica x 2 threads"}
    for n in names:
        rate = statistics.median(rates[n])
        print(f"| {labels[n]} | {rate:.2f} | {rate / top:.2f}x | {np.percentile(lat[n], 50):.0f} ms | "
              f"{np.percentile(lat[n], 99):.0f} ms |")
    print(f"\n- load average (1 min) at start {load_start}, at end {sb.loadavg()}; total run time "
          f"{time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
