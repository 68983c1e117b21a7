"""Makes a virtual environment hold exactly some installed distributions and their dependencies,
by linking them from this interpreter's site-packages instead of downloading them again (torch is
~2.7 GB): `python link_env.py VENV_SITE_PACKAGES torch numpy 'tritonclient[http]'` (extras are
followed too). Prints what it linked."""
import os
import re
import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement


def closure(names):
    """The distributions `names` need (with the extras they ask for), by normalized name."""
    env = default_environment()
    seen, todo = {}, [(r.name, frozenset(r.extras)) for r in map(Requirement, names)]
    done = set()
    while todo:
        raw, extras = todo.pop()
        name = re.sub(r"[-_.]+", "-", raw).lower()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed here
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = req.marker is None or any(
                req.marker.evaluate({**env, "extra": e}) for e in ("", *extras))
            if wanted:
                todo.append((req.name, frozenset(req.extras)))
    return seen


def main():
    site, names = sys.argv[1], sys.argv[2:]
    for name, dist in sorted(closure(names).items()):
        root = str(dist.locate_file(""))
        tops = {str(f).split("/")[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in sorted(tops):
            src, dst = os.path.join(root, top), os.path.join(site, top)
            if os.path.exists(src) and not os.path.lexists(dst):
                os.symlink(src, dst)
        print(f"{name} {dist.version}")


if __name__ == "__main__":
    main()
