"""Face-detection cases for the library tests: the exported RetinaFace, real photos, and what the
eager reference finds on them.

    python -m limn_models.detect_cases OUT_DIR [--weights PTH]

writes ``retinaface.pt`` (the published weights as a limn face_detect file), and for each photo
``NAME.rgb`` (raw 8-bit RGB, row-major) and ``NAME.faces.f32`` (float32 rows of 15: box, score,
5 landmarks: :func:`limn_models.retinaface.detect` with the eager module, full resolution,
threshold 0.9, NMS IoU 0.4). ``cases.txt`` lists one ``NAME W H FACES`` line per photo. The C++
test ``tests/cpp/test_detect_faces.cpp`` runs them through the library and compares.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from . import retinaface
from .export import export_retinaface


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 H x W x 3 -> height x width x 3, bilinear with antialiasing."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    y = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def collage() -> np.ndarray:
    """1024 x 1024, four portraits: the astronaut, its mirror, the cameraman, and the astronaut
    at half size on grey (at 612 + x / 2, 662 + y / 2)."""
    from skimage import data

    astronaut = data.astronaut()
    small = np.full((512, 512, 3), 128, np.uint8)
    small[150:406, 100:356] = resize(astronaut, 256, 256)
    out = np.zeros((1024, 1024, 3), np.uint8)
    out[:512, :512] = astronaut
    out[:512, 512:] = astronaut[:, ::-1]
    out[512:, :512] = np.repeat(data.camera()[:, :, None], 3, axis=2)
    out[512:, 512:] = small
    return out


def photos() -> Dict[str, np.ndarray]:
    """The test photos (scikit-image's public-domain images and arrangements of them)."""
    from skimage import data

    astronaut = data.astronaut()
    return {
        "astronaut": astronaut,
        "astronaut_mirror": np.ascontiguousarray(astronaut[:, ::-1]),
        "coffee": data.coffee(),
        "collage": collage(),
        "astronaut_x4": resize(astronaut, 2048, 2048),
    }


def write_all(out: str, weights: str) -> None:
    os.makedirs(out, exist_ok=True)
    model = os.path.join(out, "retinaface.pt")
    export_retinaface(model, weights)
    export_retinaface(os.path.join(out, "retinaface.pt2"), weights)  # compiled CPU package
    detector = retinaface.face_detector(weights)
    lines = []
    for name, image in photos().items():
        faces = retinaface.detect(detector, image)
        rows = np.array([[*f["box"], f["score"], *np.ravel(f["landmarks"])] for f in faces],
                        dtype=np.float32).reshape(-1, 15)
        for suffix, payload in (("rgb", np.ascontiguousarray(image).tobytes()), ("faces.f32", rows.tobytes())):
            path = os.path.join(out, f"{name}.{suffix}")
            with open(path + ".tmp", "wb") as f:
                f.write(payload)
            os.replace(path + ".tmp", path)
        lines.append(f"{name} {image.shape[1]} {image.shape[0]} {len(rows)}\n")
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.writelines(lines)


SKIPPED = 77  # the exit status CTest reports as skipped


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m limn_models.detect_cases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="output folder (created if missing)")
    parser.add_argument("--weights", default=retinaface.DEFAULT_WEIGHTS, help="RetinaFace state dict")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.weights):
        # No cases, and none left from an earlier run: the tests that need them report skipped.
        stale = os.path.join(args.out, "cases.txt")
        if os.path.exists(stale):
            os.remove(stale)
        print(f"skipped: no RetinaFace weights at {os.path.normpath(args.weights)} "
              f"(../shared/data/{retinaface.WEIGHTS_FILE}, which a plain clone lacks): no detection cases "
              f"written", file=sys.stderr)
        return SKIPPED
    write_all(args.out, args.weights)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
