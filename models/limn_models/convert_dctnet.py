"""Convert an official DCT-Net frozen TensorFlow graph (``cartoon_h.pb`` / ``cartoon_bg.pb``) to a limn file.

    python -m limn_models.convert_dctnet cartoon_h.pb -o dctnet-anime-head.pt [--name NAME]

The ModelScope ``damo/cv_unet_person-image-cartoon*_compound-models`` repositories ship the
DCT-Net generator as TF1 frozen graphs written by
``modelscope/exporters/cv/cartoon_translation_exporter.py``
(``tf.graph_util.convert_variables_to_constants``).  Each of the 36 generator variables is a
``Const`` node named like the variable (``generator/Conv/weights``, ``generator/Conv/biases``,
..., ``generator/block_3/conv2/weights``, ..., ``generator/Conv_9/biases``; kernels HWIO) that
an ``Identity`` node ``<name>/read`` forwards to ``Conv2D`` / ``BiasAdd``.  The file itself
carries no import prefix (the pipelines add ``model_head/`` etc. when importing), but a prefix is
accepted.  The graph also holds the guided filter's box kernels (``[3, 3, C, 1]`` float
constants, all ``1/9``) and a few scalar/int constants of the pre/post-processing; those are
recognised and not reported.

The constants are read with ``limn_models.tf_graph`` (no TensorFlow needed), checked (every
variable present once, expected shape, finite values), loaded into ``DCTNetGenerator`` with
``dctnet.load_tf_variables``, wrapped in ``DCTNetRGB`` (RGB [0, 1] in/out, the BGR / [-1, 1] /
clip handling of the official exporter inside) and written with ``metadata.export``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import dctnet, tf_graph
from .metadata import Metadata, export

__all__ = ["SOURCE", "LICENSE", "ConversionReport", "extract_generator_variables", "convert", "main"]

SOURCE = "ModelScope damo/cv_unet_person-image-cartoon_compound-models (DCT-Net), {file}"
LICENSE = "Apache-2.0 (DCT-Net code and model card, as published by ModelScope/DAMO)"

_WEIGHT_SUFFIXES = ("/weights", "/biases", "/kernel", "/bias")
_VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp", "Placeholder", "PlaceholderWithDefault")


@dataclass
class ConversionReport:
    """What ``convert`` found and wrote."""

    out_path: str
    name: str
    prefix: str  # import prefix in front of ``generator/`` ('' for the official files)
    used: List[str] = field(default_factory=list)  # Const node names loaded, in layer order
    unused: List[Tuple[str, Tuple[int, ...]]] = field(default_factory=list)  # weight-looking, not used
    box_kernels: List[str] = field(default_factory=list)  # guided-filter kernels seen
    warnings: List[str] = field(default_factory=list)


def _expected_shapes(scope: str = dctnet.TF_SCOPE) -> Dict[str, Tuple[int, ...]]:
    """TF variable name -> TF shape (weights HWIO, biases [out])."""
    shapes: Dict[str, Tuple[int, ...]] = {}
    for tf_layer, _path, cin, cout, k, _stride in dctnet.TF_LAYERS:
        shapes[f"{scope}/{tf_layer}/weights"] = (k, k, cin, cout)
        shapes[f"{scope}/{tf_layer}/biases"] = (cout,)
    return shapes


def _is_box_kernel(value: np.ndarray) -> bool:
    """A depthwise ``[k, k, C, 1]`` mean kernel as built by the official ``tf_box_filter``."""
    if value.dtype.kind != "f" or value.ndim != 4 or value.shape[3] != 1:
        return False
    k = value.shape[0]
    if value.shape[1] != k or k % 2 == 0 or value.size == 0:
        return False
    return bool(np.allclose(value, 1.0 / (k * k), rtol=1e-6, atol=0.0))


def extract_generator_variables(
    graph: tf_graph.TFGraph, consts: Dict[str, np.ndarray], scope: str = dctnet.TF_SCOPE
) -> Tuple[str, Dict[str, np.ndarray]]:
    """Finds the 36 generator constants; returns ``(import prefix, {TF variable name: float32 array})``.

    Raises ``ValueError`` naming every missing variable (and saying so when it exists but is
    not a constant, i.e. the graph was not frozen), on several candidate generators, on a
    wrong dtype or shape and on non-finite values.
    """
    expected = _expected_shapes(scope)
    by_prefix: Dict[str, Dict[str, str]] = {}  # prefix -> {variable: const name}
    for name in consts:
        for var in expected:
            if name == var or (name.endswith("/" + var)):
                prefix = name[: len(name) - len(var)]
                by_prefix.setdefault(prefix, {})[var] = name
                break
    if not by_prefix:
        others = [n for n, op, _ in graph.node_list() if any(n.endswith(v) for v in expected)]
        hint = ""
        if others:
            ops = sorted({graph.node(n).op for n in others})
            hint = (f" (the variables exist as {'/'.join(ops)} nodes, not Const: "
                    "the graph does not look frozen)")
        elif not consts:
            hint = " (the file has no Const nodes: is it a frozen TensorFlow GraphDef?)"
        raise ValueError(f"no DCT-Net generator variables ('{scope}/Conv/weights', ...) found{hint}")
    if len(by_prefix) > 1:
        best = max(len(v) for v in by_prefix.values())
        full = [p for p, v in by_prefix.items() if len(v) == best]
        if len(full) > 1:
            shown = ", ".join(repr(p) for p in sorted(full))
            raise ValueError(f"several DCT-Net generators in one graph (import prefixes {shown})")
        prefix = full[0]
    else:
        prefix = next(iter(by_prefix))
    found = by_prefix[prefix]
    missing = [v for v in expected if v not in found]
    if missing:
        notes = []
        node_ops = {n: op for n, op, _ in graph.node_list()}
        for v in missing:
            op = node_ops.get(prefix + v)
            notes.append(prefix + v + (f" (a {op} node, not a Const: graph not frozen?)"
                                       if op and op != "Const" else ""))
        raise ValueError(f"missing DCT-Net variable(s) in the graph: {', '.join(notes)}")
    out: Dict[str, np.ndarray] = {}
    for var, shape in expected.items():
        name = found[var]
        value = consts[name]
        if value.dtype.kind != "f":
            raise ValueError(f"constant '{name}' has dtype {value.dtype}, expected a float tensor")
        if tuple(value.shape) != shape:
            raise ValueError(
                f"constant '{name}' has shape {list(value.shape)}, expected {list(shape)}")
        value = value.astype(np.float32)
        if not np.all(np.isfinite(value)):
            raise ValueError(f"constant '{name}' holds non-finite values")
        out[var] = value
    return prefix, out


def _structure_warnings(graph: tf_graph.TFGraph, used: Dict[str, str]) -> List[str]:
    """Checks that each weight feeds a Conv2D and each bias a BiasAdd/Add (possibly via Identity)."""
    consumers: Dict[str, List[Tuple[str, str]]] = {}
    for name, op, inputs in graph.node_list():
        for inp in inputs:
            if inp.startswith("^"):
                continue
            src = inp.split(":", 1)[0]
            consumers.setdefault(src, []).append((name, op))

    def reaches(start: str, ops: Sequence[str]) -> bool:
        seen = set()
        todo = [start]
        while todo:
            cur = todo.pop()
            for name, op in consumers.get(cur, []):
                if op in ops:
                    return True
                if op == "Identity" and name not in seen:
                    seen.add(name)
                    todo.append(name)
        return False

    warnings = []
    for var, const_name in used.items():
        ops = ("Conv2D",) if var.endswith("/weights") else ("BiasAdd", "Add", "AddV2")
        if not reaches(const_name, ops):
            warnings.append(f"'{const_name}' does not feed a {'/'.join(ops)} node")
    return warnings


def default_name(pb_path: str) -> str:
    stem = os.path.splitext(os.path.basename(pb_path))[0]
    return f"DCT-Net {stem}"


def is_head_file(pb_path: str) -> bool:
    """Whether the file name says head network: ``cartoon_h.pb`` (``cartoon_anime_h.pb``, ...)."""
    base = os.path.basename(pb_path).lower()
    return base.startswith("cartoon") and base.endswith("_h.pb")


def convert(pb_path: str, out_path: str, name: Optional[str] = None, source: Optional[str] = None,
            license: Optional[str] = None, head: Optional[bool] = None, **target: Any) -> ConversionReport:
    """Converts ``pb_path`` to a limn file at ``out_path``; see the module docstring. ``source`` and
    ``license`` go into the metadata (default: the anime repository's and :data:`LICENSE`).
    ``head`` marks the file as DCT-Net's head network (role, 288 px crop and template in the
    metadata); None: when the file is named like one (:func:`is_head_file`).
    ``target`` (``fmt``, ``device``, ``precision``) is passed to :func:`limn_models.metadata.export`.

    Raises ``ValueError`` (bad or unexpected graph) or ``OSError`` (unreadable file); nothing is
    written then.
    """
    graph = tf_graph.read_graph_def(pb_path)
    try:
        consts = graph.constants(strict=False)
    except tf_graph.GraphDefError as e:
        raise tf_graph.GraphDefError(f"{pb_path}: {e}") from None
    prefix, variables = extract_generator_variables(graph, consts)
    used_names = {var: prefix + var for var in variables}

    generator = dctnet.load_tf_variables(dctnet.DCTNetGenerator(), variables).eval()

    report = ConversionReport(out_path=out_path, name=name or default_name(pb_path), prefix=prefix,
                              used=list(used_names.values()))
    used_set = set(used_names.values())
    gf_kernel = 2 * dctnet.GUIDED_FILTER_RADIUS + 1
    for const_name, value in consts.items():
        if const_name in used_set:
            continue
        if _is_box_kernel(value):
            report.box_kernels.append(const_name)
            if value.shape[0] != gf_kernel:
                report.warnings.append(
                    f"box-filter kernel '{const_name}' is {value.shape[0]}x{value.shape[1]}, the "
                    f"converted guided filter uses radius {dctnet.GUIDED_FILTER_RADIUS} "
                    f"({gf_kernel}x{gf_kernel})")
            continue
        looks_like_weight = const_name.endswith(_WEIGHT_SUFFIXES) or (
            value.dtype.kind == "f" and value.size >= 2)
        if looks_like_weight:
            report.unused.append((const_name, tuple(value.shape)))
    if report.unused:
        shown = ", ".join(f"{n} {list(s)}" for n, s in report.unused[:10])
        more = f" and {len(report.unused) - 10} more" if len(report.unused) > 10 else ""
        report.warnings.append(f"{len(report.unused)} weight-like constant(s) not used: {shown}{more}")
    report.warnings.extend(_structure_warnings(graph, used_names))

    meta = Metadata(
        kind="cartoon",
        name=report.name,
        size_multiple=dctnet.SIZE_MULTIPLE,
        tile_margin=dctnet.TILE_MARGIN,
        source=source or SOURCE.format(file=os.path.basename(pb_path)),
        license=license or LICENSE,
        **(dctnet.head_metadata_fields() if (is_head_file(pb_path) if head is None else head) else {}),
    )
    export(dctnet.DCTNetRGB(generator).eval(), meta, out_path, **target)
    return report


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m limn_models.convert_dctnet",
        usage="%(prog)s PB_FILE -o OUT.pt|OUT.pt2 [--name NAME] [--format F --device D --precision P]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("pb_file", metavar="PB_FILE", help="DCT-Net frozen graph (cartoon_h.pb, cartoon_bg.pb)")
    parser.add_argument("-o", "--out", required=True, metavar="OUT.pt",
                        help="limn model file to write (.pt TorchScript, .pt2 compiled package)")
    parser.add_argument("--name", help="model name stored in the file (default: 'DCT-Net <file stem>')")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--head", dest="head", action="store_true", default=None,
                      help="a head network (aligned 288x288 face crops); default: when named cartoon_h.pb")
    role.add_argument("--background", dest="head", action="store_false",
                      help="a whole-photo network, whatever the file's name")
    from .export import add_target_arguments, target_of

    add_target_arguments(parser)
    args = parser.parse_args(argv)
    try:
        report = convert(args.pb_file, args.out, args.name, head=args.head, **target_of(args))
    except (OSError, ValueError, RuntimeError) as e:
        message = " ".join(str(e).split())
        print(f"convert_dctnet: error: {message}", file=sys.stderr)
        return 1
    for warning in report.warnings:
        print(f"convert_dctnet: warning: {warning}", file=sys.stderr)
    where = f" (import prefix '{report.prefix}')" if report.prefix else ""
    print(f"wrote {args.out}: cartoon model '{report.name}', {len(report.used)} variables "
          f"from {os.path.basename(args.pb_file)}{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
