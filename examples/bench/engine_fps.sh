#!/usr/bin/env bash
# Frames per second of an engine's frame loop on a GPU: frames in host memory (limn_frames_run
# copies each frame to the device and back) against frames in CUDA memory (--device: a pitched
# buffer cartoonized in place, queued on the engine's stream, no host copy), measured by
# examples/engine/frame_loop.c in the same run, on the same model, in PRECISION (default fp16 on
# CUDA, auto on the CPU; the table says what the model runs in). "queue ms" is the engine thread's
# time inside limn_frames_run on the device path (the work queued, not run): near the frame time
# means limn's dispatch on the CPU bounds the loop, which is what CUDA graphs would remove.
#
#   examples/bench/engine_fps.sh [BUILD_DIR] [MODEL] [DEVICE] [FRAMES] [PRECISION]
#
# Defaults: build/, the built-in cartoon model (setup.sh exports it), cuda, 30 frames; sizes 512x512
# and 1024x1024. On the CPU (DEVICE cpu) only the host-memory loop runs. "allocs h/d": allocations
# per frame once warm, host path / device path. A loop that fails prints FAILED in its cells (its
# error on stderr) and the table goes on; the script then exits 1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
MODEL=${2:-$BUILD/models/classical-cartoon.pt}
DEVICE=${3:-cuda}
FRAMES=${4:-30}
if [ "${DEVICE#cuda}" != "$DEVICE" ]; then PRECISION=${5:-fp16}; else PRECISION=${5:-auto}; fi
LOOP="$BUILD/examples/limn-engine-loop"
[ -x "$LOOP" ] || { echo "engine_fps: $LOOP not built (./setup.sh --no-run)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "engine_fps: no model $MODEL (./setup.sh exports the built-in one)" >&2; exit 1; }
failed=0
per_frame() { grep '^allocations:' <<<"$1" | sed -E 's/allocations: ([0-9.]+) per frame.*/\1/'; }
printf '%-10s %-10s %14s %9s %16s %10s %9s %12s %14s\n' size precision "host ms/frame" "host fps" \
  "device ms/frame" "device fps" "queue ms" "device/host" "allocs h/d"
for size in "512 512" "1024 1024"; do
  set -- $size
  precision=FAILED host_ms=FAILED host_fps=FAILED host_allocs=FAILED
  if host=$("$LOOP" "$MODEL" "$DEVICE" "$FRAMES" "$1" "$2" 8192 "$PRECISION"); then
    precision=$(grep -m1 ' frames of ' <<<"$host" | sed -E 's/.* in ([a-z0-9]+): .*/\1/')
    # The synchronous call's median time: the host-copy path, upload and download included.
    host_ms=$(grep '^sync:' <<<"$host" | sed -E 's/.*inside limn ([0-9.]+) us per engine frame.*/\1/' |
      awk '{ printf "%.2f", $1 / 1000 }')
    host_fps=$(awk -v m="$host_ms" 'BEGIN { printf "%.1f", 1000 / m }')
    host_allocs=$(per_frame "$host")
  fi
  dev_ms=- dev_fps=- queue=- ratio=- dev_allocs=-
  if [ "${DEVICE#cuda}" != "$DEVICE" ] || [ "$DEVICE" = auto ]; then
    dev_ms=FAILED dev_fps=FAILED queue=FAILED dev_allocs=FAILED
    if dev=$("$LOOP" --device "$MODEL" "$DEVICE" "$FRAMES" "$1" "$2" 8192 "$PRECISION"); then
      dev_ms=$(grep '^device: a frame took' <<<"$dev" | sed -E 's/.*took ([0-9.]+) ms.*/\1/')
      dev_fps=$(grep '^device: a frame took' <<<"$dev" | sed -E 's/.*, ([0-9.]+) frames\/s.*/\1/')
      dev_allocs=$(per_frame "$dev")
      queue=$(grep '^device: the engine' <<<"$dev" | sed -E 's/.*inside limn ([0-9.]+) us per engine frame.*/\1/' |
        awk '{ printf "%.2f", $1 / 1000 }')
      [ "$host_fps" = FAILED ] || ratio=$(awk -v d="$dev_fps" -v h="$host_fps" 'BEGIN { printf "%.2f", d / h }')
    fi
  fi
  printf '%-10s %-10s %14s %9s %16s %10s %9s %12s %14s\n' "${1}x${2}" "$precision" "$host_ms" "$host_fps" \
    "$dev_ms" "$dev_fps" "$queue" "$ratio" "$host_allocs/$dev_allocs"
  case "$precision $dev_ms" in *FAILED*) failed=1 ;; esac
done
exit "$failed"
