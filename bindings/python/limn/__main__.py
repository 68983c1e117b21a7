"""The `limn` command of the installed package (also `python -m limn`): the command-line tool.

`limn models ...` (list, fetch, path, remove models by name) runs limn_models.fetch here;
`limn serve ...` runs the web service (limn.serve.cli; needs the extra: pip install 'limn[serve]');
`limn cartoonize|restore-faces ... --ray [ADDR]` runs the batch on a Ray cluster (limn.ray.batch;
pip install 'limn[ray]');
every other subcommand runs the CLI binary installed with the package (limn/bin/limn), which finds
its built-in cartoon model beside it (limn/models).
"""

import glob
import importlib.util
import os
import sys
from typing import Dict, List, Optional

_SERVE_DEPS = ("fastapi", "starlette", "uvicorn", "multipart", "python_multipart", "prometheus_client", "pydantic")


def _serve(args: List[str]) -> int:
    try:
        from limn.serve import cli
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in _SERVE_DEPS:
            raise
        print(f"limn serve: {e.name} is not installed; install the server with: pip install 'limn[serve]'",
              file=sys.stderr)
        return 3
    return cli.main(args)


def _ray_batch(command: str, args: List[str], exe: str) -> int:
    try:
        from limn.ray import batch
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in _SERVE_DEPS + ("ray",):
            raise
        print(f"limn {command} --ray: {e.name} is not installed; install it with: pip install 'limn[ray]'",
              file=sys.stderr)
        return 3
    return batch.main(command, args, exe)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "models":
        from limn_models import fetch

        return fetch.main(args[1:])
    if args and args[0] == "serve":
        return _serve(args[1:])
    exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "limn")
    if not os.access(exe, os.X_OK):
        print(f"limn: the command-line tool is missing from this installation ({exe})", file=sys.stderr)
        return 3
    if args and args[0] in ("cartoonize", "restore-faces") and any(a == "--ray" or a.startswith("--ray=")
                                                                  for a in args[1:]):
        return _ray_batch(args[0], args[1:], exe)
    for stream in (sys.stdout, sys.stderr):  # None where the caller closed it (`>&-`)
        if stream is not None:
            stream.flush()
    os.execve(exe, [exe] + args, _binary_env())
    return 3  # not reached


def _binary_env() -> Dict[str, str]:
    """The CLI binary's environment. Its libraries find LibTorch relative to the package
    ($ORIGIN/../torch/lib and ../nvidia/*/lib), which holds only where torch is installed in the
    same site-packages; where it is elsewhere (a venv made with --system-site-packages, the user
    site, conda layers), the libraries of the torch this Python imports go on LD_LIBRARY_PATH."""
    env = dict(os.environ)
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return env
    torch_site = os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))
    package_site = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.realpath(torch_site) == os.path.realpath(package_site):
        return env
    dirs = [os.path.join(torch_site, "torch", "lib")] + sorted(glob.glob(os.path.join(torch_site, "nvidia", "*", "lib")))
    dirs = [d for d in dirs if os.path.isdir(d)]
    if env.get("LD_LIBRARY_PATH"):
        dirs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(dirs)
    return env


if __name__ == "__main__":
    sys.exit(main())
