#!/usr/bin/env bash
# The Python package as users get it: builds the wheel (pip, no build isolation), installs it into a
# fresh virtual environment that holds only torch and numpy (linked from this interpreter, not
# downloaded), checks `import limn` there, then adds pytest and Pillow and runs tests/package against
# the installed package, outside the source tree.
#   run.sh BUILD_DIR SOURCE_DIR [--install-only]
#          (CTest test "python_package"; env: PYTHON, LIMN_JOBS, LIMN_BIN_DIR, ...; --install-only stops
#          once `import limn` works in BUILD_DIR/package/venv)
#
# LIMN_PACKAGE_FROM_BUILD=1 (the GPU harness, tests/gpu/run.sh): instead of pip compiling the library a
# second time, the package is assembled from BUILD_DIR's own build, which must be configured with
# -DLIMN_BUILD_PYTHON=ON: `cmake --install --component python` (extension, liblimn.so, CLI, built-in
# model) plus the Python sources, the same files the wheel holds, put into the environment.
# Either way BUILD_DIR/package/venv/bin/python then runs the installed package (the GPU benchmarks
# use it).
#
# The environment is made with `venv --without-pip` and filled by this interpreter's pip
# (`pip --python VENV`), so an interpreter without ensurepip works too.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
py=${PYTHON:-python3}
wheels="$build/package/wheels"
venv="$build/package/venv"
rm -rf "$wheels" "$venv"
mkdir -p "$wheels"

echo "== fresh virtual environment with torch and numpy only"
"$py" -m venv --without-pip "$venv"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$py" "$src/tests/package/link_env.py" "$site" torch numpy | tr '\n' ' '
echo

if [ "${LIMN_PACKAGE_FROM_BUILD:-0}" = 1 ]; then
  echo "== the package from $build (cmake --install --component python)"
  grep -q '^LIMN_BUILD_PYTHON:BOOL=ON' "$build/CMakeCache.txt" ||
    { echo "$build is not configured with -DLIMN_BUILD_PYTHON=ON" >&2; exit 1; }
  cmake --install "$build" --component python --prefix "$site" >/dev/null
  cp -r "$src/bindings/python/limn/." "$site/limn/"
  cp -r "$src/models/limn_models" "$site/"
  find "$site/limn" "$site/limn_models" -name __pycache__ -prune -exec rm -rf {} +
  # What the wheel's entry point does (pyproject.toml, [project.scripts]).
  printf '#!%s\nimport sys\nfrom limn.__main__ import main\nsys.exit(main())\n' "$venv/bin/python" \
    > "$venv/bin/limn"
  chmod +x "$venv/bin/limn"
else
  echo "== building the wheel"
  jobs=${LIMN_JOBS:-2}  # compile jobs (each LibTorch translation unit needs over 1 GB)
  "$py" -m pip wheel --quiet --no-build-isolation --no-deps -C "build.tool-args=-j$jobs" -w "$wheels" "$src"
  wheel=$(ls "$wheels"/limn-*.whl)
  "$py" -m pip --python "$venv/bin/python" install --quiet --no-deps --no-index "$wheel"
fi
cd "$build/package"  # not the source tree: `import limn` must find the installed package
"$venv/bin/python" -I -c 'import limn; print(limn.__file__); print(limn.build_info())'

# The test tools, and `limn serve` with its extra and its test clients (tests/serve, CTest python_serve),
# and Ray (tests/ray, CTest python_ray) where it is installed.
"$py" "$src/tests/package/link_env.py" "$site" pytest pillow scikit-image fastapi uvicorn python-multipart \
  prometheus-client httpx 'tritonclient[http]' playwright 'ray[serve,data]' >/dev/null
[ "${3:-}" = --install-only ] && exit 0

echo "== pytest on the installed package"
exec "$venv/bin/python" -I -m pytest -q -p no:cacheprovider --rootdir "$build/package" "$src/tests/package"
