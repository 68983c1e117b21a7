#!/usr/bin/env bash
# The race detector and the undefined-behaviour checker over limn: builds liblimn, the C ABI test
# the 16-thread stress test and the job-pool test with clang-14 and -fsanitize=thread,undefined (LibTorch itself is
# not instrumented), then runs
#   - test_c_api: every C argument check, bad enum values included (UBSan's enum, bounds, overflow
#     and alignment checks; any report fails the run), and
#   - test_stress: 16 threads mixing every call on shared models (ThreadSanitizer; any race
#     report in limn's code fails the run), and
#   - test_jobs: the asynchronous job pool (submitting from 4 threads, cancelling, closing models
#     and the pool with jobs pending, callbacks), under the same checks.
# Opt-in (minutes to build): CTest label "tsan" (ctest -L tsan), or directly:
#   tests/sanitize/run.sh [BUILD_DIR]      (default build-sanitize; LIMN_JOBS compile jobs, default 2)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-sanitize}
PY=${PYTHON:-python3}
command -v clang++-14 >/dev/null || { echo "sanitize: clang++-14 not found (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DLIMN_SANITIZE=thread,undefined \
    -DLIMN_BUILD_EXAMPLES=OFF -DPython3_EXECUTABLE="$(command -v "$PY")" \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >"$BUILD.configure.log" 2>&1 \
    || { cat "$BUILD.configure.log"; exit 1; }
fi
ninja -C "$BUILD" -j "${LIMN_JOBS:-2}" test_c_api test_stress test_jobs >"$BUILD.build.log" 2>&1 || { tail -40 "$BUILD.build.log"; exit 1; }
FIXTURES=${LIMN_TEST_FIXTURES:-$BUILD/tests/fixtures}
[ -f "$FIXTURES/tiny_unet.pt" ] || PYTHONPATH="$ROOT/models" "$PY" -m limn_models.fixtures "$FIXTURES" >/dev/null
export LIMN_TEST_FIXTURES=$FIXTURES
# One LibTorch intra-op thread: its OpenMP pool is not instrumented, so the detector cannot see
# how it synchronizes. limn's own threads (16 here) are what is under test.
export OMP_NUM_THREADS=1
SUPP="$ROOT/tests/sanitize/tsan.supp"
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 report_signal_unsafe=0 suppressions=$SUPP history_size=4"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1"
status=0
echo "== test_c_api (UBSan + TSan)"
"$BUILD/tests/test_c_api" "$FIXTURES" 2>&1 | tail -20 || status=1
echo "== test_stress (TSan + UBSan), ${LIMN_STRESS_ROUNDS:-12} rounds x 16 threads"
"$BUILD/tests/test_stress" 2>&1 | tail -60 || status=1
echo "== test_jobs (TSan + UBSan): the job pool, cancelling, closing, callbacks"
"$BUILD/tests/test_jobs" 2>&1 | tail -60 || status=1
exit $status
