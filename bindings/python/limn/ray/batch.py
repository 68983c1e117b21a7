"""`limn cartoonize IN... -o OUT --ray [ADDR] [--replicas N]` (and restore-faces): a folder-scale
batch job on Ray Data.

1. The plan is the local command's own: the CLI binary runs with ``--dry-run --json``, so the
   inputs found, the output names, collisions, ``--skip-existing``, ``--recursive``, ``--format``
   and every option check are exactly those of ``limn cartoonize`` without ``--ray``.
2. Ray Data runs ``map_batches`` over the (input, output) pairs with an actor class: each actor
   loads the models once (``--replicas`` actors, ``--cpus-per-replica`` cores and
   ``--gpus-per-replica`` GPUs each, spread over the nodes), reads and decodes its photos, runs
   the model and encodes the result. Inputs and model files must be readable at the same path on
   every node (a shared file system), as for any Ray Data job reading files.
3. This process writes each result as it arrives, through a temporary file renamed into place:
   never a partial file, and each output once, even when a node dies and Ray Data runs its
   photos again on another actor. A photo that fails is listed and the job goes on; run the same
   command with ``--skip-existing`` to do only what is missing.

Exit status as the local command: 0 all done, 1 some photo failed, 2 bad command line, 3 the
model, the device or the cluster could not be used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

__all__ = ["main", "split_args"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_MODEL = 0, 1, 2, 3
_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[A-Za-z0-9_.\-\[\]:]+:[0-9]+)$")


class UsageError(ValueError):
    pass


def split_args(args: List[str]) -> Tuple[List[str], Dict[str, Any]]:
    """The command line -> (the local command's arguments, the Ray options). ``--ray`` takes an
    optional address (``--ray=ADDR``, or the next word when it is auto, local, ray://... or
    host:port and not an existing file)."""
    rest: List[str] = []
    ray_opts: Dict[str, Any] = {"address": None, "replicas": None, "cpus_per_replica": 1.0, "gpus_per_replica": None}
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, value = a.partition("=")
        if name == "--ray":
            if eq:
                ray_opts["address"] = value or None
            elif i + 1 < len(args) and _ADDRESS.match(args[i + 1]) and not os.path.exists(args[i + 1]):
                ray_opts["address"] = args[i + 1]
                i += 1
        elif name in ("--replicas", "--cpus-per-replica", "--gpus-per-replica"):
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"{name} needs a value")
                value = args[i + 1]
                i += 1
            key = name[2:].replace("-", "_")
            try:
                ray_opts[key] = int(value) if key == "replicas" else float(value)
            except ValueError:
                raise UsageError(f"{name} expects a number, not '{value}'")
            if ray_opts[key] < (1 if key == "replicas" else 0) or (key == "cpus_per_replica" and ray_opts[key] <= 0):
                raise UsageError(f"{name} is out of range: {value}")
        elif name in ("-j", "--jobs"):
            raise UsageError(f"{name} is for one machine; with --ray, --replicas N sets how many actors work at once")
        else:
            rest.append(a)
        i += 1
    return rest, ray_opts


def _plan(exe: str, args: List[str]) -> Dict[str, Any]:
    """The local command's plan (``--dry-run --json``); its usage errors exit as they would locally."""
    proc = subprocess.run([exe] + args + ["--dry-run", "--json"], stdout=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    try:
        plan = json.loads(proc.stdout)
    except ValueError as e:
        raise UsageError(f"the plan of {exe} --dry-run --json is not JSON ({e}); is the limn package whole?")
    if plan.get("landmarks"):
        raise UsageError("--landmarks takes one photo; run it without --ray")
    if any(j["in"] == "-" or j["out"] == "-" for j in plan["jobs"]):
        raise UsageError("--ray reads and writes files; - (stdin or stdout) works without --ray")
    for key in ("model", "detector", "head_model"):
        if plan.get(key):
            plan[key] = os.path.abspath(plan[key])
    return plan


class _Worker:
    """A Ray Data actor: the plan's models, loaded once; each batch row is one photo."""

    def __init__(self, plan: Dict[str, Any]) -> None:
        import limn

        import ray

        self.plan = plan
        self.options = plan["options"]
        self.node = ray.get_runtime_context().get_node_id()
        device = limn.resolve_device(plan["device"])
        if plan.get("memory_limit"):
            limn.set_memory_limit(device, int(plan["memory_limit"]))
        restore = plan["command"] == "restore-faces"
        extra = {"max_pixels": int(self.options["max_pixels"])} if "max_pixels" in self.options else {}

        def load(path: str, kind: str) -> "limn.Model":
            return limn.Model(path, device, plan["precision"], kind=kind, **extra)

        self.model = load(plan["model"], "face_restore" if restore else "cartoon")
        self.detector = load(plan["detector"], "face_detect") if plan.get("detector") else None
        self.head = load(plan["head_model"], "cartoon") if plan.get("head_model") else None
        if self.head is not None and self.head.info.role != "head":
            raise limn.WrongModelKindError(f"--head-model '{plan['head_model']}' is not a head model (role 'head')")

    def _run(self, src: str, dst: str) -> Dict[str, Any]:
        import limn

        o, t0 = self.options, time.perf_counter()
        with open(src, "rb") as f:
            data = f.read()
        load = {"max_pixels": int(o["max_pixels"])} if "max_pixels" in o else {}
        image = limn.load_image(data, **load)
        icc = limn.read_icc_profile(data)
        kw: Dict[str, Any] = {k: o[k] for k in ("strength",) if k in o}
        if "threshold" in o and self.detector is not None:
            kw["score_threshold"] = o["threshold"]
        if self.plan["command"] == "restore-faces":
            kw.update({k: o[k] for k in ("min_face_size",) if k in o})
            out, stats = self.model.restore_faces(image, detector=self.detector, return_stats=True, **kw)
        else:
            kw.update({"max_side": o["max_side"]} if "max_side" in o else {})
            kw.update({"tile": o["tile"]} if "tile" in o else {})
            if self.head is not None:
                kw.update({"working_size": o["working_size"]} if "working_size" in o else {})
                kw.update(head_model=self.head, detector=self.detector)
            out, stats = self.model.cartoonize(image, return_stats=True, **kw)
        fmt = os.path.splitext(dst)[1].lower().lstrip(".")  # the library's format names take the extension
        warnings = []
        if fmt in ("jpg", "jpeg") and image.ndim == 3 and image.shape[2] == 4 and (image[..., 3] < 255).any():
            warnings.append(f"{dst}: JPEG has no alpha; the transparency of {src} is dropped (PNG keeps it)")
        if icc and fmt in ("bmp", "tga"):
            warnings.append(f"{dst}: BMP and TGA cannot hold the ICC colour profile of {src}; it is dropped "
                            "(PNG, JPEG and WebP keep it)")
        q = {"quality": int(o["quality"])} if "quality" in o else {}
        encoded = limn.encode_image(out, fmt, icc_profile=icc, **q)
        return {"data": encoded, "node": self.node, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "tiles": stats.tiles, "faces": stats.faces, "faces_skipped": stats.faces_skipped,
                "seconds": time.perf_counter() - t0, "warnings": warnings}

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        import numpy as np

        import limn

        rows: List[Dict[str, Any]] = []
        for index, src, dst in zip(batch["index"], batch["src"], batch["dst"]):
            row: Dict[str, Any] = {"index": int(index), "error": ""}
            try:
                row.update(self._run(str(src), str(dst)))
            except (limn.Error, OSError) as e:
                row["error"] = str(e) if isinstance(e, limn.Error) else f"{e.strerror or e}: {e.filename or src}"
            except Exception as e:  # anything else fails this photo, not the job
                row["error"] = f"{type(e).__name__}: {e}"
            rows.append(row)
        keys = ("index", "error", "data", "node", "width", "height", "tiles", "faces", "faces_skipped", "seconds", "warnings")
        defaults = {"data": b"", "node": self.node, "width": 0, "height": 0, "tiles": 0, "faces": 0, "faces_skipped": 0, "seconds": 0.0,
                    "warnings": []}
        out: Dict[str, Any] = {}
        for k in keys:
            column = [r.get(k, defaults.get(k)) for r in rows]
            out[k] = np.array(column, dtype=object) if k in ("error", "data", "node", "warnings") else np.array(column)
        return out


def _describe(plan: Dict[str, Any], row: Dict[str, Any]) -> str:
    if plan["command"] == "restore-faces":
        what = f"{row['faces']} face{'s' * (row['faces'] != 1)} restored"
        if row["faces_skipped"]:
            what += f", {row['faces_skipped']} skipped (under --min-face-size or outside)"
    else:
        what = f"{row['tiles']} tile{'s' * (row['tiles'] != 1)}"
        if plan.get("head_model"):
            what += f", {row['faces']} face{'s' * (row['faces'] != 1)} stylized"
    return f"{row['width']}x{row['height']}, {what}, {row['seconds']:.2f} s, node {str(row['node'])[:8]}"


def _cluster_replicas(plan: Dict[str, Any], opts: Dict[str, Any]) -> Tuple[int, float]:
    import ray

    res = ray.cluster_resources()
    gpus = opts["gpus_per_replica"]
    if gpus is None:
        gpus = 1.0 if plan["device"] != "cpu" and res.get("GPU", 0) > 0 else 0.0
    replicas = opts["replicas"]
    if replicas is None:
        replicas = int(res.get("GPU", 0) / gpus) if gpus > 0 else int(res.get("CPU", 1) / opts["cpus_per_replica"])
    return max(1, replicas), gpus


def main(command: str, args: List[str], exe: str) -> int:
    """Runs ``limn COMMAND ARGS`` (which hold --ray) on Ray Data; ``exe`` is the CLI binary."""
    try:
        rest, opts = split_args(args)
        plan = _plan(exe, [command] + rest)
    except UsageError as e:
        print(f"limn: {e}\n(`limn --help` shows the usage)", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:
        return int(e.code or 0)
    quiet = "-q" in rest or "--quiet" in rest
    try:
        import ray
    except ModuleNotFoundError:
        print("limn: --ray needs ray; install it with: pip install 'limn[ray]'", file=sys.stderr)
        return EXIT_NO_MODEL
    try:
        ray.init(address=opts["address"], log_to_driver=False, logging_level="WARNING")
    except (ConnectionError, ValueError, RuntimeError) as e:
        print(f"limn: cannot reach the Ray cluster at {opts['address']}: {e}", file=sys.stderr)
        return EXIT_NO_MODEL
    try:
        return _run(plan, opts, quiet)
    finally:
        ray.shutdown()


# What the plan left out, as the CLI says it (plan.cpp's say_skipped).
_SKIPPED = {"skipped_files": " file(s) skipped, not images limn reads:",
            "dangling_links": " dangling symbolic link(s) skipped, they point to nothing:",
            "skipped_folders": " subfolder(s) not entered (-r walks them):"}
_PLAN_LISTS = ("jobs",) + tuple(_SKIPPED)


def _run(plan: Dict[str, Any], opts: Dict[str, Any], quiet: bool) -> int:
    import ray
    import ray.data

    import limn

    jobs = plan["jobs"]
    if not jobs:  # every output exists (--skip-existing): a finished batch, as locally
        if not quiet:
            print("limn: every output exists already (--skip-existing): nothing to do", file=sys.stderr)
        return EXIT_OK
    replicas, gpus = _cluster_replicas(plan, opts)
    replicas = min(replicas, len(jobs))
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_operator_progress_bars = False
    for folder in sorted({os.path.dirname(j["out"]) for j in jobs} - {""}):  # before any work, as locally
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            print(f"limn: cannot create the output folder {folder}: {e.strerror or e}", file=sys.stderr)
            return EXIT_USAGE
    items = [{"index": i, "src": os.path.abspath(j["in"]), "dst": j["out"]} for i, j in enumerate(jobs)]
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # our own progress lines say it
    worker_plan = {k: v for k, v in plan.items() if k not in _PLAN_LISTS}
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _Worker, fn_constructor_kwargs={"plan": worker_plan}, batch_size=1, concurrency=replicas,
        num_cpus=opts["cpus_per_replica"], num_gpus=gpus, scheduling_strategy="SPREAD")
    if not quiet:
        print(f"limn: {plan['command']} of {len(jobs)} photo(s) on Ray ({replicas} actor(s), "
              f"{opts['cpus_per_replica']:g} CPU and {gpus:g} GPU each; cluster "
              f"{ray.get_runtime_context().gcs_address})", file=sys.stderr)
    written, failed, nodes, seconds = set(), [], set(), 0.0
    failed_indices = set()
    t0 = time.perf_counter()
    try:
        for row in ds.iter_rows():
            i = int(row["index"])
            if i in written or i in failed_indices:
                continue  # a photo Ray ran twice (its first actor died): it is written once
            job = jobs[i]
            for w in row["warnings"]:
                print(f"limn: warning: {w}", file=sys.stderr)
            error = row["error"]
            if not error:
                try:
                    limn.write_file(job["out"], bytes(row["data"]))  # atomically, as the library saves
                except limn.Error as e:  # says "cannot write 'OUT': reason"
                    error = str(e)
            if error:
                failed.append((i, error))
                failed_indices.add(i)
                print(f"limn: {job['in']}: {error}", file=sys.stderr)
                continue
            written.add(i)
            nodes.add(str(row["node"]))
            seconds += float(row["seconds"])
            if not quiet:
                print(f"limn: [{len(written) + len(failed)}/{len(jobs)}] {job['in']} -> {job['out']} "
                      f"({_describe(plan, row)})", file=sys.stderr)
    except Exception as e:  # the actors could not start (the model did not load), or the cluster failed
        print(f"limn: the Ray job stopped: {_first_line(e)}", file=sys.stderr)
        _summary(plan, jobs, written, failed, nodes, seconds, time.perf_counter() - t0, quiet=False)
        return EXIT_NO_MODEL if not written and not failed else EXIT_FAILED
    _summary(plan, jobs, written, failed, nodes, seconds, time.perf_counter() - t0, quiet)
    return EXIT_FAILED if failed or len(written) < len(jobs) else EXIT_OK


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    for marker in ("limn.", "Error:"):
        k = text.rfind(marker)
        if k >= 0:
            return text[k:].splitlines()[0]
    return text.splitlines()[-1] if text else type(e).__name__


def _summary(plan: Dict[str, Any], jobs: List[Dict[str, Any]], written: set, failed: List[Tuple[int, str]],
             nodes: set, seconds: float, wall: float, quiet: bool) -> None:
    if failed:
        print(f"limn: {len(failed)} photo(s) failed (the others were written; rerun with --skip-existing "
              "to do only what is missing):", file=sys.stderr)
        for i, error in failed:
            print(f"  {jobs[i]['in']}: {error}", file=sys.stderr)
    if quiet:
        return
    for key, what in _SKIPPED.items():
        paths = plan.get(key) or []
        if paths:
            print(f"limn: {len(paths)}{what} {' '.join(paths[:5])}{' ...' if len(paths) > 5 else ''}",
                  file=sys.stderr)
    if plan.get("skipped_existing"):
        print(f"limn: {plan['skipped_existing']} input(s) skipped, their output exists (--skip-existing)",
              file=sys.stderr)
    done = len(written)
    per = f", {seconds / done:.2f} s per image on an actor" if done else ""
    print(f"limn: {done} of {len(jobs)} images done on {len(nodes)} node(s){per}, {wall:.1f} s in all",
          file=sys.stderr)
