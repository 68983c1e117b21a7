"""Times limn against the same model in PyTorch eager (and torch.compile), in one script, and
prints the ratios.

    PYTHONPATH=models python3 examples/bench/compare_eager.py --bench build/examples/bench/limn-bench \
        --model dctnet --device cpu --size 256x256 --size 512x512 [--batch 8] [--compile]

The eager baseline does what a Python user would: uint8 HxWx3 arrays -> float tensor on the device
-> model -> uint8 arrays, under torch.inference_mode(), channels-last. --compile adds the same
module through torch.compile (compiled once per size, before timing). limn is timed by limn-bench
(same weights, exported to a temporary limn file). They alternate for --rounds rounds, so drift on
a shared machine hits all; each figure is the median over all rounds, in ms per image.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

import numpy as np
import torch

from limn_models import dctnet, export, fixtures, gpen
from limn_models.metadata import Metadata
from limn_models.metadata import export as write


def build(model: str, path: str) -> torch.nn.Module:
    """Writes the limn file for `model` to `path` and returns the same network in eager mode."""
    if model == "dctnet":
        export.export_dctnet_random(path, seed=0)
        return dctnet.DCTNetRGB(dctnet.dctnet_random_init(0)).eval()
    if model in ("gpen-512", "gpen-256"):
        size = int(model[len("gpen-"):])
        cfg = gpen.GPEN_CONFIGS[f"GPEN-BFR-{size}"]
        net = gpen.gpen_random_init(size=size, seed=0, channel_multiplier=int(cfg["channel_multiplier"]),
                                    narrow=float(cfg["narrow"]))
        module = gpen.GPENRGB(net).eval()
        write(module, export.gpen_metadata(size, model, f"GPEN-BFR-{size} architecture, random weights",
                                           "CC0-1.0"), path)
        return module
    if model == "tiny-unet":
        torch.manual_seed(1)
        net = fixtures.TinyUNet().eval()
        write(net, Metadata(kind="cartoon", name="tiny-unet", size_multiple=2), path)
        return net
    raise SystemExit(f"unknown model {model}")


def torch_times(net, device: str, size: Tuple[int, int], batch: int, warmup: int, iters: int,
                dtype: torch.dtype) -> List[float]:
    """ms per image of `net` (eager or compiled) doing the whole job on a batch of uint8 arrays."""
    w, h = size
    rng = np.random.default_rng(12345)
    imgs = rng.integers(0, 256, size=(batch, h, w, 3), dtype=np.uint8)
    out: List[float] = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            x = torch.from_numpy(imgs).to(device).permute(0, 3, 1, 2).to(dtype).div_(255.0)
            y = net(x.contiguous(memory_format=torch.channels_last))
            y = y.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1)
            y.contiguous().cpu().numpy()
            t1 = time.perf_counter()
            if i >= warmup:
                out.append((t1 - t0) * 1e3 / batch)
    return out


def on_device(net: torch.nn.Module, device: str, dtype: torch.dtype) -> torch.nn.Module:
    net = net.to(device=device, dtype=dtype)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
    return net


def limn_times(bench: str, path: str, device: str, precision: str, size: Tuple[int, int], batch: int,
               warmup: int, iters: int) -> Tuple[float, str]:
    cmd = [bench, "--model", path, "--device", device, "--precision", precision, "--batch", str(batch),
           "--size", f"{size[0]}x{size[1]}", "--warmup", str(warmup), "--iters", str(iters)]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    row = [line for line in text.splitlines() if line.startswith(f"{size[0]}x{size[1]} ")][-1]
    return float(row.split()[1]), row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", required=True, help="path to limn-bench")
    p.add_argument("--model", default="dctnet", choices=["dctnet", "gpen-512", "gpen-256", "tiny-unet"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--size", action="append", default=[])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch", type=int, default=1, help="images per run (ms are per image)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the module")
    args = p.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.size or ["512x512"])]
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    if args.device.startswith("cuda"):
        # What fp32 means in limn: IEEE fp32, no TF32 in convolutions or matrix products.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"{args.precision}, model {args.model}, batch {args.batch}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pt")
        net = on_device(build(args.model, path), args.device, dtype)
        compiled = torch.compile(net, dynamic=False) if args.compile else None
        print(f"{'size':<11} {'eager ms':>9} {'compile ms':>10} {'limn ms':>9} {'limn/eager':>11} "
              f"{'limn/compile':>12}")
        for size in sizes:
            e: List[float] = []
            c: List[float] = []
            l: List[float] = []
            if compiled is not None:  # compile before anything is timed
                torch_times(compiled, args.device, size, args.batch, 1, 1, dtype)
            for _ in range(args.rounds):
                e.extend(torch_times(net, args.device, size, args.batch, args.warmup, args.iters, dtype))
                if compiled is not None:
                    c.extend(torch_times(compiled, args.device, size, args.batch, args.warmup, args.iters, dtype))
                l.append(limn_times(args.bench, path, args.device, args.precision, size, args.batch,
                                    args.warmup, args.iters)[0])
            em, lm = statistics.median(e), statistics.median(l)
            cm = statistics.median(c) if c else float("nan")
            print(f"{size[0]}x{size[1]:<6} {em:9.2f} {cm:10.2f} {lm:9.2f} {lm / em:11.2f} {lm / cm:12.2f}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
