"""limn's models by name: the registry (``registry.json`` beside this file) and the local cache.

A name such as ``dctnet-anime`` or ``retinaface`` stands for published original files (their URLs,
sizes and SHA-256 where known, and their licence) and the converter that makes a limn file of
them. ``python -m limn_models.fetch`` downloads, verifies and converts them into the cache; the CLI
(``-m NAME``) and ``limn.Model(NAME)`` then find the converted file there.

The cache is ``$LIMN_HOME``, else ``$XDG_CACHE_HOME/limn``, else ``~/.cache/limn``:

    models/NAME.pt          the converted limn file (TorchScript: any device, any precision)
    models/NAME.cpu-P.pt2   the same network compiled for this CPU in precision P (bf16 where the
                            CPU computes bf16 natively and it stays within 45 dB of fp32, else
                            fp32): what a name runs on the CPU in precision "auto" (or P), the
                            TorchScript file being the fallback (other device, other precision,
                            a package this CPU cannot run)
    downloads/NAME/FILE     the verified original files (FILE.part while downloading)
    trusted.json            SHA-256 of originals the registry has no checksum for, recorded at
                            their first verified download (trust on first use)

``$LIMN_REGISTRY`` names another registry file (tests, private mirrors). :func:`check_cache`
raises CacheError, naming the folder and the problem, where the cache cannot be read (not a
folder) or, for fetching and removing, written (no permission, a read-only filesystem); a cache
filled beforehand and then made read-only still serves its models.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional

__all__ = ["FileSpec", "License", "Entry", "RegistryError", "CacheError", "load", "cache_dir", "check_cache",
           "cache_writable", "model_file",
           "package_file", "package_files", "candidates",
           "looks_like_name", "resolve", "REGISTRY_FILE"]

REGISTRY_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "registry.json")
CONVERTERS = ("dctnet", "gpen", "retinaface")
KINDS = ("cartoon", "face_restore", "face_detect")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class RegistryError(ValueError):
    """The registry file is missing, not JSON, or an entry is malformed."""


class CacheError(RuntimeError):
    """The cache folder cannot be used; the message names the folder and why."""


@dataclass(frozen=True)
class FileSpec:
    name: str                      # the original file name (what --from looks for)
    url: str                       # where its publisher serves it
    size: Optional[int] = None     # bytes, when known
    sha256: Optional[str] = None   # lowercase hex, when known
    checksum_source: str = ""      # where the size and checksum come from


@dataclass(frozen=True)
class License:
    spdx: str
    text: str
    restricted: bool  # True: fetching needs an explicit acceptance


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    description: str
    converter: str
    source: str
    license: License
    files: List[FileSpec] = field(default_factory=list)
    config: str = ""  # converter option (GPEN configuration)


def _need(d: dict, key: str, kind: type, where: str):
    if key not in d or not isinstance(d[key], kind):
        raise RegistryError(f"{where}: '{key}' must be a {kind.__name__}")
    return d[key]


def _file(d: object, where: str) -> FileSpec:
    if not isinstance(d, dict):
        raise RegistryError(f"{where}: a file must be an object")
    name = _need(d, "name", str, where)
    if not name or "/" in name or name in (".", ".."):
        raise RegistryError(f"{where}: invalid file name {name!r}")
    url = _need(d, "url", str, where)
    if not url.startswith(("https://", "http://")):
        raise RegistryError(f"{where}: url must be http(s), not {url!r}")
    size = d.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise RegistryError(f"{where}: size must be a positive integer or null")
    sha = d.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise RegistryError(f"{where}: sha256 must be 64 lowercase hex digits or null")
    return FileSpec(name, url, size, sha, str(d.get("checksum_source", "")))


def load(path: Optional[str] = None) -> Dict[str, Entry]:
    """The registry's entries by name (``$LIMN_REGISTRY``, else the bundled file)."""
    path = path or os.environ.get("LIMN_REGISTRY") or REGISTRY_FILE
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise RegistryError(f"cannot read the model registry {path}: {e.strerror}") from None
    except ValueError as e:
        raise RegistryError(f"the model registry {path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != 1 or not isinstance(doc.get("models"), dict):
        raise RegistryError(f"{path}: expected {{\"format\": 1, \"models\": {{...}}}}")
    entries: Dict[str, Entry] = {}
    for name, e in doc["models"].items():
        where = f"{path}: model '{name}'"
        if not _NAME.match(name):
            raise RegistryError(f"{where}: names are lowercase letters, digits, '-' and '_'")
        if not isinstance(e, dict):
            raise RegistryError(f"{where}: an entry must be an object")
        kind = _need(e, "kind", str, where)
        converter = _need(e, "converter", str, where)
        if kind not in KINDS:
            raise RegistryError(f"{where}: kind must be one of {', '.join(KINDS)}")
        if converter not in CONVERTERS:
            raise RegistryError(f"{where}: converter must be one of {', '.join(CONVERTERS)}")
        lic = _need(e, "license", dict, where)
        license = License(_need(lic, "spdx", str, where), _need(lic, "text", str, where),
                          bool(_need(lic, "restricted", bool, where)))
        files = [_file(f, f"{where}, file {i}") for i, f in enumerate(_need(e, "files", list, where))]
        if len(files) != 1:
            raise RegistryError(f"{where}: the converters take exactly one original file")
        entries[name] = Entry(name, kind, _need(e, "description", str, where), converter,
                              _need(e, "source", str, where), license, files, str(e.get("config", "")))
    return entries


def cache_dir() -> str:
    """``$LIMN_HOME``, else ``$XDG_CACHE_HOME/limn``, else ``~/.cache/limn``."""
    home = os.environ.get("LIMN_HOME")
    if home:
        return os.path.abspath(home)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "limn")


def _cache_setting() -> str:
    if os.environ.get("LIMN_HOME"):
        return "$LIMN_HOME"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return "$XDG_CACHE_HOME" if xdg and os.path.isabs(xdg) else "the default, ~/.cache/limn"


def _unreadable(root: str) -> Optional[str]:
    """Why the cache cannot be read, or None (a cache not made yet is fine where it can be)."""
    existing = root
    while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)  # the nearest part of the path that exists
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder" if os.path.isfile(existing) else f"{existing} is not a folder"
    if existing == root:
        try:
            os.listdir(root)
        except OSError as e:
            return f"cannot read it: {e.strerror}"
    return None


def _unwritable(root: str) -> Optional[str]:
    """Why new files cannot be written in the cache's folders (made if missing), or None."""
    for folder in (root, os.path.join(root, "models"), os.path.join(root, "downloads")):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            return f"cannot create {folder}: {e.strerror}"
        try:
            fd, probe = tempfile.mkstemp(prefix=".limn-probe-", dir=folder)
            os.close(fd)
            os.remove(probe)
        except OSError as e:
            return f"cannot write in {folder}: {e.strerror}"
    return None


def check_cache(write: bool = False) -> str:
    """The cache folder, checked: it can be read (or made), and with ``write`` new files can be
    written in it and in its ``models`` and ``downloads`` folders (made if missing). Raises
    CacheError naming the folder, the problem and the setting that chose it."""
    root = cache_dir()
    problem = _unreadable(root) or (_unwritable(root) if write else None)
    if problem:
        raise CacheError(f"cannot use the model cache {root} (from {_cache_setting()}): {problem}; "
                         f"set $LIMN_HOME to a folder you can write to")
    return root


def cache_writable() -> bool:
    """Whether the cache looks writable (a cheap check for listings; :func:`check_cache` tries)."""
    existing = cache_dir()
    while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    return os.path.isdir(existing) and os.access(existing, os.W_OK | os.X_OK)


def model_file(name: str) -> str:
    """Where the converted limn file of registry model ``name`` is (or will be) in the cache."""
    return os.path.join(cache_dir(), "models", name + ".pt")


PACKAGE_PRECISIONS = ("bf16", "fp32")  # the CPU packages `limn models fetch` compiles, fastest first


def package_file(name: str, precision: str) -> str:
    """Where the CPU package of registry model ``name`` compiled for ``precision`` is (or will be)."""
    return os.path.join(cache_dir(), "models", f"{name}.cpu-{precision}.pt2")


def package_files(name: str) -> List[str]:
    """The CPU packages of ``name`` in the cache, fastest precision first."""
    return [p for p in (package_file(name, q) for q in PACKAGE_PRECISIONS) if os.path.isfile(p)]


def candidates(source: str, on_cpu: bool, precision: str = "auto") -> List[str]:
    """The files to load for ``source``, to be tried in order: a path as it is; for a fetched
    registry name on the CPU in precision "auto" (or a package's own), its CPU packages first, then
    its TorchScript file. Raises FileNotFoundError as :func:`resolve` does."""
    path = resolve(source)
    if path == source:
        return [source]
    packages = []
    if on_cpu:
        packages = [p for p in package_files(source)
                    if precision == "auto" or p.endswith(f".cpu-{precision}.pt2")]
    return packages + [path]


def looks_like_name(text: str) -> bool:
    """A registry-style name (no folder, no extension), as opposed to a file path."""
    return bool(_NAME.match(text))


def resolve(source: str) -> str:
    """``source`` itself if it is an existing path; for a registry name, its converted file in the
    cache. Raises FileNotFoundError with the fetch command for a name not fetched yet, or naming
    ``source`` when it is neither a file nor a known name."""
    if os.path.exists(source) or not looks_like_name(source):
        return source
    path = model_file(source)
    if os.path.isfile(path):
        return path
    try:
        known = source in load()
    except RegistryError:
        known = False
    if known:
        raise FileNotFoundError(f"model '{source}' is not fetched yet: run `limn models fetch {source}` "
                                f"(it would be at {path})")
    raise FileNotFoundError(f"no file '{source}', and no model of that name in limn's registry "
                            f"(`limn models list` shows them)")
