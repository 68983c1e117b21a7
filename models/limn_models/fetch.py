"""Fetch, verify, convert and cache the official weights of limn's models by name.

    python -m limn_models.fetch list
    python -m limn_models.fetch fetch NAME [--from DIR_OR_URL] [--accept-license] [--force] [--no-compile]
    python -m limn_models.fetch path NAME
    python -m limn_models.fetch remove NAME

(``limn models ...`` runs the same.) ``fetch`` shows the weights' licence, downloads the original
files from their publisher (a progress bar, resuming after a cut connection, retries with
timeouts), checks their size and SHA-256, converts them with limn's converters and places the limn
file in the cache (see ``limn_models.registry``), each step to a temporary name first. A licence
that restricts use (GPEN: academic, non-commercial) needs ``--accept-license``. Where the registry
knows no checksum, the first verified download's is recorded and later fetches must match it
(trust on first use).

Then, unless ``--no-compile``, it compiles the network for this CPU (a ``.pt2`` package: minutes,
once; it needs a C++ compiler) in the precision that is fastest here: bf16 where the CPU computes
bf16 natively (AMX-BF16 or AVX512-BF16) and the package's self-test stays within 45 dB of fp32,
else fp32. Loading the name on the CPU in precision "auto" then runs that package, and the
TorchScript file everywhere else (BENCHMARKS.md: on an AVX512-BF16 CPU the bf16 package ran 2.2x
to 2.5x as fast as the TorchScript file in fp32). Face detectors stay TorchScript files, the
faster format for them. A compile that fails leaves the TorchScript file, which works on every
device, and says why.

``--from`` takes the original files by their original names from a local folder or a mirror URL,
for machines without internet; given, it is always used, never a copy downloaded before.
``$LIMN_FETCH_HOSTS`` (``https://host=http://mirror,...``) sends requests for a host to a mirror
that keeps the host's layout.

What is kept after a failure: nothing of a download that fails its size or SHA-256 check (a
kept original that no longer matches is deleted too). A conversion that fails deletes the
original unless a known SHA-256 (the registry's, or one recorded on first use) vouches for it:
an unvouched file may be the broken part, so the next fetch takes a fresh copy (from ``--from``
or the publisher); a vouched one is the published file, the fault lies elsewhere (memory, a
converter bug), so it is kept, the next fetch converts it again and ``--force`` downloads it
again. The message says which happened and what to run.

The cache must be a folder that can be read; ``fetch`` and ``remove`` must also write there. A
cache that cannot be used (``$LIMN_HOME`` naming a file, no permission, a read-only filesystem)
fails the command with one line naming the folder and the problem. A read-only cache filled
beforehand still serves ``list``, ``path`` and models already fetched.

Exit status: 0 done, 1 the download, check or conversion failed or the cache cannot be used,
2 bad command line (an unknown name, a licence not accepted).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Dict, List, Optional

from . import registry
from .registry import Entry, FileSpec

__all__ = ["FetchError", "LicenseNotAccepted", "fetch", "remove", "main"]

CHUNK = 1 << 20
USER_AGENT = "limn-fetch/0.1 (+https://github.com/limn)"


class FetchError(RuntimeError):
    """A download, check or conversion failed; the message names the URL or file and what to do."""


class LicenseNotAccepted(FetchError):
    """The weights' licence restricts their use and was not accepted."""


# ---- Downloading ---------------------------------------------------------------------------------


def rewrite_url(url: str) -> str:
    """Applies ``$LIMN_FETCH_HOSTS`` (comma-separated ``prefix=replacement`` pairs)."""
    for pair in filter(None, os.environ.get("LIMN_FETCH_HOSTS", "").split(",")):
        prefix, sep, replacement = pair.partition("=")
        if sep and url.startswith(prefix):
            return replacement + url[len(prefix):]
    return url


class Progress:
    """A one-line progress bar on stderr (a line per tenth when stderr is not a terminal)."""

    def __init__(self, label: str, total: Optional[int], quiet: bool) -> None:
        self.label, self.total, self.quiet = label, total, quiet
        self.tty = sys.stderr.isatty()
        self.shown = -1

    def update(self, done: int) -> None:
        if self.quiet:
            return
        mib = done / 1048576
        if self.total:
            frac = min(1.0, done / self.total)
            step = int(frac * 10)
            if not self.tty and step == self.shown:
                return
            self.shown = step
            bar = "#" * int(frac * 30)
            text = f"  {self.label} [{bar:<30}] {mib:7.1f} / {self.total / 1048576:.1f} MiB"
        else:
            text = f"  {self.label} {mib:7.1f} MiB"
            if not self.tty:
                return
        sys.stderr.write(("\r" + text) if self.tty else text + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if not self.quiet and self.tty:
            sys.stderr.write("\n")


def _describe(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        e = e.reason if isinstance(e.reason, BaseException) else e
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(e) or type(e).__name__


def download(url: str, part: str, size: Optional[int], timeout: float, retries: int, quiet: bool,
             label: str) -> None:
    """Downloads ``url`` into ``part``, resuming what ``part`` already holds (HTTP Range), with
    ``retries`` further attempts after a cut connection or a timeout. Raises FetchError."""
    fetch_url = rewrite_url(url)
    progress = Progress(label, size, quiet)
    last: Optional[BaseException] = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(8.0, 0.5 * 2 ** attempt))
        have = os.path.getsize(part) if os.path.exists(part) else 0
        if size is not None and have == size:
            progress.done()
            return
        if size is not None and have > size:
            os.remove(part)  # longer than the file can be: start again
            have = 0
        request = urllib.request.Request(fetch_url, headers={"User-Agent": USER_AGENT})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                resumed = response.status == 206
                mode = "ab" if resumed else "wb"
                done = have if resumed else 0
                length = response.headers.get("Content-Length")
                expected_end = done + int(length) if length and length.isdigit() else None
                with open(part, mode) as out:
                    while True:
                        chunk = response.read(CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        done += len(chunk)
                        progress.update(done)
                if expected_end is not None and done < expected_end:
                    raise ConnectionError(f"connection closed after {done} of {expected_end} bytes")
            progress.done()
            return
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the part is whole (checked next)
                progress.done()
                return
            if e.code in (408, 429) or e.code >= 500:
                last = e
                continue
            raise FetchError(f"cannot download {url}: {_describe(e)}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            last = e
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            if isinstance(reason, (ConnectionRefusedError, socket.gaierror)) and not os.path.exists(part):
                break  # no network or no such host: retrying will not help
            continue
    progress.done()
    raise FetchError(f"cannot download {url}: {_describe(last) if last else 'failed'}")


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


# ---- Checksums: the registry's, or recorded on first use ------------------------------------------


def _trusted_path() -> str:
    return os.path.join(registry.cache_dir(), "trusted.json")


def _trusted() -> Dict[str, Dict[str, object]]:
    try:
        with open(_trusted_path(), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _record_trusted(key: str, sha: str, size: int) -> None:
    data = _trusted()
    data[key] = {"sha256": sha, "size": size, "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_atomic(_trusted_path(), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def verify(entry: Entry, spec: FileSpec, path: str, origin: str) -> str:
    """Checks ``path`` against the registry's (or the first use's) size and SHA-256; returns the
    SHA-256. Raises FetchError naming what differs; the caller deletes the file."""
    size = os.path.getsize(path)
    sha = sha256_of(path)
    key = f"{entry.name}/{spec.name}"
    recorded = _trusted().get(key, {})
    want_size = spec.size if spec.size is not None else recorded.get("size")
    want_sha = spec.sha256 or recorded.get("sha256")
    where = spec.checksum_source or ("the registry" if spec.sha256 else f"the first download ({_trusted_path()})")
    if want_size is not None and size != want_size:
        raise FetchError(f"{spec.name} from {origin} has {size} bytes, expected {want_size} (per {where}): "
                         f"refused, nothing kept")
    if want_sha and sha != want_sha:
        raise FetchError(f"{spec.name} from {origin} has SHA-256 {sha}, expected {want_sha} (per {where}): "
                         f"refused, nothing kept")
    return sha


# ---- Converting ---------------------------------------------------------------------------------


def convert(entry: Entry, original: str, out: str, **target: str) -> None:
    """Writes the limn file for ``entry`` from its verified original file (atomically); ``target``
    (``precision``) for a compiled package (``out`` ending in .pt2)."""
    if entry.converter == "dctnet":
        from . import convert_dctnet

        convert_dctnet.convert(original, out, name=entry.name, source=entry.source,
                               license=entry.license.text, **target)
    elif entry.converter == "gpen":
        from . import export

        export.export_gpen(out, entry.config or "GPEN-BFR-512", original, seed=0, name=entry.name, **target)
    elif entry.converter == "retinaface":
        from . import export

        export.export_retinaface(out, original, name=entry.name, **target)
    else:  # the registry's loader admits only the converters above
        raise FetchError(f"model '{entry.name}': unknown converter {entry.converter!r}")


# ---- Compiling for this CPU ----------------------------------------------------------------------

BF16_FEATURES = ("amx_bf16", "avx512_bf16")  # as src/cpu_features.cpp's native_precisions()
MIN_PSNR = 45.0  # dB, as src/precision.h's kAutoMinPsnr


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware, as the library decides it ($LIMN_CPU_DISABLE
    included)."""
    from . import pt2

    off = set(os.environ.get("LIMN_CPU_DISABLE", "").replace(",", " ").split())
    return any(f in pt2.cpu_features() and f not in off for f in BF16_FEATURES)


def package_psnr(path: str) -> float:
    """PSNR (dB, values in [0, 1]) of a package's output on its self-test input against the fp32
    output recorded with it."""
    import torch

    from . import pt2

    record = pt2.read_record(path)
    x, want = record["limn_selftest_input"], record["limn_selftest_output"]
    model = torch._inductor.aoti_load_package(path)
    with torch.no_grad():
        got = model(x.to(pt2.PRECISIONS[record["limn_package_precision"]]))
    got = got[0] if isinstance(got, (list, tuple)) else got
    mse = float(((got.float() - want.float()) ** 2).mean())
    return 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf


def compile_for_this_cpu(entry: Entry, original: str, say: Callable[[str], None]) -> Optional[str]:
    """Compiles ``entry`` for this CPU into the cache (registry.package_file); returns the package,
    or None where there is none to make (a detector) or the compile failed (said)."""
    if entry.kind == "face_detect":
        return None
    for old in registry.package_files(entry.name):
        os.remove(old)
    precision = "bf16" if native_bf16() else "fp32"
    while True:
        out = registry.package_file(entry.name, precision)
        say(f"compiling {entry.name} for this CPU in {precision} (minutes, once; --no-compile skips it)")
        try:
            convert(entry, original, out, precision=precision)
            psnr = package_psnr(out) if precision == "bf16" else math.inf
        except Exception as e:  # no compiler, out of memory, ...: the TorchScript file still works
            if os.path.exists(out):
                os.remove(out)
            say(f"{entry.name}: could not compile it for this CPU ({_first_line(e)}); the TorchScript file "
                f"runs it everywhere, only slower (`limn models fetch {entry.name}` tries the compile again)")
            return None
        if precision != "bf16":
            return out
        if psnr >= MIN_PSNR:
            say(f"{entry.name}: bf16 is {psnr:.1f} dB from fp32 on its self-test")
            return out
        say(f"{entry.name}: bf16 is only {psnr:.1f} dB from fp32 on its self-test (below {MIN_PSNR:g} dB): "
            f"compiling it in fp32 instead")
        os.remove(out)
        precision = "fp32"


# ---- The commands -------------------------------------------------------------------------------


def _source_of(spec: FileSpec, origin: Optional[str]) -> str:
    if not origin:
        return spec.url
    if origin.startswith(("http://", "https://", "file://")):
        return origin.rstrip("/") + "/" + urllib.parse.quote(spec.name)
    return os.path.join(origin, spec.name)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _obtain(entry: Entry, spec: FileSpec, src: str, origin: Optional[str], final: str, timeout: float,
            retries: int, quiet: bool, say: Callable[[str], None]) -> str:
    """Downloads or copies the original from ``src`` into ``final`` (through ``final``.part),
    verified; returns its SHA-256. Raises FetchError, leaving no unverified file."""
    os.makedirs(os.path.dirname(final), exist_ok=True)
    part = final + ".part"
    if src.startswith(("http://", "https://")):
        say(f"downloading {spec.name} from {src}")
        try:
            download(src, part, spec.size, timeout, retries, quiet, spec.name)
        except FetchError as e:
            where = f"--from with a folder holding {spec.name}" if not origin else "another --from"
            raise FetchError(f"{e}. Without a network: download it by hand from {spec.url} and run "
                             f"`limn models fetch {entry.name} --from FOLDER` ({where})") from None
    else:
        local = src[len("file://"):] if src.startswith("file://") else src
        if not os.path.isfile(local):
            raise FetchError(f"no {spec.name} in {origin} (looked for {local})")
        say(f"copying {spec.name} from {local}")
        shutil.copyfile(local, part)
    try:
        sha = verify(entry, spec, part, src)
    except FetchError:
        os.remove(part)
        raise
    os.replace(part, final)
    return sha


def _conversion_failed(e: BaseException, entry: Entry, final: str, src: str, origin: Optional[str],
                       vouched: bool) -> FetchError:
    """The error for a failed conversion of ``final``, which is deleted first unless a known
    SHA-256 vouches for it (then the file is the published one and the fault lies elsewhere)."""
    name, file = entry.name, os.path.basename(final)
    if vouched:
        return FetchError(f"converting {final} failed: {_first_line(e)}. The file matches its known SHA-256, so "
                          f"it was kept: `limn models fetch {name}` converts it again (once the cause is fixed), "
                          f"`limn models fetch {name} --force` downloads it again first")
    try:
        os.remove(final)
    except OSError as r:
        return FetchError(f"converting {final} failed: {_first_line(e)}, and the file could not be deleted "
                          f"({r.strerror}): delete it, then run `limn models fetch {name}` again")
    if origin:
        retry = f"put a good {file} there and run `limn models fetch {name} --from {shlex.quote(origin)}` again"
    else:
        retry = f"`limn models fetch {name}` downloads it again, or pass a good copy with `--from FOLDER`"
    return FetchError(f"converting {file} from {src} failed: {_first_line(e)}. No known SHA-256 vouches for "
                      f"the file, so it was not kept: {retry}")


def _already_fetched(entry: Entry, out: str, compile: bool, say: Callable[[str], None]) -> str:
    say(f"{entry.name}: already fetched: {out}")
    original = os.path.join(registry.cache_dir(), "downloads", entry.name, entry.files[0].name)
    if compile and not registry.package_files(entry.name) and os.path.isfile(original):
        try:  # fetched before packages existed, or an earlier compile failed
            registry.check_cache(write=True)
        except registry.CacheError as e:
            say(f"{entry.name}: not compiled for this CPU: {e}")
            return out
        package = compile_for_this_cpu(entry, original, say)
        if package:
            say(f"{entry.name}: {package} (on this CPU)")
    return out


def fetch(name: str, origin: Optional[str] = None, accept_license: bool = False, force: bool = False,
          timeout: float = 30.0, retries: int = 4, quiet: bool = False,
          say: Callable[[str], None] = lambda s: print(s, file=sys.stderr), compile: bool = True) -> str:
    """Fetches, verifies and converts registry model ``name`` (and with ``compile`` compiles it for
    this CPU); returns the limn file's path. Raises FetchError (LicenseNotAccepted for a licence
    not accepted), registry.CacheError for a cache it cannot use, KeyError for an unknown name.

    The original comes from ``origin`` whenever one is given, else from the copy downloaded
    before (checked again; deleted if it no longer matches), else from its publisher. A
    conversion that fails deletes an original that no known SHA-256 vouches for, so the next
    fetch takes a fresh copy; one that matched a known SHA-256 is kept (``force`` downloads it
    again)."""
    entries = registry.load()
    if name not in entries:
        raise KeyError(f"no model '{name}' in limn's registry; known: {', '.join(sorted(entries))}")
    entry = entries[name]
    registry.check_cache()
    out = registry.model_file(name)
    if os.path.isfile(out) and not force:
        return _already_fetched(entry, out, compile, say)
    registry.check_cache(write=True)
    say(f"{name}: {entry.description}")
    say(f"licence ({entry.license.spdx}): {entry.license.text}")
    if entry.license.restricted and not accept_license:
        raise LicenseNotAccepted(f"the weights of '{name}' are under a licence that restricts their use "
                                 f"(above); fetch them only if you accept it, with --accept-license")
    spec = entry.files[0]
    final = os.path.join(registry.cache_dir(), "downloads", name, spec.name)
    src = _source_of(spec, origin)
    vouched = bool(spec.sha256) or f"{name}/{spec.name}" in _trusted()  # a SHA-256 it must match
    if force or origin or not os.path.isfile(final):
        sha = _obtain(entry, spec, src, origin, final, timeout, retries, quiet, say)
    else:
        say(f"using {spec.name} downloaded before ({final})")
        try:
            sha = verify(entry, spec, final, final)
        except FetchError:
            os.remove(final)  # as a fresh download's: the next fetch downloads it again
            raise
    os.makedirs(os.path.dirname(out), exist_ok=True)
    say(f"converting {spec.name} to a limn file")
    try:
        convert(entry, final, out)
    except Exception as e:  # the converters raise ValueError, OSError, RuntimeError, MemoryError ...
        raise _conversion_failed(e, entry, final, src, origin, vouched) from None
    if not vouched:
        _record_trusted(f"{name}/{spec.name}", sha, os.path.getsize(final))
        say(f"{spec.name}: the registry has no SHA-256 for it; recorded this download's ({sha}) in "
            f"{_trusted_path()}: later fetches must match it (trust on first use)")
    if compile:
        package = compile_for_this_cpu(entry, final, say)
        if package:
            say(f"{name}: {package} (on this CPU)")
    say(f"{name}: {out}")
    return out


def remove(name: str) -> List[str]:
    """Deletes the converted file, the CPU packages and the downloads of ``name``; returns what
    was removed. Raises registry.CacheError where the cache cannot be read or a file deleted."""
    registry.check_cache()
    folder = os.path.join(registry.cache_dir(), "downloads", name)
    targets = [p for p in [registry.model_file(name)] + registry.package_files(name) if os.path.isfile(p)]
    targets += [folder] if os.path.isdir(folder) else []
    removed: List[str] = []
    for path in targets:
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError as e:
            done = f" (removed {', '.join(removed)})" if removed else ""
            raise registry.CacheError(f"cannot remove {path} from the model cache: {e.strerror}{done}") from None
        removed.append(path)
    return removed


def _list(entries: Dict[str, Entry]) -> None:
    rows = [("name", "kind", "licence", "fetched", "description")]
    for name, e in sorted(entries.items()):
        fetched = "yes" if os.path.isfile(registry.model_file(name)) else "no"
        packages = registry.package_files(name)
        if packages and fetched == "yes":
            fetched = "+" + packages[0].rsplit(".cpu-", 1)[1][:-len(".pt2")]  # e.g. "+bf16": and a package
        lic = e.license.spdx + (" (!)" if e.license.restricted else "")
        rows.append((name, e.kind, lic, fetched, e.description))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]  # the description runs on
    for row in rows:
        print("  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths)) + "  " + row[4])
    writable = "" if registry.cache_writable() else " (not writable: fetch and remove will fail)"
    print(f"\ncache: {registry.cache_dir()}{writable}   (!) restricted licence: fetch needs --accept-license   "
          f"+P: also compiled for this CPU in precision P")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="limn models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="list|fetch|path|remove")
    sub.add_parser("list", help="the models limn knows by name, and which are fetched")
    f = sub.add_parser("fetch", help="download, verify and convert a model into the cache")
    f.add_argument("name")
    f.add_argument("--from", dest="origin", metavar="DIR_OR_URL",
                   help="take the original files, by their original names, from this folder or mirror")
    f.add_argument("--accept-license", action="store_true", help="accept a licence that restricts use")
    f.add_argument("--force", action="store_true", help="download and convert again")
    f.add_argument("--timeout", type=float, default=30.0, help="seconds without data before a retry (30)")
    f.add_argument("--retries", type=int, default=4, help="further attempts after a failure (4)")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.add_argument("--no-compile", action="store_true",
                   help="only the TorchScript file: do not compile a package for this CPU")
    p = sub.add_parser("path", help="print the limn file of a fetched model")
    p.add_argument("name")
    r = sub.add_parser("remove", help="delete a model's limn file and downloads from the cache")
    r.add_argument("name")
    return parser


def _run(args: argparse.Namespace, entries: Dict[str, Entry]) -> int:
    if args.command == "list":
        registry.check_cache()
        _list(entries)
        return 0
    if args.name not in entries:
        print(f"limn models: no model '{args.name}' in the registry; `limn models list` shows them",
              file=sys.stderr)
        return 2
    if args.command == "path":
        registry.check_cache()
        path = registry.model_file(args.name)
        if not os.path.isfile(path):
            print(f"limn models: '{args.name}' is not fetched yet: run `limn models fetch {args.name}`",
                  file=sys.stderr)
            return 1
        print(path)
        return 0
    if args.command == "remove":
        removed = remove(args.name)
        print(f"removed {', '.join(removed)}" if removed else f"'{args.name}' was not in the cache",
              file=sys.stderr)
        return 0
    print(fetch(args.name, args.origin, args.accept_license, args.force, args.timeout,
                max(0, args.retries), args.quiet, compile=not args.no_compile))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args, registry.load())
    except LicenseNotAccepted as e:
        print(f"limn models: {e}", file=sys.stderr)
        return 2
    except (registry.RegistryError, registry.CacheError, FetchError) as e:
        print(f"limn models: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # what the cache checks cannot foresee: a full disk, a folder changed meanwhile
        what = f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)
        print(f"limn models: {what}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
