"""Times the limn Python package against PyTorch eager on the same models, in one script:
RetinaFace detection (limn_detect_faces vs the eager module + numpy NMS) and the classical cartoon
pipeline (Model.cartoonize vs the eager module), plus 1 vs 4 Python threads sharing one model.

    PYTHONPATH=models python3 examples/bench/python_and_detect.py --device cpu

Needs the installed package (`pip install --no-build-isolation .`) and the RetinaFace weights
(--weights; default $LIMN_RETINAFACE_WEIGHTS, else ../shared/data or .deps/data beside the checkout
or the current directory). limn and eager alternate for --rounds rounds; figures are medians.
--smoke runs every step once on the smallest photo (the GPU harness's dry run and the package test).
"""
import argparse
import os
import statistics
import tempfile
import threading
import time

import numpy as np
import torch

import limn
from limn_models import detect_cases, export, retinaface, standins


def median_seconds(fn, iters):
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare(label, ours, eager, iters, rounds):
    ours(), eager()  # warm-up
    a, b = [], []
    for _ in range(rounds):
        a.append(median_seconds(ours, iters))
        b.append(median_seconds(eager, iters))
    la, lb = statistics.median(a), statistics.median(b)
    print(f"| {label} | {la * 1000:.1f} ms | {lb * 1000:.1f} ms | {lb / la:.2f}x |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--weights", default=retinaface.DEFAULT_WEIGHTS, help="RetinaFace state dict")
    p.add_argument("--smoke", action="store_true", help="each step once, smallest photo only")
    args = p.parse_args()
    if not os.path.isfile(args.weights):
        p.error(f"no RetinaFace weights at {args.weights}: pass --weights or set LIMN_RETINAFACE_WEIGHTS")
    if args.smoke:
        args.iters = args.rounds = 1
    dev = torch.device("cuda" if args.device.startswith("cuda") else "cpu")
    photos = detect_cases.photos()
    tmp = tempfile.mkdtemp()
    det_path, cartoon_path = os.path.join(tmp, "retinaface.pt"), os.path.join(tmp, "cartoon.pt")
    export.export_retinaface(det_path, args.weights)
    export.export_cartoon_standin(cartoon_path)
    eager_det = retinaface.face_detector(args.weights).to(dev)
    eager_cartoon = standins.ClassicalCartoon().eval().to(dev)

    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{limn.build_info().splitlines()[0]}")
    print("| work | limn (Python package) | PyTorch eager | eager / limn |")
    print("| --- | --- | --- | --- |")
    with limn.Model(det_path, device=args.device, precision="fp32") as det:
        for name in ("astronaut",) if args.smoke else ("astronaut", "collage", "astronaut_x4"):
            img = photos[name]
            h, w = img.shape[:2]
            compare(f"detect faces {w}x{h}, full size", lambda: det.detect_faces(img, max_side=0),
                    lambda: retinaface.detect(eager_det, img), args.iters, args.rounds)
        big = photos["astronaut_x4"]
        if not args.smoke:
            compare("detect faces 2048x2048, max_side 1024 (limn default)", lambda: det.detect_faces(big),
                    lambda: retinaface.detect(eager_det, detect_cases.resize(big, 1024, 1024)),
                    args.iters, args.rounds)

    img = photos["astronaut"]

    def eager_cartoonize():
        with torch.inference_mode():
            x = torch.from_numpy(img).to(dev).permute(2, 0, 1)[None].float() / 255
            y = eager_cartoon(x)
            return (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()

    with limn.Model(cartoon_path, device=args.device, precision="fp32") as m:
        compare("cartoonize 512x512 (classical)", lambda: m.cartoonize(img), eager_cartoonize,
                args.iters, args.rounds)
        images = [np.ascontiguousarray(np.roll(img, 31 * i, axis=1)) for i in range(8)]
        for n in (1,) if args.smoke else (1, 4):
            def batch():
                chunks = [images[i::n] for i in range(n)]
                threads = [threading.Thread(target=lambda c=c: [m.cartoonize(x) for x in c]) for c in chunks]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            seconds = statistics.median(median_seconds(batch, 1) for _ in range(args.rounds))
            print(f"| cartoonize 8 x 512x512 with {n} Python thread(s) on one model | {seconds * 1000:.0f} ms | | |")


if __name__ == "__main__":
    main()
