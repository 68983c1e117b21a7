"""Compiled limn model packages (``.pt2``): ``torch.export`` + AOTInductor, with the limn metadata
and self-test inside.

A package is a PT2 archive (the zip that ``torch._inductor.aoti_load_package`` and LibTorch's
``AOTIModelPackageLoader`` read) holding the compiled model under the name ``model`` and one extra
file, ``extra/limn.json``: the same ``limn_*`` metadata a TorchScript file carries, plus what the
compilation fixed (device, precision, input layout, the CPU features the code may use). The format
is specified in ``models/FORMAT.md``; the library reads it in ``src/pt2.cpp``.

A package is native code built for one device kind, one precision and (on the CPU) the
instruction set of the machine that compiled it. Load only packages you trust.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import os
import platform
import tempfile
import zipfile
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

METADATA_FILE = "limn.json"  # stored as extra/limn.json in the archive
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Largest side a compiled package accepts (the library's default limit is 64 Mpx).
MAX_SIDE = 1 << 16

# x86 features a compiled CPU package records when the exporting CPU has them (AOTInductor
# compiles with -march=native, so the code may use any of them). Names as in /proc/cpuinfo; the
# library checks each one against the CPU it runs on (src/cpu_features.cpp keeps the same list).
X86_FEATURES = (
    "sse4_1 sse4_2 popcnt movbe abm bmi1 bmi2 f16c fma avx avx2 avx_vnni avx512f avx512dq "
    "avx512cd avx512bw avx512vl avx512ifma avx512vbmi avx512_vbmi2 avx512_vnni avx512_bitalg "
    "avx512_vpopcntdq avx512_bf16 avx512_fp16 avx512_vp2intersect gfni vaes vpclmulqdq amx_tile "
    "amx_bf16 amx_int8 amx_fp16"
).split()


def cpu_features() -> List[str]:
    """The recorded x86 features this CPU has (empty off x86-64 Linux)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [name for name in X86_FEATURES if name in have]
    except OSError:
        pass
    return []


def metadata_record(meta: Any) -> Dict[str, Any]:
    """The ``limn_*`` fields of ``meta`` (a ``limn_models.metadata.Metadata``) by name (ints,
    floats, strings and lists): what a package's ``limn.json`` holds beside its package fields."""
    return {"limn_" + f.name: copy.deepcopy(getattr(meta, f.name)) for f in dataclasses.fields(meta)}


def _tensor_json(t: torch.Tensor) -> Dict[str, Any]:
    data = t.detach().to(torch.float32).contiguous().cpu().numpy().astype("<f4").tobytes()
    return {"dtype": "float32", "shape": list(t.shape), "data": base64.b64encode(data).decode("ascii")}


def _tensor_from_json(v: Dict[str, Any]) -> torch.Tensor:
    import numpy as np

    raw = base64.b64decode(v["data"])
    return torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy()).reshape(v["shape"])


def dynamic_shapes(meta: Any) -> Dict[str, Dict[int, Any]]:
    """The export's symbolic sizes: any batch; H and W free multiples of the size rule (or the
    fixed size, static). With no size rule the export finds the smallest size the graph takes
    (:func:`min_input_size` reads it back)."""
    from torch.export import Dim

    dims: Dict[int, Any] = {0: Dim("batch", min=1)}
    if meta.fixed_height <= 0:
        m = meta.size_multiple
        if m > 1:
            dims[2] = m * Dim("rows", min=1)
            dims[3] = m * Dim("cols", min=1)
        else:
            dims[2] = Dim.AUTO
            dims[3] = Dim.AUTO
    return {"x": dims}


def min_input_size(program: Any) -> Tuple[int, int]:
    """(height, width): the smallest input the exported program accepts (e.g. 33 for a detector
    whose coarsest feature map must hold more than one cell)."""
    placeholder = [n for n in program.graph.nodes if n.op == "placeholder"][-1]
    out = []
    for d in placeholder.meta["val"].shape[2:]:
        if isinstance(d, torch.SymInt):
            lower = 1
            for sym in d.node.expr.free_symbols:
                r = program.range_constraints.get(sym)
                if r is not None and r.lower > 1:
                    # the size is m * sym for a size rule m; sym >= lower means size >= m * lower
                    lower = max(lower, int(d.node.expr.subs(sym, int(r.lower))))
            out.append(lower)
        else:
            out.append(int(d))
    return out[0], out[1]


def _example_input(meta: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if meta.fixed_height > 0:
        h, w = meta.fixed_height, meta.fixed_width
    else:
        # Representative, unequal sizes whose downsampled maps stay apart and above 1 (an
        # example of 1 or of equal sides would let the export specialise them).
        m = meta.size_multiple
        h, w = (96 + m - 1) // m * m, (128 + m - 1) // m * m
    # Batch 2: an example of 1 would let the export specialise the batch to 1.
    return torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(7)).to(device, dtype)


class _Forward(nn.Module):
    """Gives the exported graph one input named ``x``, whatever the network calls it."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def compile_package(net: nn.Module, meta: Any, path: str, selftest: Optional[Tuple[torch.Tensor, torch.Tensor]],
                    device: str = "cpu", precision: str = "fp32") -> None:
    """Exports ``net`` (RGB [0,1] in and out, fp32 CPU module) with dynamic sizes, compiles it
    with AOTInductor for ``device`` and ``precision`` and writes a package to ``path`` (through a
    temporary name). ``selftest`` is ``(input, fp32 CPU output)`` or None. Before writing, the
    compiled package is loaded and checked against the eager module on the self-test input."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, not {precision!r}")
    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, not {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda needs a usable CUDA device at compile time: a CUDA "
                           "package is compiled for the GPU it is built on")
    dtype = PRECISIONS[precision]
    module = _Forward(net).eval().to(dev, dtype)
    example = _example_input(meta, dev, dtype)
    from torch.export.pt2_archive._package import package_pt2

    with torch.no_grad():  # freezing (weights folded and prepacked) applies to inference graphs
        program = torch.export.export(module, (example,), dynamic_shapes=dynamic_shapes(meta))
        files = torch._inductor.aot_compile(program.module(), (example,),
                                            options={"aot_inductor.package": True, "freezing": True})
    min_height, min_width = min_input_size(program)
    record: Dict[str, Any] = {
        **metadata_record(meta),
        "limn_package_device": dev.type,
        "limn_package_precision": precision,
        "limn_package_input_layout": "contiguous",
        "limn_package_min_height": min_height,
        "limn_package_min_width": min_width,
        "limn_package_torch_version": torch.__version__.split("+")[0],
        "limn_package_cpu_features": " ".join(cpu_features()) if dev.type == "cpu" else "",
    }
    if selftest is not None:
        record["limn_selftest_input"] = _tensor_json(selftest[0])
        record["limn_selftest_output"] = _tensor_json(selftest[1])

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # A private folder beside the target: the archive is named after its file, so the temporary
    # copy keeps the final name until it is renamed into place.
    tmp_dir = tempfile.mkdtemp(prefix=".limn-", dir=directory)
    tmp = os.path.join(tmp_dir, os.path.basename(path) if path.endswith(".pt2") else "model.pt2")
    try:
        package_pt2(tmp, aoti_files={"model": files},
                    extra_files={METADATA_FILE: json.dumps(record, ensure_ascii=False)})
        _check_package(tmp, net, example, dtype)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        os.rmdir(tmp_dir)


def _check_package(path: str, net: nn.Module, example: torch.Tensor, dtype: torch.dtype) -> None:
    """Loads the package and compares it with the eager module on the example input."""
    compiled = torch._inductor.aoti_load_package(path)
    with torch.no_grad():
        got = compiled(example)
        want = net.to(example.device, dtype)(example)
    got = got[0] if isinstance(got, (list, tuple)) else got
    err = (got.float() - want.float()).abs().max().item()
    allowed = 1e-3 if dtype == torch.float32 else 0.25
    if not err <= allowed:
        raise RuntimeError(f"the compiled package differs from the eager module by {err} "
                           f"(allowed {allowed})")


def is_package(path: str) -> bool:
    """True if ``path`` is a zip archive holding ``extra/limn.json`` or AOTInductor code."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/extra/" + METADATA_FILE) or "/data/aotinductor/" in n
                   for n in z.namelist())


def read_record(path: str) -> Optional[Dict[str, Any]]:
    """The package's ``limn.json`` as a dict (tensors decoded), or None if it has none."""
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith("/extra/" + METADATA_FILE)]
        if not names:
            return None
        record = json.loads(z.read(names[0]).decode("utf-8"))
    for key in ("limn_selftest_input", "limn_selftest_output"):
        if isinstance(record.get(key), dict):
            record[key] = _tensor_from_json(record[key])
    return record
