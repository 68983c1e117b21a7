#!/usr/bin/env bash
# Sets up a fresh Debian machine for limn, builds it, and runs the main job. Idempotent: a second
# run installs nothing and rebuilds only what changed (ninja + ccache, at most 2 compile jobs).
#
#   ./setup.sh                      install, build, install the Python package, cartoonize the
#                                   sample portrait
#   ./setup.sh --no-run             install and build only (no Python package, no main job)
#   ./setup.sh PHOTO                ... and cartoonize PHOTO (JPEG, PNG, BMP, ...) instead
#   ./setup.sh --model M.pt|NAME [PHOTO] ... with another cartoon model (a file, or a name fetched
#                                      with `limn models fetch`, e.g. dctnet-anime)
#
# Environment: LIMN_BUILD_DIR (default: build), LIMN_JOBS (default: 2), LIMN_DEVICE (default auto).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
BUILD=${LIMN_BUILD_DIR:-build}
JOBS=${LIMN_JOBS:-2}
RUN=1
PHOTO=""
MODEL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-run) RUN=0 ;;
    --model) MODEL="${2:?--model needs a file}"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) PHOTO="$1" ;;
  esac
  shift
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# 1. Debian packages (only the missing ones).
DEBS=(build-essential cmake ninja-build ccache pkg-config python3 python3-pip
      doctest-dev libstb-dev libwebp-dev libtiff-dev pybind11-dev abigail-tools clang-14 libclang-rt-14-dev)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. PyPI packages: LibTorch comes from the torch wheel (CUDA 13.0 build), pinned.
PY=${PYTHON:-python3}
need_pip=()
"$PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.split("+")[0] == "2.11.0" else 1)' \
  2>/dev/null || need_pip+=("torch==2.11.0")
"$PY" -c 'import numpy' 2>/dev/null || need_pip+=(numpy)
"$PY" -c 'import skimage' 2>/dev/null || need_pip+=(scikit-image)
"$PY" -c 'import pytest' 2>/dev/null || need_pip+=(pytest)
# The Python package's build backend, used without build isolation (the torch above is the one).
"$PY" -c 'import scikit_build_core' 2>/dev/null || need_pip+=("scikit-build-core>=0.10")
"$PY" -c 'import pybind11' 2>/dev/null || need_pip+=("pybind11>=2.10")
# `limn serve` (the package's extra "serve"; the package itself is installed with --no-deps below).
for mod_pkg in fastapi:fastapi uvicorn:uvicorn python_multipart:python-multipart prometheus_client:prometheus-client; do
  "$PY" -c "import ${mod_pkg%%:*}" 2>/dev/null || need_pip+=("${mod_pkg#*:}")
done
if [ ${#need_pip[@]} -gt 0 ]; then
  say "installing from PyPI: ${need_pip[*]} (torch is ~2.7 GB with its CUDA libraries)"
  PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install --quiet "${need_pip[@]}"
fi

# 3. Configure once, then build what changed.
if [ ! -f "$BUILD/build.ninja" ]; then
  say "configuring $BUILD"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DPython3_EXECUTABLE="$(command -v "$PY")" >"$BUILD.configure.log" 2>&1 \
    || { cat "$BUILD.configure.log"; exit 1; }
fi
say "building ($JOBS jobs)"
ninja -C "$BUILD" -j "$JOBS" >"$BUILD.build.log" 2>&1 || { tail -50 "$BUILD.build.log"; exit 1; }

[ "$RUN" -eq 1 ] || exit 0

# 4. The Python package (`import limn`), built against the torch above; incremental after the
#    first time (build-python/).
say "installing the Python package (pip install --no-build-isolation .)"
PIP_BREAK_SYSTEM_PACKAGES=1 CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" "$PY" -m pip install --quiet \
  --no-build-isolation --no-deps . >"$BUILD.python.log" 2>&1 || { tail -30 "$BUILD.python.log"; exit 1; }
(cd / && "$PY" -c 'import limn; print(limn.build_info().splitlines()[0], "for Python at", limn.__file__)')

# 5. The main job: export the built-in cartoon model and cartoonize a portrait with the CLI.
export PYTHONPATH="$ROOT/models${PYTHONPATH:+:$PYTHONPATH}"
OUT="$ROOT/out"
mkdir -p "$OUT" "$BUILD/models"
BUILTIN="$BUILD/models/classical-cartoon.pt"
if [ ! -f "$BUILTIN" ] || [ -n "$(find models/limn_models -newer "$BUILTIN" -name '*.py' | head -1)" ]; then
  say "exporting the built-in cartoon model to $BUILTIN"
  "$PY" -m limn_models.export cartoon-standin -o "$BUILTIN"
fi
MODEL=${MODEL:-$BUILTIN}
if [ -z "$PHOTO" ]; then
  PHOTO="$OUT/astronaut.png"
  "$PY" - "$PHOTO" <<'PYEOF'
import sys
import skimage.data
from PIL import Image
# Public-domain NASA portrait shipped with scikit-image.
Image.fromarray(skimage.data.astronaut()).save(sys.argv[1])
PYEOF
fi
RESULT="$OUT/$(basename "${PHOTO%.*}")-$(basename "${MODEL%.pt}").png"
"$BUILD/examples/limn" cartoonize "$PHOTO" -o "$RESULT" --model "$MODEL" --device "${LIMN_DEVICE:-auto}"
say "result: $RESULT"
