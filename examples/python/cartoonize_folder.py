"""Cartoonize every photo in a folder with the limn Python package, with a progress bar.

    python examples/python/cartoonize_folder.py PHOTOS/ OUT/ --model classical-cartoon.pt [--device auto]

Each photo is written to OUT/ as PNG under its own name. One model serves all photos; the progress
bar advances per tile inside a photo and per photo over the folder.
"""
import argparse
import os
import sys
import time

import limn

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tga")


def bar(label: str, fraction: float, width: int = 30) -> None:
    filled = int(width * fraction)
    sys.stderr.write(f"\r{label[:28]:<28} [{'#' * filled}{' ' * (width - filled)}] {fraction * 100:5.1f}%")
    sys.stderr.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="folder of photos")
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--model", required=True, help="limn cartoon model file")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--max-side", type=int, default=0, help="work at most this many pixels on the longer side")
    args = parser.parse_args()

    names = sorted(n for n in os.listdir(args.photos) if n.lower().endswith(EXTENSIONS))
    if not names:
        print(f"no photos in {args.photos}", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    start = time.perf_counter()
    with limn.Model(args.model, device=args.device, kind="cartoon") as model:
        print(f"model {model.info.name!r} on {model.info.device} in {model.info.precision}", file=sys.stderr)
        for i, name in enumerate(names):
            def progress(done: int, total: int) -> None:
                bar(name, (i + done / max(total, 1)) / len(names))

            try:
                photo = limn.load_image(os.path.join(args.photos, name), "rgb")
                cartoon = model.cartoonize(photo, max_side=args.max_side, progress=progress)
                limn.save_image(os.path.join(args.out, os.path.splitext(name)[0] + ".png"), cartoon)
            except limn.Error as e:  # a bad photo does not stop the others
                failed += 1
                print(f"\n{name}: {e}", file=sys.stderr)
    bar("done", 1.0)
    seconds = time.perf_counter() - start
    print(f"\n{len(names) - failed} of {len(names)} photos in {seconds:.1f} s -> {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
