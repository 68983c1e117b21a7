"""What the pipelines cost on top of the network: cartoonize and restore-faces against the raw
run of the same model, in one process, alternating rounds.

    OMP_NUM_THREADS=2 PYTHONPATH=models python3 examples/bench/pipeline_overhead.py \
        --dctnet DCTNET.pt2 --gpen GPEN.pt2 --rounds 3

Raw run: ``Model.run`` on an image already at the network's size (8-bit conversions included).
cartoonize: the whole photo through ``Model.cartoonize`` (size rule, blend, one tile or several).
restore-faces: one face of a 1024 px photo through ``Model.restore_faces`` (alignment warp,
network, inverse warp, feathered paste-back) against the raw run on a 512 px crop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from peers import photo  # the same test photo as the peer benchmark (this folder)


def median_ms(jobs: Dict[str, Callable[[], object]], rounds: int, iters: int) -> Dict[str, float]:
    times: Dict[str, List[float]] = {k: [] for k in jobs}
    for job in jobs.values():
        job()
    for r in range(rounds):
        for name in (list(jobs) if r % 2 == 0 else list(reversed(jobs))):
            for _ in range(iters):
                t0 = time.perf_counter()
                jobs[name]()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline_overhead.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dctnet", required=True, help="a DCT-Net limn file (.pt or .pt2)")
    parser.add_argument("--gpen", help="a GPEN-512 limn file (.pt or .pt2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=2)
    args = parser.parse_args(argv)
    import limn

    rows = []
    with limn.Model(args.dctnet, device="cpu") as m:
        for size in (512, 1024):
            img = photo(size)
            t = median_ms({"raw": lambda: m.run(img), "cartoonize": lambda: m.cartoonize(img)},
                          args.rounds, args.iters)
            rows.append((f"cartoonize {size}x{size}, one tile", t["raw"], t["cartoonize"]))
        img = photo(1024)
        t = median_ms({"raw": lambda: m.run(img), "tiled": lambda: m.cartoonize(img, tile=512)},
                      args.rounds, args.iters)
        rows.append(("cartoonize 1024x1024, tile 512 (9 tiles, margin 64)", t["raw"], t["tiled"]))
    if args.gpen:
        big = photo(1024)
        with limn.Model(args.gpen, device="cpu") as g:
            template = g.info.face_template  # (5, 2) at 512 px
            # One face about 400 px across in the middle of the photo.
            landmarks = (template - 256.0) * (400.0 / 512.0) + 512.0
            crop = photo(512)
            t = median_ms({"raw": lambda: g.run(crop),
                           "restore": lambda: g.restore_faces(big, [limn.Face.from_landmarks(landmarks)])},
                          args.rounds, args.iters)
            rows.append(("restore-faces, one face in 1024x1024", t["raw"], t["restore"]))
    print("| work | raw run ms | pipeline ms | overhead |")
    print("| --- | ---: | ---: | ---: |")
    for name, raw, pipe in rows:
        print(f"| {name} | {raw:.0f} | {pipe:.0f} | {(pipe / raw - 1.0) * 100:+.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
