"""Measures which inference-only optimizations help a limn model, in one process.

    PYTHONPATH=models python3 examples/bench/optimizations.py --device cpu --size 512x512

Variants of the same TorchScript DCT-Net (random weights), each timed on the same input:
eager under no_grad; scripted; scripted under inference_mode; frozen; frozen with channels-last
weights and input; frozen with the graph executor's optimizer off (what limn runs). The variants
are interleaved for --rounds rounds so machine noise hits all of them; the median is printed with
the ratio to the eager baseline.
"""

import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch

from limn_models import dctnet


def timed(fn: Callable[[], torch.Tensor], device: str, iters: int) -> List[float]:
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="512x512")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    dev = args.device

    eager = dctnet.DCTNetRGB(dctnet.dctnet_random_init(0)).eval().to(dev)
    scripted = torch.jit.script(eager)
    frozen = torch.jit.freeze(torch.jit.script(eager).eval())
    cl_net = dctnet.DCTNetRGB(dctnet.dctnet_random_init(0)).eval().to(dev).to(memory_format=torch.channels_last)
    frozen_cl = torch.jit.freeze(torch.jit.script(cl_net).eval())
    x = torch.rand(1, 3, h, w, device=dev, generator=torch.Generator(device=dev).manual_seed(0))
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def no_opt(m, inp):
        def run():
            with torch.jit.optimized_execution(False), torch.inference_mode():
                return m(inp)
        return run

    def inference(m, inp):
        def run():
            with torch.inference_mode():
                return m(inp)
        return run

    def nograd(m, inp):
        def run():
            with torch.no_grad():
                return m(inp)
        return run

    variants: Dict[str, Callable[[], torch.Tensor]] = {
        "eager, no_grad": nograd(eager, x),
        "eager, inference_mode": inference(eager, x),
        "scripted, no_grad": nograd(scripted, x),
        "scripted, inference_mode": inference(scripted, x),
        "frozen, inference_mode": inference(frozen, x),
        "frozen, optimizer off (limn)": no_opt(frozen, x),
        "frozen channels-last, optimizer off": no_opt(frozen_cl, x_cl),
    }
    ref = variants["eager, no_grad"]()
    for name, fn in variants.items():  # warm-up, and every variant computes the same thing
        y = fn()
        fn()
        assert (y.float() - ref.float()).abs().max().item() < 1e-4, name
    times: Dict[str, List[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            times[name] += timed(fn, dev, args.iters)
    base = statistics.median(times["eager, no_grad"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {dev}, {w}x{h}, "
          f"{args.rounds} rounds x {args.iters} runs")
    print(f"{'variant':<38} {'median ms':>10} {'vs eager':>9}")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"{name:<38} {m:10.1f} {m / base:9.2f}")


if __name__ == "__main__":
    main()
