#!/usr/bin/env bash
# The Python package as users get it: builds the wheel (pip, no build isolation), installs it into a
# fresh virtual environment that holds only torch and numpy (linked from this interpreter, not
# downloaded), checks `import limn` there, then adds pytest and Pillow and runs tests/package against the
# installed package, outside the source tree.
#   run.sh BUILD_DIR SOURCE_DIR      (CTest test "python_package"; env: PYTHON, LIMN_JOBS, LIMN_BIN_DIR, ...)
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
py=${PYTHON:-python3}
wheels="$build/package/wheels"
venv="$build/package/venv"
rm -rf "$wheels" "$venv"
mkdir -p "$wheels"

echo "== building the wheel"
jobs=${LIMN_JOBS:-2}  # compile jobs (each LibTorch translation unit needs over 1 GB)
"$py" -m pip wheel --quiet --no-build-isolation --no-deps -C "build.tool-args=-j$jobs" -w "$wheels" "$src"
wheel=$(ls "$wheels"/limn-*.whl)

echo "== fresh virtual environment with torch and numpy only"
"$py" -m venv "$venv"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$py" "$src/tests/package/link_env.py" "$site" torch numpy | tr '\n' ' '
echo
"$venv/bin/python" -m pip install --quiet --no-index "$wheel"
cd "$build/package"  # not the source tree: `import limn` must find the installed package
"$venv/bin/python" -I -c 'import limn; print(limn.__file__); print(limn.build_info())'

echo "== pytest on the installed package"
"$py" "$src/tests/package/link_env.py" "$site" pytest pillow >/dev/null
exec "$venv/bin/python" -I -m pytest -q -p no:cacheprovider --rootdir "$build/package" "$src/tests/package"
