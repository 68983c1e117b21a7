"""Where DCT-Net's time goes on the CPU: each convolution alone, one run of a compiled package,
and the convolution share of one ONNX Runtime run (the models peers.py exports into its cache).

    OMP_NUM_THREADS=2 PYTHONPATH=models python3 examples/bench/dctnet_profile.py \
        --pt2 /tmp/limn-peers/dctnet.pt2 --onnx /tmp/limn-peers/dctnet.onnx --size 1024

Convolutions are timed alone with oneDNN (channels-last, as the package runs them; the stride-2
ones as the 4x4 kernels limn uses), as ms and GFLOP/s. The package's run is timed whole (its
convolutions are not visible to torch.profiler); ONNX Runtime is profiled with its own profiler
(node kernel times by operator type). One run each, after a warm-up.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from limn_models import dctnet

# Resolution of each layer's input, as a fraction of the image side.
_SCALE = {"conv": 1, "conv_1": 1, "conv_2": 2, "conv_3": 2, "conv_4": 4, "conv_5": 4, "conv_6": 2,
          "conv_7": 2, "conv_8": 1, "conv_9": 1}


def layers(size: int, iters: int) -> float:
    print("| layer | input | channels | kernel | ms | GFLOP/s |")
    print("| --- | ---: | --- | --- | ---: | ---: |")
    total = 0.0
    with torch.inference_mode():
        for _tf, path, cin, cout, k, stride in dctnet.TF_LAYERS:
            side = size // _SCALE.get(path, 4)
            kernel = 4 if stride == 2 else k
            x = torch.rand(1, cin, side, side).contiguous(memory_format=torch.channels_last)
            w = torch.rand(cout, cin, kernel, kernel).contiguous(memory_format=torch.channels_last)
            pad = 1 if stride == 2 else k // 2
            F.conv2d(x, w, None, stride, pad)
            t0 = time.perf_counter()
            for _ in range(iters):
                F.conv2d(x, w, None, stride, pad)
            dt = (time.perf_counter() - t0) / iters
            flops = (side // stride) ** 2 * cout * cin * kernel * kernel * 2
            total += dt
            print(f"| {path} | {side}² | {cin}->{cout} | {kernel}x{kernel} s{stride} | {dt * 1e3:.1f} | "
                  f"{flops / dt / 1e9:.0f} |")
    print(f"| all convolutions | | | | {total * 1e3:.0f} | |")
    return total


def package_time(path: str, size: int) -> None:
    """One run of the package (its convolutions are not visible to torch.profiler: compare the
    run with the sum of the convolutions timed alone)."""
    compiled = torch._inductor.aoti_load_package(path)
    x = torch.rand(1, 3, size, size)
    with torch.inference_mode():
        compiled(x)
        t0 = time.perf_counter()
        compiled(x)
        wall = time.perf_counter() - t0
    print(f"package: {wall * 1e3:.0f} ms for the whole run")


def onnx_share(path: str, size: int, threads: int) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.gettempdir(), "limn-ort-profile")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    session.run(None, {name: x})
    t0 = time.perf_counter()
    session.run(None, {name: x})
    wall = time.perf_counter() - t0
    events = json.load(open(session.end_profiling()))
    per_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    runs = 2  # the warm-up run is in the profile too
    conv = per_op["Conv"] / runs / 1e6
    rest = (sum(per_op.values()) / runs / 1e6) - conv
    print(f"onnxruntime: {wall * 1e3:.0f} ms, of which Conv {conv * 1e3:.0f} ms ({conv / wall:.0%}), "
          f"other kernels {rest * 1e3:.0f} ms")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="dctnet_profile.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--pt2", help="a DCT-Net compiled package (CPU)")
    parser.add_argument("--onnx", help="the same network as ONNX")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    layers(args.size, args.iters)
    if args.pt2:
        package_time(args.pt2, args.size)
    if args.onnx:
        onnx_share(args.onnx, args.size, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
