#!/usr/bin/env bash
# The GPU check: the test suite on a CUDA device, then the GPU benchmarks. Run ON the GPU machine
# (device tool) from the repository root, after `bash tests/gpu/prepare_deps.sh` HERE (it fills
# .deps: headers the GPU machine lacks and the RetinaFace weights). The calls to make:
#
#   1. run(command="bash tests/gpu/run.sh all", carry=[".deps"], timeout_s=600)
#      one command: build, the GPU suite, the benchmark targets, the other tests, the other
#      benchmarks, the cold compiles, in that order, all inside LIMN_GPU_BUDGET (560 s). Whatever
#      happens, the logs are in $OUT and the summary ends the output.
#   2. Only if something failed for a reason fixed here: rerun at once, while the machine is warm
#      (30 s), the part that failed: run(command="bash tests/gpu/run.sh test" or "... bench",
#      carry=[".deps"], timeout_s=360), prefixed with LIMN_GPU_BUDGET=N, N being status's budget_left_s
#      less 60 (and at most 330). Every phase also starts
#      cold: it builds what is missing (ninja is incremental), and bench assembles the package.
#   3. give_back, then record the figures in BENCHMARKS.md.
#
# Phases (each builds first: configure once, then ninja, 16 jobs, Python bindings included):
#   test   first the `gpu` test alone, with the fixtures it needs (test models, parity and
#          detection cases), so that it runs first and its 4096x4096 timing has the machine to
#          itself; then CTest without the opt-in `slow` label and without what tests nothing
#          GPU-specific or cannot run there: python_models (CPU-only model zoo, ~150 s),
#          python_serve (the HTTP server on the CPU; FastAPI, tritonclient and Chromium are not
#          there), python_ray (a two-node CPU cluster in a network namespace: ~6 min, Ray is not
#          there), abi (no abigail), tf_roundtrip (network) and install (pkg-config). The package
#          test uses this build (LIMN_PACKAGE_FROM_BUILD=1) instead of pip compiling the library
#          again. `gpu`, `retinaface` and `detect_cases` must pass: a skip there would be a false pass.
#   bench  in order of value: limn-bench DCT-Net 1024x1024 in fp16, bf16, fp32 and GPEN-512 fp16
#          (time and working memory), the engine loop's frames per second with host against device
#          images and whether CUDA graphs pay; then the other sizes, batches and fp32 GPEN, limn
#          against PyTorch eager, RetinaFace through the installed package, the engine loop's
#          blocked time; last the cold compiles (torch.compile, the CUDA .pt2 export), each bounded.
#   all    the `gpu` test, the benchmark targets, the rest of test, the rest of bench.
#
# Time: every step runs under `timeout`, cut to what is left of LIMN_GPU_BUDGET seconds (default
# 560, inside the device tool's 600 s command limit) less a reserve for the summary, so a hang never
# loses the logs. Logs are written to $OUT (out/gpu when run by hand) as the steps go, at most 6
# files (the tool brings back 8): summary.txt, build.log, ctest.log, gpu-test.log, bench.log, export.log.
#
# LIMN_GPU_DRY_RUN=1 (here, on the CPU): every step runs on the CPU, the benchmarks at their smallest
# size with one iteration (GPEN-BFR-256 in fp32); `gpu` may report skipped; the CUDA .pt2 export must
# fail only for want of a GPU. CTest `gpu_harness` (labels slow, gpu_harness) runs it:
# tests/gpu/dry_run.sh, `LIMN_GPU_DRY_RUN=1 bash tests/gpu/run.sh all` in build-gpu-dry.
set -uo pipefail
phase=${1:-}
case "$phase" in test|bench|all) ;; *) echo "usage: run.sh test|bench|all" >&2; exit 2 ;; esac
DRY=${LIMN_GPU_DRY_RUN:-0}
OUT=${OUT:-out/gpu}
BUILD=${LIMN_GPU_BUILD:-build-gpu}
JOBS=${LIMN_JOBS:-$(nproc)}
BUDGET=${LIMN_GPU_BUDGET:-560}
RESERVE=15                      # seconds kept for the summary and the log copies
PY=${PYTHON:-$(command -v python3)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/models"
export LIMN_RETINAFACE_WEIGHTS="$PWD/.deps/data/retinaface-mobilenet0.25.pth"
status=0
END=$((SECONDS + BUDGET))

say() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $((END - RESERVE - SECONDS)); }

# step LOG MAX CMD...: runs CMD with output appended to $OUT/LOG, for at most MAX seconds and never
# past the budget; a failure, a timeout or no time left is said in the summary and fails the phase.
step() {
  local log="$OUT/$1" max=$2 t0=$SECONDS limit rc
  shift 2
  limit=$(left)
  [ "$max" -lt "$limit" ] && limit=$max
  if [ "$limit" -lt 5 ]; then
    say "NOT RUN (no time left): $*"; status=1; return 1
  fi
  echo "\$ $*   [at most ${limit}s]" >> "$log"
  timeout -k 5 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    say "ok   $((SECONDS - t0))s  $*"
  else
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && say "TIMEOUT after ${limit}s: $*" || say "FAILED ($rc) $((SECONDS - t0))s: $*"
    status=1
  fi
  return $rc
}

if [ ! -f .deps/data/retinaface-mobilenet0.25.pth ] || [ ! -d .deps/usr/include/doctest ]; then
  say "no .deps (headers, RetinaFace weights): run tests/gpu/prepare_deps.sh here and carry .deps"
  exit 1
fi
if [ "$DRY" = 1 ]; then
  DEV=cpu
  say "DRY RUN on the CPU: benchmarks at their smallest size, one iteration"
else
  DEV=cuda
  export LIMN_REQUIRE_GPU=1  # test_gpu fails, not skips, without a usable GPU
fi

build() {  # configures once, then builds what changed (a rerun after a fix rebuilds that)
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())'
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores"
  } 2>&1 | tee -a "$SUMMARY"
  # What the steps import, all in the GPU machine's image (KINDS.md of the device tool): checked
  # first, so that a missing one is named at once instead of failing a test minutes later.
  step build.log 60 "$PY" -c 'import torch, numpy, pytest, PIL, skimage, pybind11, packaging' || return 1
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  if [ ! -f "$BUILD/build.ninja" ]; then
    step build.log 120 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIMN_DEPS_DIR="$PWD/.deps" \
      -DLIMN_BUILD_PYTHON=ON -DPython3_EXECUTABLE="$PY" "${launcher[@]}" || return 1
  fi
  step build.log 400 ninja -C "$BUILD" -j "$JOBS" || { tail -40 "$OUT/build.log"; return 1; }
}

must_pass() {  # TEST...: each must have passed; skipped there means the run proved nothing
  local t
  for t in "$@"; do
    if grep -qE "Test +#[0-9]+: $t \.+ +Passed" "$OUT/ctest.log" "$OUT/gpu-test.log" 2>/dev/null; then
      continue
    elif [ "$DRY" = 1 ] && [ $t = gpu ] && grep -q "GPU tests skipped" "$OUT/gpu-test.log" 2>/dev/null; then
      say "gpu: skipped (dry run, no GPU)"
    else
      say "FAILED: $t did not pass"; status=1
    fi
  done
}

phase_gpu() {  # the GPU suite first, with its fixtures (test models, parity and detection cases)
  say "== phase test: gpu"
  # -j 3: the three fixture setups side by side; `gpu` starts once they have ended, alone.
  step gpu-test.log 240 ctest --test-dir "$BUILD" --output-on-failure -j 3 --timeout 190 -R '^gpu$'
  cat "$BUILD/Testing/Temporary/LastTest.log" >> "$OUT/gpu-test.log" 2>/dev/null  # its full output
  # The GPU suite's own figures, from its section only.
  grep -E 'MESSAGE|fp32 max abs diff|PSNR|4096x4096|\[doctest\] (test cases|assertions)|GPU tests' \
    "$OUT/gpu-test.log" 2>/dev/null | tee -a "$SUMMARY"
  must_pass gpu detect_cases
}

phase_ctest() {  # the rest in parallel, on the fixtures phase_gpu set up (-FA: not again)
  say "== phase test: the rest"
  LIMN_PACKAGE_FROM_BUILD=1 LIMN_JOBS=$JOBS step ctest.log 300 ctest --test-dir "$BUILD" \
    --output-on-failure -j $((JOBS < 6 ? JOBS : 6)) --timeout 240 -LE 'slow|abi' -FA '.*' \
    -E '^(tf_roundtrip|install|python_models|python_serve|python_ray|gpu|fixtures|parity_cases|detect_cases)$'
  grep -E '^[0-9]+% tests passed|tests failed|\(Failed\)|\(Timeout\)|Not Run' "$OUT/ctest.log" | tee -a "$SUMMARY"
  must_pass retinaface
}

# The benchmark models and settings: the real ones, or the dry run's smallest (GPEN-BFR-256 in fp32,
# since fp16 convolutions on a CPU without them take minutes; one iteration).
M="$BUILD/bench-models"
B="$BUILD/examples/bench/limn-bench"
if [ "$DRY" = 1 ]; then
  GPEN=(gpen-256 GPEN-BFR-256) GPEN_FP16=fp32 BIG=(--size 256x256) SIZES=() IT30=(--warmup 0 --iters 1)
  IT10=("${IT30[@]}") EAGER_IT=(--iters 1 --warmup 0 --rounds 1) SMOKE=(--smoke)
else
  GPEN=(gpen-512 GPEN-BFR-512) GPEN_FP16=fp16 BIG=(--size 1024x1024) SIZES=(--size 512x512 --size 2048x2048)
  IT30=(--warmup 5 --iters 30) IT10=(--warmup 3 --iters 10) EAGER_IT=(--iters 20) SMOKE=()
fi

bench_targets() {  # 1. the targets: DCT-Net 1024^2 in each precision, GPEN-512 fp16 per face, engine fps
  say "== bench: targets"
  mkdir -p "$M"
  step export.log 120 "$PY" -m limn_models.export dctnet --random-init --seed 0 -o "$M/dctnet.pt"
  step export.log 120 "$PY" -m limn_models.export gpen --random-init --seed 0 --config "${GPEN[1]}" -o "$M/gpen.pt"
  local p
  for p in fp16 bf16 fp32; do
    step bench.log 60 "$B" --model "$M/dctnet.pt" --device $DEV --precision $p "${BIG[@]}" "${IT30[@]}"
  done
  step bench.log 60 "$B" --model "$M/gpen.pt" --device $DEV --precision $GPEN_FP16 "${IT30[@]}"
  # An engine's frame loop (issue 24), frames per second at 512x512 and 1024x1024 in fp16: host-
  # memory frames against device images on the engine's stream (the host only on the CPU); then
  # whether CUDA graphs would pay for the frames (DCT-Net launched op by op against a replayed graph).
  step bench.log 90 bash examples/bench/engine_fps.sh "$BUILD" "$M/dctnet.pt" $DEV \
    $([ "$DRY" = 1 ] && echo 2 || echo 30)
  step bench.log 60 "$PY" examples/bench/cuda_graphs.py
}

bench_rest() {  # 2.-4. other sizes and batches, eager PyTorch, RetinaFace through the package
  say "== bench: sizes, batches, eager, RetinaFace"
  if [ "$DRY" != 1 ]; then
    step bench.log 60 "$B" --model "$M/dctnet.pt" --device $DEV --precision fp16 "${SIZES[@]}" "${IT30[@]}"
    step bench.log 40 "$B" --model "$M/dctnet.pt" --device $DEV --precision fp16 --size 512x512 --batch 8 "${IT10[@]}"
    step bench.log 60 "$B" --model "$M/gpen.pt" --device $DEV --precision fp16 --batch 8 "${IT10[@]}"
    step bench.log 60 "$B" --model "$M/gpen.pt" --device $DEV --precision fp32 "${IT30[@]}"
  fi
  # limn against PyTorch eager, in one script.
  step bench.log 90 "$PY" examples/bench/compare_eager.py --bench "$B" --device $DEV --precision fp16 \
    --model dctnet "${BIG[@]}" "${EAGER_IT[@]}"
  step bench.log 90 "$PY" examples/bench/compare_eager.py --bench "$B" --device $DEV --precision $GPEN_FP16 \
    --model "${GPEN[0]}" --size "${GPEN[0]#gpen-}x${GPEN[0]#gpen-}" "${EAGER_IT[@]}"
  # RetinaFace from the installed package (its limn_models, not the checkout's), as a user runs
  # it; the package comes from phase test, or is assembled here from the build.
  local vpy="$BUILD/package/venv/bin/python"
  if [ ! -x "$vpy" ] || ! "$vpy" -c 'import limn' >/dev/null 2>&1; then
    step bench.log 120 env LIMN_PACKAGE_FROM_BUILD=1 PYTHON="$PY" bash tests/package/run.sh "$BUILD" . --install-only
  fi
  step bench.log 120 env -u PYTHONPATH "$vpy" -I examples/bench/python_and_detect.py --device $DEV "${SMOKE[@]}"
  # An engine's frame loop on limn_frames: the thread's blocked time, synchronous against
  # asynchronous jobs (issue 24; engine_fps.sh above has the allocations per frame).
  step bench.log 90 bash examples/bench/engine_blocking.sh "$BUILD" "$M/dctnet.pt" $DEV $([ "$DRY" = 1 ] && echo 3 || echo 30)
  # The 4096x4096 cap test's figures (phase test ran it alone).
  grep -h -A3 '4096x4096 DCT-Net' "$OUT/gpu-test.log" 2>/dev/null | head -4 >> "$OUT/bench.log"
}

bench_compiles() {  # 5. cold compiles last, each bounded: torch.compile, then the CUDA .pt2 package
  say "== bench: cold compiles"
  step bench.log 150 "$PY" examples/bench/compare_eager.py --bench "$B" --device $DEV --precision fp16 --compile \
    --model dctnet "${BIG[@]}" "${EAGER_IT[@]}"
  if [ "$DRY" = 1 ]; then
    # AOTInductor compiles for the GPU: without one the export must stop at the device check.
    if "$PY" -m limn_models.export dctnet --random-init --seed 0 --device cuda --precision fp16 \
         -o "$M/dctnet-cuda-fp16.pt2" >> "$OUT/export.log" 2>&1; then
      say "FAILED: the CUDA .pt2 export ran without a GPU"; status=1
    elif tail -3 "$OUT/export.log" | grep -qiE 'cuda|gpu'; then
      say "skipped (dry run, no GPU): the CUDA .pt2 export stopped at the device check"
    else
      say "FAILED: the CUDA .pt2 export failed for another reason than the GPU (export.log)"; status=1
    fi
  else
    step export.log 200 "$PY" -m limn_models.export dctnet --random-init --seed 0 --device cuda \
      --precision fp16 -o "$M/dctnet-cuda-fp16.pt2" &&
      step bench.log 60 "$B" --model "$M/dctnet-cuda-fp16.pt2" --device cuda --size 512x512 --size 1024x1024 \
        --size 2048x2048 "${IT30[@]}"
  fi
}

bench_summary() {
  grep -E '^(model|size|[0-9]+x[0-9]+ |\| |device|torch)|4096x4096|PSNR' "$OUT/bench.log" 2>/dev/null | tee -a "$SUMMARY"
}

t0=$SECONDS
if build; then
  case "$phase" in
    test) phase_gpu; phase_ctest ;;
    bench) bench_targets; bench_rest; bench_compiles; bench_summary ;;
    all) phase_gpu; bench_targets; phase_ctest; bench_rest; bench_compiles; bench_summary ;;
  esac
fi
say "phase $phase: exit $status after $((SECONDS - t0)) s (budget ${BUDGET} s)"
exit $status
