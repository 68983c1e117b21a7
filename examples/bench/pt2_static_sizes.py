"""A compiled detector with dynamic sizes against the same detector compiled for one static size.

    OMP_NUM_THREADS=2 PYTHONPATH=models python3 examples/bench/pt2_static_sizes.py --size 1024 \
        --cache /tmp/limn-peers

With dynamic sizes AOTInductor hands oneDNN the plain weights on every call; compiled for one
size it can pack them once. This measures what that is worth for RetinaFace (the published
weights from ../shared/data, else random ones), in torch's own package loader, alternating rounds.
The size buckets it argues for are not in limn yet (BENCHMARKS.md, issue 25).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from limn_models import retinaface


def detector() -> torch.nn.Module:
    if os.path.isfile(retinaface.DEFAULT_WEIGHTS):
        return retinaface.face_detector(retinaface.DEFAULT_WEIGHTS).eval()
    torch.manual_seed(0)
    return retinaface.FaceDetector(retinaface.fold_batchnorm(retinaface.RetinaFace().eval())).eval()


def compile_to(path: str, net: torch.nn.Module, x: torch.Tensor, dynamic: bool) -> None:
    """A package of `net` at `path`, for any size (dynamic) or for x's size only."""
    from torch.export import Dim
    from torch.export.pt2_archive._package import package_pt2

    shapes = {"x": {2: Dim.AUTO, 3: Dim.AUTO}} if dynamic else None
    with torch.no_grad():
        program = torch.export.export(net, (x,), dynamic_shapes=shapes)
        files = torch._inductor.aot_compile(program.module(), (x,),
                                            options={"aot_inductor.package": True, "freezing": True})
    package_pt2(path, aoti_files={"model": files})


def median_ms(run, x: torch.Tensor, iters: int) -> float:
    times = []
    with torch.no_grad():
        for _ in range(iters):
            t0 = time.perf_counter()
            run(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="the square input side")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default="/tmp/limn-peers", help="where the packages are kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)
    net = detector()
    x = torch.rand(1, 3, args.size, args.size)
    runners = {}
    for kind, dynamic in (("dynamic", True), (f"static {args.size}x{args.size}", False)):
        path = os.path.join(args.cache, f"retinaface-{'dynamic' if dynamic else f'static-{args.size}'}.pt2")
        if not os.path.isfile(path):
            compile_to(path, net, torch.rand(1, 3, 96, 128) if dynamic else x, dynamic)
        runners[kind] = torch._inductor.aoti_load_package(path)
        for _ in range(3):  # warm-up
            runners[kind](x)
    for r in range(args.rounds):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        print(", ".join(f"{k} {median_ms(runners[k], x, args.iters):.1f} ms" for k in order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
