"""Writing and reading limn model files: a TorchScript archive whose top module carries typed
``limn_*`` attributes. The format (version 1) is specified in ``models/FORMAT.md``; the library
reads it in ``src/torchscript.cpp`` and validates it in ``src/metadata.cpp``.
"""



import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .pt2 import compile_package, is_package, read_record

FORMAT_VERSION = 1
KINDS = ("cartoon", "face_restore", "face_detect")


@dataclass
class Metadata:
    """What a limn model file says about itself (see the module docstring)."""

    kind: str
    name: str
    size_multiple: int = 1
    fixed_height: int = 0
    fixed_width: int = 0
    tile_margin: int = 0
    face_template: List[float] = field(default_factory=list)
    source: str = ""
    license: str = ""
    format_version: int = FORMAT_VERSION
    # Documentation of a detector's graph (its decoding is inside): the priors per level, their
    # variances and clipping (prior_* on face_detect only), and the mean the graph subtracts
    # from its 0..255 BGR input.
    prior_min_sizes: List[List[int]] = field(default_factory=list)
    prior_steps: List[int] = field(default_factory=list)
    prior_variances: List[float] = field(default_factory=list)
    prior_clip: bool = False
    input_mean_bgr: List[float] = field(default_factory=list)
    # "" (the kind's own use) or "head": a cartoon network for aligned face crops of crop_size
    # pixels with the face on face_template (DCT-Net's head network).
    role: str = ""
    crop_size: int = 0

    def validate(self) -> None:
        """Raises ValueError when the metadata would be refused by the library."""
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if not self.name:
            raise ValueError("name must not be empty")
        if self.size_multiple < 1:
            raise ValueError(f"size_multiple must be >= 1, not {self.size_multiple}")
        if (self.fixed_height > 0) != (self.fixed_width > 0) or self.fixed_height < 0:
            raise ValueError("fixed_height and fixed_width must both be > 0 or both be 0")
        if self.tile_margin < 0:
            raise ValueError(f"tile_margin must be >= 0, not {self.tile_margin}")
        if len(self.face_template) not in (0, 10):
            raise ValueError("face_template must hold 10 values (5 points) or none")
        if self.kind == "face_restore" and len(self.face_template) != 10:
            raise ValueError("a face_restore model needs a 5-point face_template")
        if self.role == "head":
            if self.kind != "cartoon":
                raise ValueError("role 'head' is for cartoon models only")
            if len(self.face_template) != 10:
                raise ValueError("a head model needs a 5-point face_template at its crop size")
            if self.crop_size <= 0 or self.crop_size % self.size_multiple:
                raise ValueError("a head model needs crop_size > 0, a multiple of size_multiple")
        elif self.role:
            raise ValueError(f"role must be 'head' or empty, not {self.role!r}")
        elif self.crop_size:
            raise ValueError("crop_size is for head models (role 'head') only")
        if len(self.input_mean_bgr) not in (0, 3):
            raise ValueError("input_mean_bgr must hold 3 values (B, G, R) or none")
        priors = bool(self.prior_min_sizes or self.prior_steps or self.prior_variances
                      or self.prior_clip)
        if priors and self.kind != "face_detect":
            raise ValueError("prior_* fields are for face_detect models only")
        if priors:
            if not self.prior_steps or len(self.prior_min_sizes) != len(self.prior_steps):
                raise ValueError("prior_min_sizes and prior_steps need one entry per level")
            if any(not sizes or min(sizes) <= 0 for sizes in self.prior_min_sizes):
                raise ValueError("each level of prior_min_sizes needs one or more sizes > 0")
            if min(self.prior_steps) <= 0:
                raise ValueError("prior_steps must be > 0")
            if len(self.prior_variances) != 2 or min(self.prior_variances) <= 0:
                raise ValueError("prior_variances must hold 2 values > 0 (centre, size)")

    def selftest_size(self) -> Tuple[int, int]:
        """A small input size (height, width) that fits the size rule."""
        if self.fixed_height > 0:
            return self.fixed_height, self.fixed_width
        m = self.size_multiple
        side = ((40 + m - 1) // m) * m  # above 32: a compiled detector's smallest input is 33
        return side, side + m  # not square, so a transposed layout would be caught


class LimnModule(nn.Module):
    """Top module of a limn file: the network plus its metadata as typed attributes."""

    limn_format_version: int
    limn_kind: str
    limn_name: str
    limn_size_multiple: int
    limn_fixed_height: int
    limn_fixed_width: int
    limn_tile_margin: int
    limn_face_template: List[float]
    limn_source: str
    limn_license: str
    limn_selftest_input: torch.Tensor
    limn_selftest_output: torch.Tensor
    limn_prior_min_sizes: List[List[int]]
    limn_prior_steps: List[int]
    limn_prior_variances: List[float]
    limn_prior_clip: bool
    limn_input_mean_bgr: List[float]
    limn_role: str
    limn_crop_size: int

    def __init__(self, net: nn.Module, meta: Metadata) -> None:
        super().__init__()
        self.net = net
        self.limn_format_version = meta.format_version
        self.limn_kind = meta.kind
        self.limn_name = meta.name
        self.limn_size_multiple = meta.size_multiple
        self.limn_fixed_height = meta.fixed_height
        self.limn_fixed_width = meta.fixed_width
        self.limn_tile_margin = meta.tile_margin
        self.limn_face_template = [float(v) for v in meta.face_template]
        self.limn_source = meta.source
        self.limn_license = meta.license
        self.limn_selftest_input = torch.empty(0)
        self.limn_selftest_output = torch.empty(0)
        self.limn_prior_min_sizes = [[int(s) for s in level] for level in meta.prior_min_sizes]
        self.limn_prior_steps = [int(s) for s in meta.prior_steps]
        self.limn_prior_variances = [float(v) for v in meta.prior_variances]
        self.limn_prior_clip = bool(meta.prior_clip)
        self.limn_input_mean_bgr = [float(v) for v in meta.input_mean_bgr]
        self.limn_role = meta.role
        self.limn_crop_size = int(meta.crop_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def atomic_save(module: torch.jit.ScriptModule, path: str) -> None:
    """Saves to a temporary name beside ``path`` and renames, so no half-written file is left."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".limn-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        torch.jit.save(module, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


FORMATS = ("torchscript", "pt2")


def format_for_path(path: str) -> str:
    """The format a path's extension names: ``.pt2`` is a compiled package, anything else
    TorchScript."""
    return "pt2" if path.lower().endswith(".pt2") else "torchscript"


def export(
    net: nn.Module,
    meta: Metadata,
    path: str,
    selftest: bool = True,
    seed: int = 0,
    validate: bool = True,
    fmt: Optional[str] = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> Optional[torch.jit.ScriptModule]:
    """Writes ``net`` (RGB [0,1] in and out) with ``meta`` as a limn file at ``path``.

    ``fmt`` is ``"torchscript"`` (a scripted archive; returned) or ``"pt2"`` (a package compiled
    with AOTInductor for ``device`` and ``precision``, see :mod:`limn_models.pt2`; None is
    returned); None picks it from the extension. With ``selftest`` a small random input and the
    fp32 CPU output are stored in the file, so the library can check the model on any device and
    precision at load time. ``validate=False`` is only for writing deliberately broken test
    fixtures.
    """
    fmt = fmt or format_for_path(path)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    if validate:
        meta.validate()
    if fmt == "pt2":
        pair = None
        if selftest:
            x = _selftest_input(meta, seed)
            with torch.no_grad():
                pair = (x, net.eval()(x).detach().float().contiguous())
        compile_package(net.eval(), meta, path, pair, device=device, precision=precision)
        return None
    if device != "cpu" or precision != "fp32":
        raise ValueError("a TorchScript file is device- and precision-neutral: --device and "
                         "--precision apply to .pt2 packages only")
    module = LimnModule(net, meta).eval()
    scripted = torch.jit.script(module)
    if selftest:
        x = _selftest_input(meta, seed)
        with torch.no_grad():
            y = scripted(x)
        scripted.limn_selftest_input = x
        scripted.limn_selftest_output = y.detach().float().contiguous()
    atomic_save(scripted, path)
    return scripted


def _selftest_input(meta: Metadata, seed: int) -> torch.Tensor:
    h, w = meta.selftest_size()
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=gen)


def metadata_from(lookup: Callable[[str], Any]) -> Metadata:
    """Metadata from ``lookup("limn_<field>")`` (a module's attribute or a record's entry); fields
    added after the first files were written may be absent and take their defaults."""
    values: Dict[str, Any] = {}
    for f in dataclasses.fields(Metadata):
        try:
            value = lookup("limn_" + f.name)
        except (AttributeError, KeyError):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise
            continue
        if isinstance(value, (list, tuple)):
            value = [list(v) if isinstance(v, (list, tuple)) else v for v in value]
        values[f.name] = value
    return Metadata(**values)


def read_metadata(path_or_module: Union[str, torch.jit.ScriptModule]) -> Optional[Metadata]:
    """Reads the metadata of a limn file, TorchScript or compiled package (None if it has none)."""
    if isinstance(path_or_module, str):
        if is_package(path_or_module):
            record = read_record(path_or_module)
            return None if record is None else metadata_from(record.__getitem__)
    module = (
        torch.jit.load(path_or_module, map_location="cpu")
        if isinstance(path_or_module, str)
        else path_or_module
    )
    if not hasattr(module, "limn_format_version"):
        return None
    return metadata_from(lambda name: getattr(module, name))


def main(argv: "Optional[List[str]]" = None) -> int:
    """``python -m limn_models.metadata FILE...``: prints each file's limn metadata."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m limn_models.metadata",
                                     description="Print the limn metadata of model files.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="limn model file (.pt or .pt2)")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            meta = read_metadata(path)
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            print(f"{path}: cannot read: {str(e).splitlines()[0]}", file=sys.stderr)
            status = 1
            continue
        if meta is None:
            print(f"{path}: a model file without limn metadata", file=sys.stderr)
            status = 1
            continue
        print(f"{path}:")
        for f in dataclasses.fields(meta):
            print(f"  {f.name}: {getattr(meta, f.name)}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
