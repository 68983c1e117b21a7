#!/usr/bin/env bash
# Builds the fuzz targets with clang-14 (libFuzzer, ASan, UBSan) and runs each for
# LIMN_FUZZ_SECONDS (default 60): image decoding on a seed corpus of small PNG, JPEG (with EXIF),
# BMP, TGA and PPM files, and the metadata reader of compiled packages (extra/limn.json: JSON and
# base64) on a package's metadata, all generated here. Opt-in: CTest label "slow"
# (LIMN_SLOW_TESTS=1 ./test.sh).
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
WEBP=(-DLIMN_WITH_WEBP=0)
[ -f /usr/include/webp/decode.h ] && WEBP=(-DLIMN_WITH_WEBP=1 -lwebp)  # libwebp's decoder behind ours
TIFF_INC=$(dirname "$(find /usr/include -name tiffio.h 2>/dev/null | head -1)")
if [ -f "$TIFF_INC/tiffio.h" ]; then WEBP+=(-DLIMN_WITH_TIFF=1 -I "$TIFF_INC" -ltiff); else WEBP+=(-DLIMN_WITH_TIFF=0); fi
"$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize=shift-base \
  -DLIMN_FUZZ_MAX_PIXELS=262144 -I "$ROOT/include" -I "$ROOT/src" -I "$STB" \
  "$ROOT/src/pixels.cpp" "$ROOT/src/exif.cpp" "$ROOT/src/icc.cpp" "$ROOT/src/image_io.cpp" "$ROOT/tests/fuzz/fuzz_image_load.cpp" \
  "${WEBP[@]}" -o "$WORK/fuzz_image_load"
# Seeds: tiny images in every format stb decodes that we care about, one with EXIF orientation 6.
python3 - "$WORK/corpus" <<'PYEOF'
import io, struct, sys
from PIL import Image
out = sys.argv[1]
img = Image.new("RGB", (7, 5))
img.putdata([(x * 30, y * 50, (x + y) * 20) for y in range(5) for x in range(7)])
for fmt, ext in [("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp"), ("TGA", "tga"), ("PPM", "ppm"), ("GIF", "gif"),
                 ("WEBP", "webp"), ("TIFF", "tif")]:
    img.save(f"{out}/seed.{ext}", fmt)
Image.new("RGBA", (3, 4), (10, 20, 30, 40)).save(f"{out}/alpha.png")
exif = Image.Exif()
exif[0x0112] = 6
img.save(f"{out}/exif6.jpg", "JPEG", exif=exif.tobytes())
PYEOF
"$WORK/fuzz_image_load" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -artifact_prefix="$WORK/artifacts/" \
  "$WORK/corpus" 2>&1 | tail -5

# The metadata reader of compiled (.pt2) packages.
mkdir -p "$WORK/corpus-json"
"$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I "$ROOT/src" \
  "$ROOT/src/json.cpp" "$ROOT/tests/fuzz/fuzz_package_metadata.cpp" -o "$WORK/fuzz_package_metadata"
python3 - "$WORK/corpus-json" <<'PYEOF'
import base64, json, struct, sys
out = sys.argv[1]
floats = base64.b64encode(struct.pack("<6f", 0.0, 0.5, 1.0, 0.25, 0.75, 1.0)).decode()
record = {"limn_format_version": 1, "limn_kind": "cartoon", "limn_name": "seed \u00e9", "limn_size_multiple": 4,
          "limn_face_template": [202.0, 242.9], "limn_prior_min_sizes": [[16, 32]], "limn_prior_clip": False,
          "limn_selftest_input": {"dtype": "float32", "shape": [1, 3, 1, 2], "data": floats},
          "limn_package_device": "cpu", "limn_package_cpu_features": "avx2 fma"}
with open(f"{out}/limn.json", "w", encoding="utf-8") as f:
    json.dump(record, f, ensure_ascii=False)
with open(f"{out}/escapes.json", "w") as f:
    f.write('["\\ud83d\\ude00", "\\n\\t\\"", -1.5e-3, null, true]')
PYEOF
"$WORK/fuzz_package_metadata" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 \
  -artifact_prefix="$WORK/artifacts/" "$WORK/corpus-json" 2>&1 | tail -5
