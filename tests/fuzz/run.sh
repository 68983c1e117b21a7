#!/usr/bin/env bash
# Builds the fuzz targets with clang-14 (libFuzzer, ASan, UBSan) and runs each for
# LIMN_FUZZ_SECONDS (default 60), one after the other, starting from its committed corpus
# (tests/fuzz/corpus/<target>/; the model loader also from $LIMN_TEST_FIXTURES). Opt-in: CTest
# label "slow" (LIMN_SLOW_TESTS=1 ./test.sh); tests/fuzz/README.md says what each target covers.
#
#   tests/fuzz/run.sh [WORK_DIR [LIB_DIR]]
#
# WORK_DIR (default build/fuzz) receives the binaries, the growing corpora (corpus-<target>), the
# findings (artifacts-<target>/) and a log per target. LIB_DIR (default build/src) holds the
# liblimn.so that model_load and c_api link: the normal (gcc) build, so coverage feedback comes from
# the harness and the torch-free sources compiled into it, not from inside the library (see the
# README). LIMN_FUZZ_TARGETS picks targets (default: all), run one process at a time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$ROOT/build/fuzz}
LIB=${2:-$ROOT/build/src}
SECONDS_TO_RUN=${LIMN_FUZZ_SECONDS:-60}
TARGETS=${LIMN_FUZZ_TARGETS:-image_load package_metadata landmarks model_load c_api}
CXX=${LIMN_FUZZ_CXX:-clang++-14}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
STB=$(dirname "$(find /usr/include "$ROOT/.deps/usr/include" -name stb_image.h 2>/dev/null | head -1)")
mkdir -p "$WORK"
FLAGS=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I "$ROOT/include" -I "$ROOT/src")
WEBP=(-DLIMN_WITH_WEBP=0)
[ -f /usr/include/webp/decode.h ] && WEBP=(-DLIMN_WITH_WEBP=1 -lwebp)  # libwebp's decoder behind ours
TIFF_INC=$(dirname "$(find /usr/include -name tiffio.h 2>/dev/null | head -1)")
if [ -f "$TIFF_INC/tiffio.h" ]; then WEBP+=(-DLIMN_WITH_TIFF=1 -I "$TIFF_INC" -ltiff); else WEBP+=(-DLIMN_WITH_TIFF=0); fi
# LibTorch is not instrumented: its global caches and the packages it dlopens stay allocated until
# exit (LeakSanitizer would report them), and it frees with operators ASan cannot pair up. A
# failed allocation is an exception LibTorch and limn handle (LIMN_ERR_OUT_OF_MEMORY; the fixture
# oom_above_4096px.pt asks for 2^62 bytes on purpose): ASan and libFuzzer's malloc limit would
# abort instead, so for the targets that run models allocations may fail and only the resident
# size is limited.
TORCH_ASAN=detect_leaks=0:alloc_dealloc_mismatch=0:allocator_may_return_null=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$ROOT/tests/fuzz/ubsan.supp}
export OMP_NUM_THREADS=1

build() {  # target, extra sources and flags
  local t=$1
  shift
  "$CXX" "${FLAGS[@]}" "$ROOT/tests/fuzz/fuzz_$t.cpp" "$@" -o "$WORK/fuzz_$t"
}

for t in $TARGETS; do
  case $t in
    image_load)
      # stb's TGA decoder takes almost any bytes for an image of the size in their first bytes;
      # a smaller pixel limit keeps those inputs fast. stb_image (Debian's header) shifts signed
      # values and, for an empty PNG IDAT chunk, calls memcpy(NULL, p, 0): harmless, not limn's.
      build image_load -fno-sanitize=shift-base,nonnull-attribute -DLIMN_FUZZ_MAX_PIXELS=262144 -I "$STB" "$ROOT/src/pixels.cpp" \
        "$ROOT/src/exif.cpp" "$ROOT/src/icc.cpp" "$ROOT/src/image_io.cpp" "$ROOT/src/file_io.cpp" "$ROOT/src/names.cpp" "${WEBP[@]}" ;;
    package_metadata) build package_metadata "$ROOT/src/json.cpp" "$ROOT/src/metadata.cpp" "$ROOT/src/names.cpp" ;;
    landmarks) build landmarks -I "$ROOT/examples/cli" "$ROOT/examples/cli/landmarks.cpp" ;;
    model_load) build model_load "$ROOT/src/zip_check.cpp" -L "$LIB" -Wl,-rpath,"$LIB" -llimn ;;
    # Out-of-range enum values are the point: legal C, passed as a C caller would.
    c_api) build c_api -fno-sanitize=enum -L "$LIB" -Wl,-rpath,"$LIB" -llimn ;;
    *) echo "fuzz: unknown target $t"; exit 1 ;;
  esac
  corpus="$WORK/corpus-$t"
  mkdir -p "$corpus" "$WORK/artifacts-$t"
  cp -n "$ROOT/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  seeds=()
  if [ "$t" = model_load ] && [ -n "${LIMN_TEST_FIXTURES:-}" ]; then seeds=("$LIMN_TEST_FIXTURES"); fi
  echo "fuzz: $t for ${SECONDS_TO_RUN}s (log: $WORK/$t.log)"
  asan=${ASAN_OPTIONS:-}
  limits=(-rss_limit_mb=4096)
  case $t in model_load|c_api) asan=${ASAN_OPTIONS:-$TORCH_ASAN}; limits+=(-malloc_limit_mb=1000000000) ;; esac
  status=0
  ASAN_OPTIONS=$asan "$WORK/fuzz_$t" -max_total_time="$SECONDS_TO_RUN" "${limits[@]}" -timeout=60 \
    -print_final_stats=1 -artifact_prefix="$WORK/artifacts-$t/" "$corpus" "${seeds[@]}" >"$WORK/$t.log" 2>&1 \
    || status=$?
  grep -E '^(stat::|Done|==[0-9]+==ERROR|SUMMARY|INFO: Seed|#[0-9]+ +DONE)' "$WORK/$t.log" | tail -8
  [ "$status" -eq 0 ] || { echo "fuzz: $t found a crash (exit $status): $(ls "$WORK/artifacts-$t")"; exit 1; }
done
