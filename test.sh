#!/usr/bin/env bash
# Runs every test: builds first (./setup.sh --no-run), then CTest: the C ABI test, the doctest
# suites, the GPU suite (reported as skipped without a CUDA device) and the Python model tests.
# Slow checks carry the CTest label "slow" and run only with LIMN_SLOW_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --no-run
BUILD=${LIMN_BUILD_DIR:-build}
EXCLUDE=()
[ "${LIMN_SLOW_TESTS:-0}" = 1 ] || EXCLUDE=(-LE slow)
exec ctest --test-dir "$BUILD" --output-on-failure -j 2 "${EXCLUDE[@]}" "$@"
