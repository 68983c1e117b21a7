#!/usr/bin/env bash
# The GPU harness's dry run on this machine (CTest gpu_harness): fills .deps if it is missing, then
# `LIMN_GPU_DRY_RUN=1 bash tests/gpu/run.sh all` with its own build folder and logs in OUT_DIR.
#   dry_run.sh OUT_DIR      (from the repository root)
set -euo pipefail
out=${1:?usage: dry_run.sh OUT_DIR}
if [ ! -f .deps/data/retinaface-mobilenet0.25.pth ] || [ ! -d .deps/usr/include/doctest ]; then
  if [ ! -f ../shared/data/retinaface-mobilenet0.25.pth ]; then
    echo "skipped: no ../shared/data/retinaface-mobilenet0.25.pth, which the GPU check needs"
    exit 77
  fi
  bash tests/gpu/prepare_deps.sh
fi
export LIMN_GPU_DRY_RUN=1 OUT="$out" LIMN_GPU_BUILD=${LIMN_GPU_BUILD:-build-gpu-dry} LIMN_GPU_BUDGET=${LIMN_GPU_BUDGET:-540}
exec bash tests/gpu/run.sh all
