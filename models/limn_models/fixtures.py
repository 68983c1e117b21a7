"""Test fixtures: tiny limn models and deliberately broken files, generated at test time.

    python -m limn_models.fixtures OUT_DIR

writes every fixture below into OUT_DIR (see ``FIXTURES``). Nothing is downloaded; the networks are
tiny, so the TorchScript files take a few seconds and the compiled (.pt2) ones about half a minute.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import multiprocessing
import os
import sys
import zipfile
from typing import Callable, Dict, Optional

import torch
from torch import nn

from .metadata import Metadata, atomic_save, export

# GPEN's 5-point template at 512 px (see gpen.py); scaled to the fixture's size.
_TEMPLATE_512 = [202.0, 242.9, 309.4, 242.3, 256.1, 304.0, 212.0, 366.8, 300.9, 366.3]


def template_at(size: int) -> list:
    return [v * size / 512.0 for v in _TEMPLATE_512]


class Identity(nn.Module):
    """Returns its input: runs through the library must round-trip pixels exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class TinyUNet(nn.Module):
    """A small random-weight encoder/decoder (one stride-2 level): needs sizes that are multiples of 2."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.inc = nn.Conv2d(3, width, 3, padding=1)
        self.down = nn.Conv2d(width, width * 2, 3, stride=2, padding=1)
        self.mid = nn.Conv2d(width * 2, width * 2, 3, padding=1)
        self.up = nn.ConvTranspose2d(width * 2, width, 2, stride=2)
        self.out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.nn.functional.leaky_relu(self.inc(x * 2.0 - 1.0), 0.2)
        b = torch.nn.functional.leaky_relu(self.down(a), 0.2)
        b = torch.nn.functional.leaky_relu(self.mid(b), 0.2)
        c = self.up(b) + a
        return torch.sigmoid(self.out(c))


class ProducesNaN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class OverflowsInHalf(nn.Module):
    """Returns x in fp32 but Inf in fp16: 60000 + 60000 exceeds fp16's 65504."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = x * 60000.0 + 60000.0
        return (big + 60000.0) / 60000.0 - 2.0


class ImpreciseInHalf(nn.Module):
    """Returns x (to 1e-4) in fp32; in fp16 or bf16 rounds it to 0 or 1, a finite but wrong result
    that fails the load-time self-test (the step of fp16 at 1024 is 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1024.0) - 1024.0


class CoarseInBf16(nn.Module):
    """x plus a ripple of amplitude 0.01 whose phase follows x at 3000 radians per unit: in fp32 a
    deterministic picture; in bf16 (x rounded to 8 significant bits) the phase is another, so the
    result is off by about 0.01 everywhere. Inside the self-test's tolerance for reduced precisions
    (max 0.25, mean 0.02), but about 40 dB from fp32: below the 45 dB AUTO needs on the CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.01 * torch.sin(x * 3000.0)


class MixedAttributes(nn.Module):
    """Reverses the channel order through an int64 index buffer, then mixes the channels with a
    1x1 kernel held as a plain tensor attribute (not a parameter or buffer). Loaded in fp16 or bf16,
    the index must stay an integer and the kernel must follow the input's dtype and device."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("order", torch.tensor([2, 1, 0], dtype=torch.int64))
        self.mix = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]).view(3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(x.index_select(1, self.order), self.mix)


class WrongShape(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]


class OutOfMemoryAbove4096(nn.Module):
    """x * 0.5 + 0.25, but inputs over 4096 pixels ask the allocator for 2**62 bytes, which fails
    on every machine: a real out-of-memory error, for the pipelines' retry with smaller tiles."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] * x.shape[3] > 4096:
            waste = torch.empty([1 << 62], dtype=torch.uint8)
            x = x + waste[:1].float().clamp(0.0, 0.0)
        return x * 0.5 + 0.25


class TemplateMarks(nn.Module):
    """A face_restore stand-in that returns black with a white 5x5 square on each template point:
    pasted back, the squares must land on the landmarks the caller gave."""

    def __init__(self, size: int, template: list) -> None:
        super().__init__()
        marks = torch.zeros(1, 3, size, size)
        for i in range(5):
            x, y = int(round(template[2 * i])), int(round(template[2 * i + 1]))
            marks[:, :, y - 2:y + 3, x - 2:x + 3] = 1.0
        self.register_buffer("marks", marks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.marks.expand(x.shape[0], 3, x.shape[2], x.shape[3]).to(x.dtype) + x * 0.0


class FixedDetections(nn.Module):
    """face_detect fixture: four fixed candidates [N, 4, 15] placed as fractions of the input size,
    so the library's thresholding, suppression and coordinate mapping can be checked exactly.

    A (score 0.95) and B (0.93) overlap with IoU 0.60; C (0.91) stands alone; D scores only 0.5.
    """

    def __init__(self) -> None:
        super().__init__()
        rows = []
        for x0, y0, side, score in [(0.10, 0.10, 0.30, 0.95), (0.16, 0.12, 0.30, 0.93),
                                    (0.55, 0.50, 0.25, 0.91), (0.70, 0.05, 0.20, 0.50)]:
            marks = [(0.30, 0.40), (0.70, 0.40), (0.50, 0.60), (0.35, 0.80), (0.65, 0.80)]
            row = [x0, y0, x0 + side, y0 + side, score]
            for mx, my in marks:
                row += [x0 + mx * side, y0 + my * side]
            rows.append(row)
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.float32))
        # Which columns are x (scaled by the width), y (by the height) or the score (kept).
        xs = [1.0 if c in (0, 2) or (c >= 5 and c % 2 == 1) else 0.0 for c in range(15)]
        ys = [1.0 if c in (1, 3) or (c >= 5 and c % 2 == 0) else 0.0 for c in range(15)]
        self.register_buffer("xs", torch.tensor(xs))
        self.register_buffer("ys", torch.tensor(ys))
        self.register_buffer("keep", torch.tensor([1.0 if c == 4 else 0.0 for c in range(15)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Sizes stay integers (symbolic when exported); no tensor is built from them.
        scale = self.xs * x.shape[3] + self.ys * x.shape[2] + self.keep
        return (self.rows * scale).unsqueeze(0).repeat(x.shape[0], 1, 1)


class NoMetadata(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.0


def _seeded(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return factory().eval()


def _cartoon(name: str, **kw) -> Metadata:
    return Metadata(kind="cartoon", name=name, source="generated by limn_models.fixtures",
                    license="CC0-1.0 (test fixture)", **kw)


def rewrite_package(src: str, dst: str, edit: Callable[[dict], Optional[dict]]) -> None:
    """Copies a compiled package with its limn.json changed by ``edit`` (None drops the file)."""
    import json

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst + ".tmp", "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("/extra/limn.json"):
                record = edit(json.loads(data.decode("utf-8")))
                if record is None:
                    continue
                data = record if isinstance(record, bytes) else json.dumps(record).encode("utf-8")
            zout.writestr(item, data)
    os.replace(dst + ".tmp", dst)


def _package(name: str, path: str) -> None:
    """Compiles one of the .pt2 fixtures (run in a worker process; see write_packages)."""
    face = Metadata(kind="face_restore", name="tiny-face", fixed_height=64, fixed_width=64,
                    face_template=template_at(64), source="generated by limn_models.fixtures",
                    license="CC0-1.0 (test fixture)")
    detect = Metadata(kind="face_detect", name="tiny-detect", size_multiple=32,
                      source="generated by limn_models.fixtures", license="CC0-1.0 (test fixture)")
    if name == "identity.pt2":
        export(Identity(), _cartoon("identity"), path)
    elif name == "tiny_unet.pt2":
        export(_seeded(TinyUNet, 1), _cartoon("tiny-unet", size_multiple=2, tile_margin=8), path)
    elif name == "tiny_face.pt2":
        export(_seeded(TinyUNet, 2), face, path)
    elif name == "tiny_detect.pt2":
        export(FixedDetections(), detect, path)
    elif name == "tiny_unet_bf16.pt2":
        export(_seeded(TinyUNet, 1), _cartoon("tiny-unet-bf16", size_multiple=2), path, precision="bf16")
    else:
        raise ValueError(f"no package fixture {name!r}")


def write_packages(out: str, paths: Dict[str, str]) -> None:
    """Compiled (.pt2) versions of some fixtures, and broken packages (about half a minute). The
    compiles (AOTInductor: one compiler run each) go side by side, one process per core."""

    def path(name: str) -> str:
        paths[name] = os.path.join(out, name)
        return paths[name]

    names = ["identity.pt2", "tiny_unet.pt2", "tiny_face.pt2", "tiny_detect.pt2", "tiny_unet_bf16.pt2"]
    workers = min(len(names), len(os.sched_getaffinity(0)))
    if workers > 1:
        spawn = multiprocessing.get_context("spawn")  # no fork of a process that runs torch threads
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=spawn) as pool:
            for done in [pool.submit(_package, name, path(name)) for name in names]:
                done.result()
    else:
        for name in names:
            _package(name, path(name))

    good = paths["tiny_unet.pt2"]
    with open(good, "rb") as f:
        data = f.read()
    with open(path("truncated.pt2"), "wb") as f:
        f.write(data[: len(data) // 2])
    rewrite_package(good, path("no_metadata.pt2"), lambda r: None)
    rewrite_package(good, path("bad_json.pt2"), lambda r: b"{\"limn_kind\": \"cartoon\", ")
    rewrite_package(good, path("cuda_package.pt2"), lambda r: {**r, "limn_package_device": "cuda"})
    rewrite_package(good, path("future_torch.pt2"), lambda r: {**r, "limn_package_torch_version": "9.9.0"})
    rewrite_package(good, path("alien_cpu.pt2"),
                    lambda r: {**r, "limn_package_cpu_features": r["limn_package_cpu_features"] + " avx1024"})
    rewrite_package(good, path("selftest_mismatch.pt2"),
                    lambda r: {**r, "limn_selftest_output": {**r["limn_selftest_output"],
                                                             "data": r["limn_selftest_input"]["data"]}})


def write_all(out: str) -> Dict[str, str]:
    os.makedirs(out, exist_ok=True)
    paths: Dict[str, str] = {}

    def path(name: str) -> str:
        paths[name] = os.path.join(out, name)
        return paths[name]

    export(Identity(), _cartoon("identity"), path("identity.pt"))
    export(Identity(), _cartoon("fixed-size", fixed_height=32, fixed_width=32), path("fixed_cartoon.pt"))
    export(_seeded(TinyUNet, 1), _cartoon("tiny-unet", size_multiple=2, tile_margin=8),
           path("tiny_unet.pt"))
    face = Metadata(kind="face_restore", name="tiny-face", fixed_height=64, fixed_width=64,
                    face_template=template_at(64), source="generated by limn_models.fixtures",
                    license="CC0-1.0 (test fixture)")
    export(_seeded(TinyUNet, 2), face, path("tiny_face.pt"))
    identity_face = Metadata(kind="face_restore", name="identity-face", fixed_height=64, fixed_width=64,
                             face_template=template_at(64), source="generated by limn_models.fixtures",
                             license="CC0-1.0 (test fixture)")
    export(Identity(), identity_face, path("identity_face.pt"))
    # A cartoon head network: aligned 64x64 face crops on GPEN's template scaled to 64.
    head = _cartoon("tiny-head", size_multiple=2, tile_margin=8, role="head", crop_size=64,
                    face_template=template_at(64))
    export(_seeded(TinyUNet, 4), head, path("tiny_head.pt"))
    marks = Metadata(kind="face_restore", name="template-marks", fixed_height=64, fixed_width=64,
                     face_template=template_at(64), source="generated by limn_models.fixtures",
                     license="CC0-1.0 (test fixture)")
    export(TemplateMarks(64, template_at(64)), marks, path("template_marks.pt"))
    detect = Metadata(kind="face_detect", name="tiny-detect", size_multiple=32,
                      source="generated by limn_models.fixtures", license="CC0-1.0 (test fixture)")
    export(FixedDetections(), detect, path("tiny_detect.pt"))
    export(ProducesNaN(), _cartoon("nan"), path("nan.pt"), selftest=False)
    export(OverflowsInHalf(), _cartoon("overflows-in-half"), path("overflow_half.pt"))
    export(ImpreciseInHalf(), _cartoon("imprecise-in-half"), path("imprecise_half.pt"))
    export(CoarseInBf16(), _cartoon("coarse-in-bf16"), path("coarse_bf16.pt"))
    export(MixedAttributes(), _cartoon("mixed-attributes"), path("mixed_attributes.pt"))
    export(WrongShape(), _cartoon("wrong-shape"), path("wrong_shape.pt"), selftest=False)
    export(OutOfMemoryAbove4096(), _cartoon("oom-above-4096px", tile_margin=4), path("oom_above_4096px.pt"))

    future = _cartoon("future")
    future.format_version = 99
    export(Identity(), future, path("future_version.pt"), selftest=False, validate=False)
    bad_kind = _cartoon("bad-kind")
    bad_kind.kind = "painting"
    export(Identity(), bad_kind, path("bad_kind.pt"), selftest=False, validate=False)
    export(Identity(), _cartoon("bad-multiple", size_multiple=0), path("bad_multiple.pt"),
           selftest=False, validate=False)

    # A self-test vector that does not match what the network computes.
    mismatch = export(Identity(), _cartoon("selftest-mismatch"), path("selftest_mismatch.pt"))
    mismatch.limn_selftest_output = 1.0 - mismatch.limn_selftest_input
    atomic_save(mismatch, paths["selftest_mismatch.pt"])

    atomic_save(torch.jit.script(NoMetadata()), path("no_metadata.pt"))

    with open(paths["identity.pt"], "rb") as f:
        good = f.read()
    with open(path("truncated.pt"), "wb") as f:
        f.write(good[: len(good) // 2])
    with open(path("garbage.pt"), "wb") as f:
        f.write(bytes((i * 7919 + 13) % 251 for i in range(4096)))
    with open(path("empty.pt"), "wb") as f:
        pass
    # A state dict saved by torch.save: a zip archive, but not TorchScript (the usual mistake of
    # passing official .pth weights straight to the library).
    torch.save(_seeded(TinyUNet, 3).state_dict(), path("state_dict.pth"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a model")
    with open(path("plain.zip"), "wb") as f:
        f.write(buf.getvalue())
    write_packages(out, paths)
    # Digests for the tests of the expected_sha256 load option (sha256sum's format).
    import hashlib

    lines = []
    for name in ("identity.pt", "tiny_unet.pt2"):
        with open(paths[name], "rb") as f:
            lines.append(f"{hashlib.sha256(f.read()).hexdigest()}  {name}\n")
    with open(path("SHA256SUMS"), "w") as f:
        f.writelines(lines)
    return paths


FIXTURES = (
    "identity.pt fixed_cartoon.pt tiny_unet.pt tiny_face.pt identity_face.pt template_marks.pt "
    "tiny_head.pt tiny_detect.pt nan.pt overflow_half.pt imprecise_half.pt coarse_bf16.pt mixed_attributes.pt "
    "wrong_shape.pt oom_above_4096px.pt "
    "future_version.pt bad_kind.pt bad_multiple.pt selftest_mismatch.pt no_metadata.pt "
    "truncated.pt garbage.pt empty.pt state_dict.pth plain.zip "
    "identity.pt2 tiny_unet.pt2 tiny_face.pt2 tiny_detect.pt2 tiny_unet_bf16.pt2 truncated.pt2 "
    "no_metadata.pt2 bad_json.pt2 cuda_package.pt2 future_torch.pt2 alien_cpu.pt2 "
    "selftest_mismatch.pt2 SHA256SUMS"
).split()


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m limn_models.fixtures",
        description="Write limn's test fixtures (tiny models and broken files) into a folder.",
    )
    parser.add_argument("out", help="output folder (created if missing)")
    args = parser.parse_args(argv)
    written = write_all(args.out)
    missing = [name for name in FIXTURES if name not in written]
    if missing:
        print(f"fixtures not written: {missing}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} fixtures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
