#!/usr/bin/env bash
# Builds the image-decoding fuzz target with clang-14 (libFuzzer, ASan, UBSan) and runs it for
# LIMN_FUZZ_SECONDS (default 60) on a seed corpus of small PNG, JPEG (with EXIF), BMP, TGA and
# PPM files generated here. Opt-in: CTest label "slow" (LIMN_SLOW_TESTS=1 ./test.sh).
#
#   tests/fuzz/run.sh [WORK_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$ROOT/build/fuzz}
SECONDS_TO_RUN=${LIMN_FUZZ_SECONDS:-60}
CXX=${LIMN_FUZZ_CXX:-clang++-14}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
STB=$(dirname "$(find /usr/include "$ROOT/.deps/usr/include" -name stb_image.h 2>/dev/null | head -1)")
mkdir -p "$WORK/corpus" "$WORK/artifacts"
"$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize=shift-base \
  -DLIMN_FUZZ_MAX_PIXELS=262144 -I "$ROOT/include" -I "$ROOT/src" -I "$STB" \
  "$ROOT/src/pixels.cpp" "$ROOT/src/exif.cpp" "$ROOT/src/image_io.cpp" "$ROOT/tests/fuzz/fuzz_image_load.cpp" \
  -o "$WORK/fuzz_image_load"
# Seeds: tiny images in every format stb decodes that we care about, one with EXIF orientation 6.
python3 - "$WORK/corpus" <<'PYEOF'
import io, struct, sys
from PIL import Image
out = sys.argv[1]
img = Image.new("RGB", (7, 5))
img.putdata([(x * 30, y * 50, (x + y) * 20) for y in range(5) for x in range(7)])
for fmt, ext in [("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp"), ("TGA", "tga"), ("PPM", "ppm"), ("GIF", "gif")]:
    img.save(f"{out}/seed.{ext}", fmt)
Image.new("RGBA", (3, 4), (10, 20, 30, 40)).save(f"{out}/alpha.png")
exif = Image.Exif()
exif[0x0112] = 6
img.save(f"{out}/exif6.jpg", "JPEG", exif=exif.tobytes())
PYEOF
"$WORK/fuzz_image_load" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -artifact_prefix="$WORK/artifacts/" \
  "$WORK/corpus" 2>&1 | tail -5
