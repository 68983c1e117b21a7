#!/usr/bin/env bash
# How long an engine's thread is blocked by limn per frame: the synchronous call (limn_cartoonize)
# against the asynchronous path (limn_cartoonize_submit + a poll each engine frame), measured by
# examples/engine/frame_loop.c in the same run, on the same model and frames.
#
#   examples/bench/engine_blocking.sh [BUILD_DIR] [MODEL] [DEVICE] [FRAMES]
#
# Defaults: build/, the built-in cartoon model (setup.sh exports it), cpu, 30 frames; sizes
# 320x240 and 512x512.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
MODEL=${2:-$BUILD/models/classical-cartoon.pt}
DEVICE=${3:-cpu}
FRAMES=${4:-30}
LOOP="$BUILD/examples/limn-engine-loop"
[ -x "$LOOP" ] || { echo "engine_blocking: $LOOP not built (./setup.sh --no-run)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "engine_blocking: no model $MODEL (./setup.sh exports the built-in one)" >&2; exit 1; }
printf '%-9s %22s %26s %18s %14s %10s\n' size "sync blocked us/frame" "async blocked us/frame" "async submit us" \
  "engine/limn" "ratio"
for size in "320 240" "512 512"; do
  set -- $size
  sync=$("$LOOP" "$MODEL" "$DEVICE" "$FRAMES" "$1" "$2" 4096 | grep '^sync:' | sed -E 's/.*mean ([0-9.]+) us.*/\1/')
  out=$("$LOOP" --async "$MODEL" "$DEVICE" "$FRAMES" "$1" "$2" 4096)
  mean=$(grep '^async: the engine' <<<"$out" | sed -E 's/.*mean ([0-9.]+) us.*/\1/')
  engine=$(grep '^async: the engine' <<<"$out" | sed -E 's/.*, ([0-9]+) engine frames.*/\1/')
  submit=$(grep '^async: a submit' <<<"$out" | sed -E 's/.*took ([0-9.]+) us.*/\1/')
  ratio=$(awk -v a="$mean" -v s="$sync" 'BEGIN { printf "%.5f", a / s }')
  printf '%-9s %22s %26s %18s %14s %10s\n' "${1}x${2}" "$sync" "$mean" "$submit" "$((engine / FRAMES))" "$ratio"
done
