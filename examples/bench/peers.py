"""limn against its peers on the same weights doing the same whole job, in one process.

    pip install onnxruntime onnxscript     # benchmark-only: limn and its tests never need them
    OMP_NUM_THREADS=2 PYTHONPATH=models python3 examples/bench/peers.py --threads 2 --rounds 3

The job is what an application does with a photo: a uint8 H x W x 3 array in, a uint8 array out
(for the detector: the faces, after the score threshold and non-maximum suppression). Runners:

  limn .pt       the installed Python package with the TorchScript file, in fp32
  limn .pt2      the installed Python package with the compiled package (AOTInductor), fp32
  limn auto      the TorchScript file in precision "auto": what `limn -m NAME` and
                 limn.Model(NAME) run (bf16 on a CPU with AMX-BF16 or AVX512-BF16, else fp32)
  limn .pt bf16  the TorchScript file in bf16
  limn .pt2 bf16 a package compiled for bf16
  eager          PyTorch eager as a careful user writes it: channels-last, inference_mode
  torch.compile  the same module through torch.compile (Inductor), compiled per size
  onnxruntime    ONNX Runtime's CPU execution provider (CUDA on a GPU, when the wheel has it),
                 on the module exported with torch.onnx.export(..., dynamo=True)

Cases: DCT-Net at 512, 1024 and 2048 px (random weights, the real architecture), GPEN-BFR-512 on
one 512 px face crop (random weights, the official configuration) and RetinaFace MobileNet-0.25
on a 1024 px photo (the published weights from ../shared/data when present, else random ones of
the same architecture). Random weights run exactly as fast as the real ones.

All runners of a case run in alternating rounds (machines here are shared and noisy); each
figure is the median over all rounds. Models are exported once into --cache (the .pt2 compiles
take minutes). Prints a table of medians and ratios; --json writes them.

The header states the CPU's features, and a second table the arithmetic rate each limn runner
reached against this CPU's peak in its precision (the detector's is left out: it is too small to
say anything). The work is counted once per case with torch's FLOP counter (2 per multiply-add,
convolutions and matrix products; DCT-Net: 261 GFLOP at 1024 px). The peak is

    threads x clock x FLOP per cycle and core

with the clock from --clock-ghz, else /proc/cpuinfo's "cpu MHz" (the nominal clock: boost runs
above it, so a figure near or over 100% says the clock was higher), and the FLOP per cycle from
--flops-per-cycle, else from the CPU: two FMA pipes on every x86 core here, 8 fp32 lanes each
with AVX2, 16 with AVX-512 (AMD family 25, Zen 3/4, runs 512-bit operations on 256-bit pipes: 8),
twice that for bf16 with AVX512-BF16 (a dot product of pairs per lane), and 1024 per core with
AMX-BF16 tiles.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

# limn first: importing it turns on LibTorch's huge-page allocation for large CPU tensors (as
# liblimn.so does when loaded), which LibTorch reads at its first allocation. It then applies to
# every torch runner here alike; ONNX Runtime has its own arena.
import limn  # noqa: F401
import torch

from limn_models import dctnet, export, gpen, retinaface
from limn_models.metadata import Metadata
from limn_models.metadata import export as write

Job = Callable[[np.ndarray], object]

SCORE_THRESHOLD = 0.9
NMS_IOU = 0.4


# ---- The networks -------------------------------------------------------------------------------


def dctnet_module() -> torch.nn.Module:
    return dctnet.DCTNetRGB(dctnet.dctnet_random_init(0)).eval()


def gpen_module() -> torch.nn.Module:
    cfg = gpen.GPEN_CONFIGS["GPEN-BFR-512"]
    net = gpen.gpen_random_init(size=512, seed=0, channel_multiplier=int(cfg["channel_multiplier"]),
                                narrow=float(cfg["narrow"]))
    return gpen.GPENRGB(net).eval()


def retinaface_module() -> Tuple[torch.nn.Module, str]:
    if os.path.isfile(retinaface.DEFAULT_WEIGHTS):
        return retinaface.face_detector(retinaface.DEFAULT_WEIGHTS).eval(), "published weights"
    torch.manual_seed(0)
    net = retinaface.fold_batchnorm(retinaface.RetinaFace().eval())
    return retinaface.FaceDetector(net).eval(), "random weights (../shared/data not found)"


def write_limn_file(name: str, net: torch.nn.Module, path: str, precision: str = "fp32") -> str:
    """The network as a limn file at `path` (TorchScript or, for .pt2, a CPU package compiled for
    `precision`), made once: an existing file is reused."""
    if os.path.isfile(path):
        return path
    t0 = time.perf_counter()
    target = {"precision": precision} if path.endswith(".pt2") else {}
    if name == "dctnet":
        export.export_dctnet_random(path, seed=0, **target)
    elif name == "gpen-bfr-512":
        meta = export.gpen_metadata(512, name, "GPEN-BFR-512 architecture, random weights", "CC0-1.0")
        write(net, meta, path, **target)
    else:
        meta = Metadata(kind="face_detect", name=name, size_multiple=1, source="RetinaFace", license="MIT")
        write(net, meta, path, **target)
    print(f"  wrote {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return path


# What each limn runner loads: (file suffix, package precision, precision asked for).
LIMN_RUNNERS = {
    "limn .pt": (".pt", "fp32", "fp32"),
    "limn .pt2": (".pt2", "fp32", "auto"),
    "limn auto": (".pt", "fp32", "auto"),
    "limn .pt bf16": (".pt", "fp32", "bf16"),
    "limn .pt2 bf16": ("-bf16.pt2", "bf16", "auto"),
}


class _Stride2Conv(torch.nn.Module):
    """DCT-Net's stride-2 convolution on even sizes as the library runs it (a 4x4 kernel with a zero
    first row and column, padding 1), with that kernel stored: torch.onnx's dynamo exporter in
    torch 2.11 writes an invalid graph when the kernel is padded inside the graph."""

    def __init__(self, conv: torch.nn.Module) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.nn.functional.pad(conv.weight.detach(), [1, 0, 1, 0]))
        self.bias = torch.nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(x, self.weight, self.bias, 2, 1)


def onnx_ready(net: torch.nn.Module) -> torch.nn.Module:
    """The same network with DCT-Net's stride-2 kernels precomputed (the same arithmetic)."""
    import copy

    net = copy.deepcopy(net)
    for name, mod in list(net.named_modules()):
        if isinstance(mod, dctnet.TFConv2d) and mod.stride == 2 and mod.kernel == 3:
            parent = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
            setattr(parent, name.rsplit(".", 1)[-1], _Stride2Conv(mod))
    return net


def write_onnx(name: str, net: torch.nn.Module, example: torch.Tensor, dynamic: Dict[int, object],
               cache: str) -> str:
    path = os.path.join(cache, name + ".onnx")
    if not os.path.isfile(path):
        t0 = time.perf_counter()
        with torch.no_grad():
            program = torch.onnx.export(onnx_ready(net), (example,), dynamo=True,
                                        dynamic_shapes={"x": dynamic}, input_names=["x"])
        program.save(path)
        print(f"  wrote {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return path


# ---- The job around each runner -----------------------------------------------------------------


def to_uint8(y: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


def faces(dets: np.ndarray) -> np.ndarray:
    """[P, 15] detections -> the kept rows, best first: the score threshold, then the reference
    greedy NMS (what limn_detect_faces does)."""
    dets = dets[dets[:, 4] >= SCORE_THRESHOLD]
    return dets[retinaface.nms(dets[:, :4], dets[:, 4], NMS_IOU)]


def channels_last(net: torch.nn.Module) -> torch.nn.Module:
    """4-D weights in channels-last layout (GPEN's modulated weights are 5-D and stay as they are)."""
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
    return net


def torch_job(module: Callable[[torch.Tensor], torch.Tensor], detector: bool) -> Job:
    def run(img: np.ndarray) -> object:
        with torch.inference_mode():
            x = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
            y = module(x.contiguous(memory_format=torch.channels_last))
            if detector:
                return faces(y[0].float().numpy())
            return y[0].clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return run


def onnx_job(path: str, threads: int, detector: bool) -> Tuple[Job, str]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(path, options, providers=providers)
    name = session.get_inputs()[0].name

    def run(img: np.ndarray) -> object:
        x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32) * np.float32(1.0 / 255.0)
        y = session.run(None, {name: x})[0]
        if detector:
            return faces(y[0])
        return to_uint8(y[0].transpose(1, 2, 0))
    return run, session.get_providers()[0]


def limn_job(model: object, detector: bool) -> Job:
    if detector:
        return lambda img: model.detect_faces(img, max_side=0)
    return lambda img: model.run(img)


# ---- Timing ------------------------------------------------------------------------------------


def time_case(jobs: Dict[str, Job], img: np.ndarray, rounds: int, iters: int, warmup: int) -> Dict[str, List[float]]:
    times: Dict[str, List[float]] = {name: [] for name in jobs}
    for name, job in jobs.items():  # compile, plan and cache before anything is timed
        for _ in range(warmup):
            job(img)
    order = list(jobs)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else reversed(order)):
            for _ in range(iters):
                t0 = time.perf_counter()
                jobs[name](img)
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def photo(size: int) -> np.ndarray:
    from skimage import data
    from PIL import Image

    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.BICUBIC))


def cpu_flags() -> Tuple[str, Dict[str, str]]:
    """(the flags line, the first processor's other fields) from /proc/cpuinfo."""
    fields: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields.get("flags", ""), fields


def feature_line() -> str:
    """The CPU's vector and matrix features that decide the precisions (as in /proc/cpuinfo), and
    what limn makes of them."""
    flags, _ = cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_tile",
              "amx_bf16", "amx_fp16", "amx_int8")
    have = [f for f in wanted if f in flags.split()]
    cpu = limn.devices()[0]
    return (f"CPU features: {' '.join(have) or 'none of ' + ' '.join(wanted)}; limn: native "
            f"{cpu.native_precisions}, auto picks {cpu.auto_precision}")


def flops_per_cycle(override: str) -> Dict[str, float]:
    """FLOP per cycle and core, by precision (see the module's docstring)."""
    flags_text, fields = cpu_flags()
    flags = set(flags_text.split())
    amd_zen34 = fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
    lanes = 16 if "avx512f" in flags and not amd_zen34 else 8 if ("avx2" in flags or "avx512f" in flags) else 4
    out = {"fp32": 2 * 2 * lanes}
    if "amx_bf16" in flags:
        out["bf16"] = 1024
    elif "avx512_bf16" in flags:
        out["bf16"] = 2 * out["fp32"]
    for item in filter(None, override.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = float(value)
    return out


def clock_ghz(override: Optional[float]) -> float:
    if override:
        return override
    _, fields = cpu_flags()
    try:
        return float(fields.get("cpu MHz", "0")) / 1000.0
    except ValueError:
        return 0.0


def count_flops(net: torch.nn.Module, size: int) -> float:
    """Multiply-adds x 2 of one run on a size x size picture (one face crop for GPEN)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(torch.rand(1, 3, size, size))
    return float(counter.get_total_flops())


def machine() -> str:
    name = cpu_flags()[1].get("model name") or platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} logical CPUs"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="peers.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every runner")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=2, help="timed runs per runner and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--cases", default="dctnet-512,dctnet-1024,dctnet-2048,gpen-bfr-512,retinaface-1024",
                        help="comma-separated subset")
    parser.add_argument("--runners", default="limn .pt,limn .pt2,limn auto,limn .pt bf16,limn .pt2 bf16,eager,"
                        "torch.compile,onnxruntime", help="comma-separated subset")
    parser.add_argument("--clock-ghz", type=float, help="the clock for the peak (default: /proc/cpuinfo)")
    parser.add_argument("--flops-per-cycle", default="",
                        help="override the peak's FLOP per cycle and core, e.g. fp32=64,bf16=1024")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "limn-peers"),
                        help="folder for the exported models (reused between runs)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--prepare-only", action="store_true",
                        help="export the models into --cache and stop (the compiles take minutes)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)

    wanted = [r.strip() for r in args.runners.split(",")]
    results = []
    per_cycle = flops_per_cycle(args.flops_per_cycle)
    ghz = clock_ghz(args.clock_ghz)
    peak = {p: args.threads * ghz * f for p, f in per_cycle.items()}  # GFLOP/s
    about = [f"machine: {machine()}; torch {torch.__version__}, {args.threads} threads, "
              f"{args.rounds} rounds x {args.iters} runs, THP_MEM_ALLOC_ENABLE="
              f"{os.environ.get('THP_MEM_ALLOC_ENABLE', '')}", feature_line(),
              "peak = threads x clock x FLOP/cycle: " + ", ".join(
                  f"{p} {args.threads} x {ghz:.2f} GHz x {per_cycle[p]:g} = {peak[p]:.0f} GFLOP/s" for p in peak)]
    for line in about:
        print(line, file=sys.stderr)
    modules: Dict[str, torch.nn.Module] = {}
    for case in args.cases.split(","):
        name, size_text = case.rsplit("-", 1)
        size = int(size_text)
        detector = name == "retinaface"
        note = ""
        if name not in modules:
            if name == "dctnet":
                modules[name] = dctnet_module()
            elif name == "gpen-bfr":
                modules[name] = gpen_module()
            elif name == "retinaface":
                modules[name], note = retinaface_module()
            else:
                raise SystemExit(f"unknown case {case}")
        net = modules[name]
        file_name = "gpen-bfr-512" if name == "gpen-bfr" else name
        print(f"{case}: preparing", file=sys.stderr)
        jobs: Dict[str, Job] = {}
        provider = ""
        precisions: Dict[str, str] = {}
        for runner in wanted:
            if runner in LIMN_RUNNERS:
                suffix, compiled, asked = LIMN_RUNNERS[runner]
                if detector and "bf16" in runner:
                    continue  # AUTO keeps detectors in fp32 on the CPU; no bf16 detector here
                path = write_limn_file(file_name, net, os.path.join(args.cache, file_name + suffix), compiled)
                if args.prepare_only:
                    continue
                model = limn.Model(path, device="cpu", precision=asked)
                precisions[runner] = model.info.precision
                jobs[runner] = limn_job(model, detector)
            elif args.prepare_only and runner != "onnxruntime":
                continue
            elif runner == "eager":
                jobs[runner] = torch_job(channels_last(net), detector)
            elif runner == "torch.compile":
                jobs[runner] = torch_job(torch.compile(net, dynamic=False), detector)
            elif runner == "onnxruntime":
                if name == "gpen-bfr":
                    dyn: Dict[int, object] = {}
                elif name == "dctnet":
                    dyn = {2: 4 * torch.export.Dim("rows", min=1), 3: 4 * torch.export.Dim("cols", min=1)}
                else:
                    dyn = {2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
                example = torch.rand(1, 3, 96 if name != "gpen-bfr" else 512, 128 if name != "gpen-bfr" else 512)
                path = write_onnx(file_name, net, example, dyn, args.cache)
                if not args.prepare_only:
                    jobs[runner], provider = onnx_job(path, args.threads, detector)
        if args.prepare_only:
            continue
        img = photo(size)
        print(f"{case}: timing {', '.join(jobs)}", file=sys.stderr)
        times = time_case(jobs, img, args.rounds, args.iters, args.warmup)
        medians = {k: statistics.median(v) for k, v in times.items()}
        flops = 0.0 if detector else count_flops(net, size if name != "gpen-bfr" else 512)
        results.append({"case": case, "size": size, "note": note, "provider": provider, "median_ms": medians,
                        "precision": precisions, "gflop": flops / 1e9})
        ref = medians.get("onnxruntime")
        line = f"{case:16s}" + "".join(f" {k}: {v:9.1f} ms" for k, v in medians.items())
        if ref:
            line += "  | / onnxruntime: " + ", ".join(f"{k} {v / ref:.2f}" for k, v in medians.items() if k != "onnxruntime")
        print(line, flush=True)
    print()
    # Ratios against ONNX Runtime fp32: the fp32 package, what AUTO gives by name, the bf16 package.
    vs = [k for k in ("limn .pt2", "limn auto", "limn .pt2 bf16") if k in wanted]
    print("| case | " + " | ".join(f"{r} ms" for r in wanted) + " | " +
          " | ".join(f"{k} / onnxruntime" for k in vs) + " | limn .pt2 / torch.compile |")
    print("|" + " --- |" * 1 + " ---: |" * (len(wanted) + len(vs) + 1))
    for r in results:
        m = r["median_ms"]
        cells = [f"{m[k]:.0f}" if k in m else "-" for k in wanted]
        ratio = lambda a, b: f"{m[a] / m[b]:.2f}" if a in m and b in m else "-"
        if "limn auto" in m:  # which precision AUTO took
            cells[wanted.index("limn auto")] += f" ({r['precision']['limn auto']})"
        print(f"| {r['case']} | " + " | ".join(cells) + " | " + " | ".join(ratio(k, "onnxruntime") for k in vs) +
              f" | {ratio('limn .pt2', 'torch.compile')} |")
    print()
    print("\n".join(about))
    print()
    limn_runners = [k for k in wanted if k in LIMN_RUNNERS]
    print("| case | GFLOP | " + " | ".join(f"{k}: GFLOP/s (of peak)" for k in limn_runners) + " |")
    print("| --- | ---: |" + " ---: |" * len(limn_runners))
    for r in results:
        if not r["gflop"]:
            continue
        cells = []
        for k in limn_runners:
            ms = r["median_ms"].get(k)
            p = r["precision"].get(k, "fp32")
            if ms is None:
                cells.append("-")
                continue
            rate = r["gflop"] / (ms / 1e3)
            share = f"{100 * rate / peak[p]:.0f}% of {p}" if peak.get(p) else p
            cells.append(f"{rate:.0f} ({share})")
        print(f"| {r['case']} | {r['gflop']:.1f} | " + " | ".join(cells) + " |")
    if "dctnet-512" in {r["case"] for r in results} and "dctnet-1024" in {r["case"] for r in results}:
        by = {r["case"]: r["median_ms"] for r in results}
        for k in wanted:
            if k in by["dctnet-512"] and k in by["dctnet-1024"]:
                print(f"DCT-Net 1024 / 512 time, {k}: {by['dctnet-1024'][k] / by['dctnet-512'][k]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "features": feature_line(), "peak_gflops": peak,
                       "torch": torch.__version__, "threads": args.threads, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
