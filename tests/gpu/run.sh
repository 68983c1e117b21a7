#!/usr/bin/env bash
# The GPU check, in two phases, each one device call. Run ON the GPU machine (device tool) from
# the repository root, after tests/gpu/prepare_deps.sh here:
#
#   phase test:  run(command="bash tests/gpu/run.sh test",  carry=[".deps"], timeout_s=420)
#   phase bench: run(command="bash tests/gpu/run.sh bench", carry=[".deps"], timeout_s=360)
#
# Sized for 15 minutes of device time with one machine start (a minute or two): call `bench` right
# after `test`, while the machine is warm (it reuses that build; on a fresh machine it builds
# again), then give the machine back. If `test` fails, fix and rerun `test` rather than `bench`.
#
# test:  builds against the machine's torch (16 jobs) and runs CTest without the opt-in `slow`
#        label and without the tests that cannot run there: tf_roundtrip (network), the fuzz
#        targets (clang-14) and install (pkg-config). The GPU tests, the pipelines and the Python
#        package run with everything else. A GPU test that skips (no usable GPU) or a missing
#        .deps/data (no RetinaFace weights) fails the phase: here a skip would be a false pass.
# bench: the GPU benchmarks: DCT-Net 512/1024/2048 in fp32, fp16 and bf16 (TorchScript, and the
#        compiled CUDA package in fp16), GPEN-512 per face, RetinaFace, limn against eager and
#        torch.compile (batch 1 and 8), and 4096x4096 under a 1 GiB cap (from phase test's log).
#
# Logs go to $OUT (out/gpu when run by hand); the phase exits with the status of what it ran.
set -uo pipefail
phase=${1:-}
case "$phase" in test|bench) ;; *) echo "usage: run.sh test|bench" >&2; exit 2 ;; esac
OUT=${OUT:-out/gpu}
BUILD=${LIMN_GPU_BUILD:-build-gpu}
JOBS=${LIMN_JOBS:-16}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/models"
if [ ! -f .deps/data/retinaface-mobilenet0.25.pth ] || [ ! -d .deps/usr/include/doctest ]; then
  echo "no .deps (headers, RetinaFace weights): run tests/gpu/prepare_deps.sh here and carry .deps" >&2
  exit 1
fi
export LIMN_REQUIRE_GPU=1  # test_gpu fails, not skips, without a usable GPU
status=0

build() {
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c \
      'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())'
  } > "$OUT/gpu.txt" 2>&1
  cat "$OUT/gpu.txt"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIMN_DEPS_DIR="$PWD/.deps" \
    > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; return 1; }
  ninja -C "$BUILD" -j "$JOBS" > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; return 1; }
  echo "built in $SECONDS s"
}

if [ "$phase" = test ]; then
  build || exit 1
  LIMN_JOBS=$JOBS ctest --test-dir "$BUILD" --output-on-failure -j 6 --timeout 360 -LE 'slow|abi' \
    -E '^(tf_roundtrip|install|fuzz_.*)$' > "$OUT/ctest.log" 2>&1
  status=$?
  # Every test's full output (CTest's own log), and the GPU suite's messages and counts.
  cp "$BUILD/Testing/Temporary/LastTest.log" "$OUT/last-test.log" 2>/dev/null
  grep -E 'MESSAGE|fp32 max abs diff|PSNR|\[doctest\] (test cases|assertions)' "$OUT/last-test.log" | tail -30
  tail -25 "$OUT/ctest.log"
  for t in gpu retinaface detect_cases; do  # skipped here means the run proved nothing
    grep -qE "Test +#[0-9]+: $t \.+ +Passed" "$OUT/ctest.log" || { echo "FAILED: $t did not pass"; status=1; }
  done
  echo "phase test: exit $status after $SECONDS s"
  exit $status
fi

# ---- phase bench -----------------------------------------------------------------------------
[ -x "$BUILD/examples/bench/limn-bench" ] || build || exit 1
B="$BUILD/examples/bench/limn-bench"
M="$BUILD/bench-models"
mkdir -p "$M"
run() {  # runs a command (at most 150 s), logs it, remembers a failure
  echo "\$ $*"
  timeout 150 "$@" || { echo "FAILED ($?): $*"; status=1; }
}
{
  run python3 -m limn_models.export dctnet --random-init --seed 0 -o "$M/dctnet.pt"
  run python3 -m limn_models.export gpen --random-init --seed 0 --config GPEN-BFR-512 -o "$M/gpen-512.pt"
  # Compiled CUDA packages can only be built where a GPU is (AOTInductor compiles for it).
  run python3 -m limn_models.export dctnet --random-init --seed 0 --device cuda --precision fp16 \
    -o "$M/dctnet-cuda-fp16.pt2"
} > "$OUT/export.log" 2>&1
tail -5 "$OUT/export.log"
{
  for p in fp32 fp16 bf16; do
    run "$B" --model "$M/dctnet.pt" --device cuda --precision $p --size 512x512 --size 1024x1024 \
      --size 2048x2048 --warmup 5 --iters 30
  done
  run "$B" --model "$M/dctnet.pt" --device cuda --precision fp16 --size 512x512 --batch 8 --warmup 3 --iters 10
  [ -f "$M/dctnet-cuda-fp16.pt2" ] && run "$B" --model "$M/dctnet-cuda-fp16.pt2" --device cuda \
    --size 512x512 --size 1024x1024 --size 2048x2048 --warmup 5 --iters 30
  for p in fp32 fp16; do
    run "$B" --model "$M/gpen-512.pt" --device cuda --precision $p --warmup 5 --iters 30
    run "$B" --model "$M/gpen-512.pt" --device cuda --precision $p --batch 8 --warmup 3 --iters 10
  done
  # The same networks in eager PyTorch and torch.compile, in one script with limn-bench.
  # torch.compile compiles once per size (up to a minute each): fp16 batch 1 only, the targets.
  run python3 examples/bench/compare_eager.py --bench "$B" --device cuda --precision fp32 \
    --model dctnet --size 512x512 --size 1024x1024 --iters 20
  run python3 examples/bench/compare_eager.py --bench "$B" --device cuda --precision fp16 --compile \
    --model dctnet --size 1024x1024 --iters 20
  run python3 examples/bench/compare_eager.py --bench "$B" --device cuda --precision fp16 \
    --model dctnet --size 512x512 --batch 8 --iters 10
  run python3 examples/bench/compare_eager.py --bench "$B" --device cuda --precision fp16 --compile \
    --model gpen-512 --iters 20
  # RetinaFace through the Python package (the wheel phase test built), against eager + NMS.
  wheel=$(ls "$BUILD"/package/wheels/limn-*.whl 2>/dev/null | head -1)
  if [ -n "$wheel" ]; then
    python3 -m pip install -q --no-deps --no-index --target /tmp/limn-site "$wheel" &&
      PYTHONPATH="/tmp/limn-site:$PYTHONPATH" run python3 examples/bench/python_and_detect.py --device cuda
  else
    echo "no wheel in $BUILD/package/wheels (phase test builds it): RetinaFace timing skipped"
  fi
  # 4096x4096 DCT-Net fp16 under a 1 GiB cap (tiles, OOM retries, peak memory, PSNR against one
  # pass): test_gpu's message in phase test's log, when this machine ran it.
  grep -h -A3 '4096x4096 DCT-Net' "$BUILD/Testing/Temporary/LastTest.log" 2>/dev/null | head -4
} > "$OUT/bench.log" 2>&1
grep -E '^(model|size|[0-9]+x[0-9]+ |\| |torch|FAILED|.*4096x4096|.*PSNR)' "$OUT/bench.log" | tail -80
echo "phase bench: exit $status after $SECONDS s"
exit $status
