"""Times `limn serve` against the direct Python call on the same model, and against a seed-style
FastAPI app around eager PyTorch, in one script, and prints Markdown tables for BENCHMARKS.md.

    PYTHONPATH=models python3 examples/bench/serve_bench.py [--quick]
        [--sizes 512,1024] [--rounds 3] [--iters 3] [--requests 24] [--clients 4] [--load-size 512]

The model is DCT-Net's architecture with random weights (seed 0; speed is that of the real
weights), exported to a limn file in a temporary folder; the peer builds the same network in
eager PyTorch. Images: scikit-image's astronaut resized (PIL, bicubic) to each size, sent as PNG
(encoded once with PIL) or as UINT8 [H,W,3] tensors. Device cpu, everything on 127.0.0.1; limn in
fp32 unless --precision says otherwise (bf16 where the CPU has native bf16), the peer in fp32.

1. Server overhead (`limn serve --concurrency 1`, one client at a time, keep-alive httpx client):
   - app API: `POST /v1/cartoonize`, multipart `image` (PNG) with max_side=0, PNG back; against
     the direct call doing the same job: limn.load_image(png bytes) -> Model.cartoonize(max_side=0)
     -> limn.encode_image(png).
   - OIP binary: `POST /v2/models/{name}/infer` with Triton's binary tensor extension (UINT8
     [H,W,3] in and out); OIP JSON: the same with JSON tensors both ways. Both against
     Model.cartoonize(array). The request bodies are built once, before timing, by the unmodified
     tritonclient.http (InferenceServerClient.generate_request_body) and sent with httpx, so the
     client's JSON encoding is not counted; the timed span ends when the whole response body has
     arrived (it is parsed, and checked against the direct call, outside the timed span).
   The direct calls run on a worker thread, as the server runs them. The variants alternate call
   by call, the order rotating each round, so drift on a shared machine hits all. Figures are
   medians over all rounds; overhead % = server / direct - 1.
   "server compute" is the library's time inside the server (the delta of limn_compute_seconds
   in /metrics, read around each request); "outside compute" is a request's time less its compute:
   HTTP, parsing, decoding, encoding and transfer.
2. Throughput and latency under load at --load-size: --requests requests from --clients
   concurrent clients (each its own keep-alive connection) against `limn serve --concurrency 1`
   and `--concurrency 2`.
3. The peer: what the seeds' users run, a plain FastAPI app (a string module below, started with
   uvicorn in a subprocess): `POST /cartoonize` with an uploaded file, PIL decode, torch tensor,
   eager model under torch.inference_mode() (channels-last, as compare_eager.py times eager), PIL
   PNG encode, a threading semaphore of limn's concurrency around the model call, and
   torch.set_num_threads(the thread count limn uses). Same images, same N, same clients; the
   configurations alternate within each round. The peer gets the environment this script was
   started with (limn's import sets THP_MEM_ALLOC_ENABLE=1 for itself; the peer does not inherit that).

Throughput is requests / wall time of a run (median over rounds); p50 and p99 pool the request
latencies of all rounds (with few requests p99 is close to the maximum).

Options: --sizes (comma-separated sides for part 1), --rounds, --iters (calls per variant per
round), --requests (N per load run), --clients, --load-size, --quick (a short smoke run: 256,
one round, a few requests), --threads (intra-op threads of the peer; default: what limn uses).
--sizes "" skips part 1. The full run takes about 4 minutes on an idle 2-core machine (7-11 on a
busy one).
"""

import os
import sys

# What the caller gave us, before `import limn` adds THP_MEM_ALLOC_ENABLE for itself: the seed
# app is started with this environment.
_BASE_ENV = dict(os.environ)

import argparse  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Callable, Dict, List, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402

import limn  # noqa: E402  (before torch, as the server imports it)
import torch  # noqa: E402

import fastapi  # noqa: E402
import httpx  # noqa: E402
import tritonclient.http as triton  # noqa: E402
import uvicorn  # noqa: E402
from PIL import Image  # noqa: E402

from limn_models import export  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_NAME = "dctnet"  # the limn file is dctnet.pt: its loaded name in the server is its stem

PEER_APP = r'''
"""A seed-style web service: FastAPI around DCT-Net in eager PyTorch (what the seeds' users run)."""
import io
import os
import threading

import numpy as np
import torch
from fastapi import FastAPI, File, UploadFile
from fastapi.responses import Response
from PIL import Image

from limn_models import dctnet

torch.set_num_threads(int(os.environ["PEER_THREADS"]))
net = dctnet.DCTNetRGB(dctnet.dctnet_random_init(0)).eval().to(memory_format=torch.channels_last)
slots = threading.Semaphore(int(os.environ["PEER_CONCURRENCY"]))
app = FastAPI()


def run(photo: np.ndarray) -> np.ndarray:
    with slots, torch.inference_mode():
        x = torch.from_numpy(photo).permute(2, 0, 1)[None].float().div_(255.0)
        y = net(x.contiguous(memory_format=torch.channels_last))
        y = y.clamp_(0, 1).mul_(255).round_().to(torch.uint8)[0].permute(1, 2, 0)
        return y.contiguous().numpy()


run(np.zeros((256, 256, 3), np.uint8))  # warm-up, as a seed app would at start


@app.get("/readyz")
def readyz():
    return {"ready": True, "threads": torch.get_num_threads()}


@app.post("/cartoonize")
def cartoonize(image: UploadFile = File(...)):
    photo = np.asarray(Image.open(image.file).convert("RGB"))
    out = run(photo)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG")
    return Response(buf.getvalue(), media_type="image/png")
'''


# ---- Machine -----------------------------------------------------------------------------------


def machine_line(threads: int) -> str:
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == (platform.processor() or "unknown CPU"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    speed = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                         "amx_int8") if f in flags]
    no_amx = "" if "amx_tile" in flags else ", no AMX"
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    try:
        commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Machine: {model}, {os.cpu_count()} cores{mem}, {' '.join(speed) or 'no AVX2'}{no_amx}; "
            f"torch {torch.__version__}, limn {limn.__version__} (commit {commit}), {threads} intra-op "
            f"threads; python {platform.python_version()}, fastapi {fastapi.__version__}, uvicorn "
            f"{uvicorn.__version__}, httpx {httpx.__version__}, tritonclient "
            f"{getattr(triton, '__version__', None) or _dist_version('tritonclient')}; {date}")


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return "?"


def _dist_version(name: str) -> str:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001
        return "?"


# ---- Servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server in a subprocess on 127.0.0.1, its output in a log file; ready when /readyz is 200."""

    def __init__(self, label: str, cmd: List[str], env: Dict[str, str], cwd: str, log_dir: str,
                 port: int) -> None:
        self.label, self.port = label, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(log_dir, label.replace(" ", "_").replace(",", "") + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     stdin=subprocess.DEVNULL)

    def tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_ready(self, deadline: float) -> None:
        with httpx.Client(timeout=5.0) as c:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.label} exited with {self.proc.returncode}:\n{self.tail()}")
                try:
                    if c.get(self.url + "/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.label} not ready in time:\n{self.tail()}")
                time.sleep(0.25)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self.log.close()


def start_limn(model_path: str, concurrency: int, log_dir: str, precision: str = "fp32") -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "limn", "serve", "--host", "127.0.0.1", "--port", str(port), "--model",
           model_path, "--device", "cpu", "--precision", precision, "--concurrency", str(concurrency),
           "--grace", "5", "--log-level", "warning"]
    return Server(f"limn serve c{concurrency}", cmd, dict(_BASE_ENV), ROOT, log_dir, port)


def start_peer(app_dir: str, concurrency: int, threads: int, log_dir: str) -> Server:
    port = free_port()
    env = dict(_BASE_ENV)
    models = os.path.join(ROOT, "models")
    env["PYTHONPATH"] = os.pathsep.join([app_dir, models] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PEER_THREADS"], env["PEER_CONCURRENCY"] = str(threads), str(concurrency)
    cmd = [sys.executable, "-m", "uvicorn", "seed_app:app", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    return Server(f"peer c{concurrency}", cmd, env, app_dir, log_dir, port)


def compute_seconds(client: httpx.Client, server: Server) -> Tuple[float, float]:
    """(sum, count) of limn_compute_seconds over all labels, from the server's /metrics."""
    total, count = 0.0, 0.0
    for line in client.get(server.url + "/metrics").text.splitlines():
        if line.startswith("limn_compute_seconds_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("limn_compute_seconds_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


# ---- Requests ----------------------------------------------------------------------------------


def astronaut(side: int) -> np.ndarray:
    from skimage import data
    return np.asarray(Image.fromarray(data.astronaut()).convert("RGB").resize((side, side), Image.BICUBIC))


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


class Body:
    """A request body built once: bytes and headers."""

    def __init__(self, content: bytes, headers: Dict[str, str]) -> None:
        self.content, self.headers = content, headers


def multipart_body(png: bytes, fields: Dict[str, str]) -> Body:
    request = httpx.Request("POST", "http://127.0.0.1/", files={"image": ("astronaut.png", png, "image/png")},
                            data=fields)
    content = request.read()
    return Body(content, {"Content-Type": request.headers["Content-Type"]})


def oip_body(image: np.ndarray, binary: bool) -> Body:
    """The infer request tritonclient.http would send (built by tritonclient itself)."""
    inp = triton.InferInput("image", list(image.shape), "UINT8")
    inp.set_data_from_numpy(image, binary_data=binary)
    out = triton.InferRequestedOutput("image", binary_data=binary)
    content, json_size = triton.InferenceServerClient.generate_request_body([inp], outputs=[out],
                                                                           parameters={"max_side": 0})
    headers = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
    return Body(content if isinstance(content, bytes) else content.encode(), headers)


def oip_result(response: httpx.Response) -> np.ndarray:
    length = response.headers.get("Inference-Header-Content-Length")
    result = triton.InferenceServerClient.parse_response_body(
        response.content, header_length=int(length) if length is not None else None)
    return result.as_numpy("image")


def post(client: httpx.Client, url: str, body: Body) -> httpx.Response:
    response = client.post(url, content=body.content, headers=body.headers)
    if response.status_code != 200:
        raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:300]}")
    return response


# ---- Part 1: overhead --------------------------------------------------------------------------

#: each server API and the direct call doing the same job
PAIRS = (("app", "direct png"), ("oip binary", "direct array"), ("oip json", "direct array"))



def overhead(model: limn.Model, server: Server, side: int, rounds: int, iters: int,
             notes: List[str]) -> List[Dict[str, object]]:
    image = astronaut(side)
    png = png_bytes(image)
    app_body = multipart_body(png, {"max_side": "0", "format": "png"})
    bin_body, json_body = oip_body(image, True), oip_body(image, False)
    app_url = server.url + "/v1/cartoonize"
    infer_url = f"{server.url}/v2/models/{MODEL_NAME}/infer"
    client = httpx.Client(timeout=600.0)
    # The direct calls run on one worker thread, as the server runs them (and as a Python user's
    # thread pool would): on this machine, calls from the main thread cost about twice the CPU
    # until some call has run on another thread (seen with limn 0.1.0; not what is measured here).
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="direct")
    try:
        codec: List[float] = []  # ms of the direct PNG call outside the library: load_image + encode_image

        def png_job() -> bytes:
            t0 = time.perf_counter()
            photo = limn.load_image(memoryview(png))
            t1 = time.perf_counter()
            result = model.cartoonize(photo, max_side=0)
            t2 = time.perf_counter()
            data = limn.encode_image(result, "png")
            codec.append((t1 - t0 + time.perf_counter() - t2) * 1e3)
            return data

        def direct_png() -> object:
            return worker.submit(png_job).result()

        def direct_array() -> object:
            return worker.submit(lambda: model.cartoonize(image, max_side=0)).result()

        variants: Dict[str, Callable[[], object]] = {
            "direct png": direct_png,
            "direct array": direct_array,
            "app": lambda: post(client, app_url, app_body),
            "oip binary": lambda: post(client, infer_url, bin_body),
            "oip json": lambda: post(client, infer_url, json_body),
        }
        on_server = {"app", "oip binary", "oip json"}

        # Warm-up (one call each) and the check that every path gives the direct call's pixels.
        reference = direct_array()
        assert isinstance(reference, np.ndarray)
        same = {
            "direct png": np.array_equal(limn.load_image(memoryview(direct_png())), reference),
            "app": np.array_equal(limn.load_image(memoryview(variants["app"]().content)), reference),
            "oip binary": np.array_equal(oip_result(variants["oip binary"]()), reference),
            "oip json": np.array_equal(oip_result(variants["oip json"]()), reference),
        }
        notes.append(f"{side}x{side}: identical to the direct call: "
                     + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items())
                     + f"; bodies: PNG {len(png)} B, multipart {len(app_body.content)} B, OIP binary "
                     f"{len(bin_body.content)} B, OIP JSON {len(json_body.content)} B")

        times: Dict[str, List[float]] = {k: [] for k in variants}
        per_round: Dict[str, List[float]] = {k: [] for k in variants}
        compute: Dict[str, List[float]] = {k: [0.0, 0.0] for k in on_server}
        pairs: Dict[str, List[float]] = {k: [] for k in on_server}  # server / direct, same iteration
        outside: Dict[str, List[float]] = {k: [] for k in on_server}  # ms of a request outside the library
        names = list(variants)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            this_round: Dict[str, List[float]] = {k: [] for k in variants}
            for _ in range(iters):
                call: Dict[str, float] = {}
                for name in order:
                    before = compute_seconds(client, server) if name in on_server else None
                    t0 = time.perf_counter()
                    variants[name]()
                    ms = (time.perf_counter() - t0) * 1e3
                    if before is not None:
                        after = compute_seconds(client, server)
                        compute[name][0] += after[0] - before[0]
                        compute[name][1] += after[1] - before[1]
                        outside[name].append(ms - (after[0] - before[0]) * 1e3)
                    times[name].append(ms)
                    this_round[name].append(ms)
                    call[name] = ms
                for name, direct in PAIRS:
                    pairs[name].append(call[name] / call[direct])
            for name in names:
                per_round[name].append(statistics.median(this_round[name]))
            print(f"  {side}x{side} round {r + 1}/{rounds}: "
                  + ", ".join(f"{k} {statistics.median(this_round[k]):.0f}" for k in names) + " ms",
                  file=sys.stderr, flush=True)
    finally:
        client.close()
        worker.shutdown()

    rows = []
    for name, direct in PAIRS:
        s, d = statistics.median(times[name]), statistics.median(times[direct])
        ratios = [a / b for a, b in zip(per_round[name], per_round[direct])]
        c_sum, c_n = compute[name]
        rows.append({"size": side, "api": name, "direct_name": direct, "direct": d, "server": s,
                     "overhead": s / d - 1, "lo": min(ratios) - 1, "hi": max(ratios) - 1,
                     "paired": statistics.median(pairs[name]) - 1, "plo": pct(pairs[name], 25) - 1,
                     "phi": pct(pairs[name], 75) - 1,
                     "compute": c_sum / c_n * 1e3 if c_n else float("nan"), "n": len(times[name]),
                     "outside": statistics.median(outside[name]),
                     "d_outside": statistics.median(codec) if direct == "direct png" else 0.0})
    return rows


# ---- Parts 2 and 3: load -----------------------------------------------------------------------


def load_run(url: str, body: Body, requests: int, clients: int, check: Callable[[bytes], bool]
             ) -> Tuple[float, List[float], int]:
    """(wall seconds, latencies in ms, wrong answers) of `requests` requests from `clients` threads."""
    lock = threading.Lock()
    next_index = [0]
    latencies: List[float] = []
    wrong = [0]
    errors: List[str] = []
    conns = [httpx.Client(timeout=600.0) for _ in range(clients)]
    base = url.split("/", 3)
    ready_url = f"{base[0]}//{base[2]}/readyz"
    for c in conns:  # open each keep-alive connection before timing
        c.get(ready_url)
    barrier = threading.Barrier(clients + 1)

    def worker(c: httpx.Client) -> None:
        barrier.wait()
        while True:
            with lock:
                if next_index[0] >= requests:
                    return
                next_index[0] += 1
            t0 = time.perf_counter()
            try:
                response = c.post(url, content=body.content, headers=body.headers)
                data = response.content
            except httpx.HTTPError as e:
                with lock:
                    errors.append(repr(e))
                continue
            ms = (time.perf_counter() - t0) * 1e3
            with lock:
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                else:
                    latencies.append(ms)
                    if not check(data):
                        wrong[0] += 1

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in conns]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=1200)
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    if errors:
        raise RuntimeError(f"{url}: {len(errors)} failed requests, first: {errors[0]}")
    return wall, latencies, wrong[0]


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def load(servers: Dict[Tuple[str, int], Server], side: int, requests: int, clients: int, rounds: int,
         reference: np.ndarray, notes: List[str]) -> Dict[Tuple[str, int], Dict[str, float]]:
    png = png_bytes(astronaut(side))
    limn_body = multipart_body(png, {"max_side": "0", "format": "png"})
    peer_body = multipart_body(png, {})
    first: Dict[Tuple[str, int], bytes] = {}  # each server's warm-up answer: later answers must equal it

    def target(key: Tuple[str, int]) -> Tuple[str, Body]:
        s = servers[key]
        return (s.url + "/v1/cartoonize", limn_body) if key[0] == "limn" else (s.url + "/cartoonize", peer_body)

    # Warm-up: one request each at this size; the peer's pixels against limn's.
    for key in servers:
        url, body = target(key)
        with httpx.Client(timeout=600.0) as c:
            data = post(c, url, body).content
        first[key] = data
        if key[0] == "limn" and not np.array_equal(limn.load_image(memoryview(data)), reference):
            notes.append(f"limn c{key[1]} at {side}x{side}: the answer DIFFERS from the direct call")
        if key[0] == "peer":
            got = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)
            diff = np.abs(got - reference.astype(np.int16))
            mse = float((diff.astype(np.float64) ** 2).mean())
            psnr = "identical" if mse == 0 else f"PSNR {10 * np.log10(255.0 ** 2 / mse):.1f} dB"
            notes.append(f"peer c{key[1]} vs limn at {side}x{side}: max |diff| {diff.max()}, "
                         f"{(diff > 0).mean() * 100:.2f} % of values differ, {psnr}")

    keys = list(servers)
    walls: Dict[Tuple[str, int], List[float]] = {k: [] for k in keys}
    lats: Dict[Tuple[str, int], List[float]] = {k: [] for k in keys}
    wrong: Dict[Tuple[str, int], int] = {k: 0 for k in keys}
    for r in range(rounds):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for key in order:
            url, body = target(key)
            # Every answer must be byte for byte the server's warm-up answer (a cheap check on the client,
            # the same for both servers; the warm-up answers were checked against the direct call above).
            wall, lat, bad = load_run(url, body, requests, clients, first[key].__eq__)
            walls[key].append(wall)
            lats[key].extend(lat)
            wrong[key] += bad
            print(f"  load round {r + 1}/{rounds}: {key[0]} c{key[1]}: {requests / wall:.2f} req/s, "
                  f"max {max(lat):.0f} ms", file=sys.stderr, flush=True)
    out = {}
    for key in keys:
        tps = [requests / w for w in walls[key]]
        out[key] = {"tput": statistics.median(tps), "tputs": tps, "p50": pct(lats[key], 50),
                    "p99": pct(lats[key], 99), "max": max(lats[key]), "n": len(lats[key]), "wrong": wrong[key]}
    return out


# ---- Main --------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="512,1024", help="sides for the overhead table (comma-separated)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=3, help="calls per variant per round (overhead)")
    p.add_argument("--requests", type=int, default=24, help="requests per load run")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients in the load runs")
    p.add_argument("--load-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=0, help="peer's intra-op threads (0: what limn uses)")
    p.add_argument("--quick", action="store_true", help="a short smoke run (256x256, one round)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="limn's precision, for its servers and the direct calls (the peer stays fp32 eager)")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.iters, args.requests, args.clients, args.load_size = "256", 1, 1, 4, 2, 256
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    # limn runs on LibTorch's default intra-op pool (it sets no thread count): what torch reports here.
    threads = args.threads or torch.get_num_threads()
    t_start = time.monotonic()
    load_start = loadavg()

    print(machine_line(threads))
    print(f"Command: PYTHONPATH=models python3 examples/bench/serve_bench.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"Settings: sizes {sizes}, rounds {args.rounds}, iters {args.iters}, load: {args.requests} requests "
          f"x {args.clients} clients at {args.load_size}x{args.load_size}; device cpu, limn {args.precision}; "
          "client: httpx keep-alive, bodies pre-built (OIP bodies by tritonclient.http)")
    sys.stdout.flush()

    notes: List[str] = []
    servers: Dict[Tuple[str, int], Server] = {}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        model_path = os.path.join(tmp, f"{MODEL_NAME}.pt")
        export.export_dctnet_random(model_path, seed=0)
        with open(os.path.join(tmp, "seed_app.py"), "w") as f:
            f.write(PEER_APP)
        try:
            for c in (1, 2):
                servers[("limn", c)] = start_limn(model_path, c, tmp, args.precision)
                servers[("peer", c)] = start_peer(tmp, c, threads, tmp)
            model = limn.Model(model_path, device="cpu", precision=args.precision)
            deadline = time.monotonic() + 300
            for s in servers.values():
                s.wait_ready(deadline)
            with httpx.Client(timeout=10) as c:
                peer_threads = c.get(servers[("peer", 1)].url + "/readyz").json().get("threads")
            notes.append(f"peer intra-op threads {peer_threads}; servers up in {time.monotonic() - t_start:.0f} s")
            print(f"servers ready ({time.monotonic() - t_start:.0f} s)", file=sys.stderr, flush=True)

            rows: List[Dict[str, object]] = []
            for side in sizes:
                rows += overhead(model, servers[("limn", 1)], side, args.rounds, args.iters, notes)
            with ThreadPoolExecutor(max_workers=1) as pool:
                reference = pool.submit(model.cartoonize, astronaut(args.load_size), max_side=0).result()
            res = load(servers, args.load_size, args.requests, args.clients, args.rounds, reference, notes)
        finally:
            for s in servers.values():
                s.stop()

    report(rows, res, notes, args)
    print(f"- load average (1 min) at start {load_start}, at end {loadavg()}; total run time "
          f"{time.monotonic() - t_start:.0f} s")
    return 0


def report(rows: List[Dict[str, object]], res: Dict[Tuple[str, int], Dict[str, float]], notes: List[str],
           args: argparse.Namespace) -> None:
    """The Markdown tables and notes."""
    if rows:  # part 1 ran (--sizes not empty)
        print()
        print("### Server overhead over the direct Python call (`limn serve --concurrency 1`, one client)")
        print()
        print("| size | API | direct call | direct ms | server ms | overhead | per-round range | paired overhead "
              "[p25, p75] | server compute ms | outside compute ms, server | same, direct | outside difference / direct |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        label = {"app": "app `POST /v1/cartoonize` (PNG)", "oip binary": "OIP binary UINT8",
                 "oip json": "OIP JSON UINT8"}
        direct_label = {"direct png": "load_image + cartoonize + encode_image", "direct array": "cartoonize(array)"}
        for row in rows:
            print(f"| {row['size']}x{row['size']} | {label[row['api']]} | {direct_label[row['direct_name']]} | "
                  f"{row['direct']:.0f} | {row['server']:.0f} | {row['overhead'] * 100:+.1f} % | "
                  f"{row['lo'] * 100:+.1f} .. {row['hi'] * 100:+.1f} % | {row['paired'] * 100:+.1f} % "
                  f"[{row['plo'] * 100:+.1f}, {row['phi'] * 100:+.1f}] | {row['compute']:.0f} | {row['outside']:.0f} | "
                  f"{row['d_outside']:.0f} | {(row['outside'] - row['d_outside']) / row['direct'] * 100:+.1f} % |")
        print()
        print(f"Medians of {rows[0]['n'] if rows else 0} calls each ({args.rounds} rounds x {args.iters}); "
              "overhead = server / direct - 1 (of the medians); per-round range: that ratio from each round's "
              "medians; paired: the median of server / direct - 1 over the calls of one iteration (seconds "
              "apart); server compute: the library's time inside the server (limn_compute_seconds), mean "
              "per request; outside compute, server: the median over requests of (request ms - that request's "
              "compute ms): HTTP, parsing, decoding, encoding and transfer; same, direct: the direct call's "
              "load_image + encode_image (0 for the array call); outside difference / direct: the overhead "
              "estimated from those two, which leaves out the noise of the library's own time.")
        print()
    s = args.load_size
    print(f"### Throughput and latency under load, {s}x{s}, {args.requests} requests from {args.clients} "
          f"clients, {args.rounds} rounds")
    print()
    print("| server | concurrency | req/s | per-round req/s | p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for key in sorted(res, key=lambda k: (k[0] != "limn", k[1])):
        r = res[key]
        name = (f"limn serve (`/v1/cartoonize`, {args.precision})" if key[0] == "limn"
                else "seed app (FastAPI + eager PyTorch, fp32)")
        print(f"| {name} | {key[1]} | {r['tput']:.2f} | {' / '.join(f'{v:.2f}' for v in r['tputs'])} | "
              f"{r['p50']:.0f} | {r['p99']:.0f} | {r['max']:.0f} |")
    print()
    print("| concurrency | throughput limn / peer | per-round | p99 limn / peer |")
    print("| ---: | ---: | --- | ---: |")
    for c in (1, 2):
        a, b = res[("limn", c)], res[("peer", c)]
        per = " / ".join(f"{x / y:.2f}" for x, y in zip(a["tputs"], b["tputs"]))
        print(f"| {c} | {a['tput'] / b['tput']:.2f} | {per} | {a['p99'] / b['p99']:.2f} |")
    print()
    print("Notes:")
    for n in notes:
        print(f"- {n}")
    wrong = {f"{k[0]} c{k[1]}": v["wrong"] for k, v in res.items() if v["wrong"]}
    print(f"- wrong answers under load: {wrong or 'none'}; p50/p99 pool {res[('limn', 1)]['n']} requests per row")


if __name__ == "__main__":
    sys.exit(main())
