"""Times limn against the same model in PyTorch eager, in one script, and prints the ratio.

    PYTHONPATH=models python3 examples/bench/compare_eager.py --bench build/examples/bench/limn-bench \
        --model dctnet --device cpu --size 256x256 --size 512x512

The eager baseline does what a Python user would: uint8 HxWx3 array -> float tensor on the device
-> model -> uint8 array, under torch.inference_mode(). limn is timed by limn-bench (same weights,
exported to a temporary limn file). The two alternate for --rounds rounds, so drift on a shared
machine hits both; each figure is the median over all rounds.
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

from limn_models import dctnet, export, fixtures
from limn_models.metadata import Metadata
from limn_models.metadata import export as write


def build(model: str, path: str) -> torch.nn.Module:
    """Writes the limn file for `model` to `path` and returns the same network in eager mode."""
    if model == "dctnet":
        export.export_dctnet_random(path, seed=0)
        return dctnet.DCTNetRGB(dctnet.dctnet_random_init(0)).eval()
    if model == "tiny-unet":
        torch.manual_seed(1)
        net = fixtures.TinyUNet().eval()
        write(net, Metadata(kind="cartoon", name="tiny-unet", size_multiple=2), path)
        return net
    raise SystemExit(f"unknown model {model}")


def eager_times(net: torch.nn.Module, device: str, size: Tuple[int, int], warmup: int,
                iters: int, dtype: torch.dtype) -> List[float]:
    w, h = size
    rng = np.random.default_rng(12345)
    img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    net = net.to(device=device, dtype=dtype)
    out: List[float] = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            x = torch.from_numpy(img).to(device).permute(2, 0, 1).unsqueeze(0).to(dtype) / 255.0
            y = net(x).float().clamp(0, 1).mul(255).round().to(torch.uint8)
            y.squeeze(0).permute(1, 2, 0).cpu().numpy()
            t1 = time.perf_counter()
            if i >= warmup:
                out.append((t1 - t0) * 1e3)
    return out


def limn_times(bench: str, path: str, device: str, precision: str, size: Tuple[int, int],
               warmup: int, iters: int) -> Tuple[float, str]:
    cmd = [bench, "--model", path, "--device", device, "--precision", precision,
           "--size", f"{size[0]}x{size[1]}", "--warmup", str(warmup), "--iters", str(iters)]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    row = [line for line in text.splitlines() if line.startswith(f"{size[0]}x{size[1]} ")][-1]
    return float(row.split()[1]), row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", required=True, help="path to limn-bench")
    p.add_argument("--model", default="dctnet", choices=["dctnet", "tiny-unet"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--size", action="append", default=[])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.size or ["512x512"])]
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"{args.precision}, model {args.model}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pt")
        net = build(args.model, path)
        print(f"{'size':<11} {'eager ms':>9} {'limn ms':>9} {'limn/eager':>11}")
        for size in sizes:
            e: List[float] = []
            l: List[float] = []
            for _ in range(args.rounds):
                e.extend(eager_times(net, args.device, size, args.warmup, args.iters, dtype))
                l.append(limn_times(args.bench, path, args.device, args.precision, size,
                                    args.warmup, args.iters)[0])
            em, lm = statistics.median(e), statistics.median(l)
            print(f"{size[0]}x{size[1]:<6} {em:9.2f} {lm:9.2f} {lm / em:11.2f}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
