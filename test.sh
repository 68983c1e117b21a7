#!/usr/bin/env bash
# Runs every test: builds first (./setup.sh --no-run), then CTest: the C ABI test, the doctest
# suites, the GPU suite (reported as skipped without a CUDA device), the Python model tests, the
# installed package, its server (limn serve) and its scale-out on a two-node Ray cluster (in a
# network namespace of its own: root).
# Slow checks carry the CTest label "slow" and run only with LIMN_SLOW_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --no-run
# What only the tests need: the HTTP clients of the server tests (httpx, and Triton's own client for
# the Open Inference Protocol), and a real browser for the page (Debian's Chromium, driven by
# Playwright from PyPI; Playwright's own browser download is never used).
PY=${PYTHON:-python3}
# Ray (the limn[ray] extra, pinned as in pyproject.toml) for the scale-out tests (tests/ray).
"$PY" -c 'import httpx, tritonclient.http, playwright, ray.serve, ray.data' 2>/dev/null ||
  PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install --quiet httpx 'tritonclient[http]' playwright \
    'ray[serve,data]==2.60.0'
if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
BUILD=${LIMN_BUILD_DIR:-build}
EXCLUDE=()
[ "${LIMN_SLOW_TESTS:-0}" = 1 ] || EXCLUDE=(-LE slow)
exec ctest --test-dir "$BUILD" --output-on-failure -j 2 "${EXCLUDE[@]}" "$@"
