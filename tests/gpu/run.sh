#!/usr/bin/env bash
# Run ON the GPU machine (device tool), from the repository root, after tests/gpu/prepare_deps.sh
# here and with carry [".deps"]:  bash tests/gpu/run.sh
# Builds against the machine's torch, runs the GPU tests and the GPU benchmarks, and leaves the
# logs in $OUT (or out/gpu).
set -uo pipefail
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIMN_DEPS_DIR="$PWD/.deps" \
  > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
ninja -C build-gpu -j 16 > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
LIMN_JOBS=16 ctest --test-dir build-gpu --output-on-failure -j 4 > "$OUT/ctest.log" 2>&1
echo "ctest exit $?" >> "$OUT/ctest.log"
tail -25 "$OUT/ctest.log"

export PYTHONPATH="$PWD/models"
python3 -m limn_models.export dctnet --random-init --seed 0 -o build-gpu/dctnet.pt > /dev/null
# Compiled CUDA packages can only be built where a GPU is (AOTInductor compiles for it).
for p in fp32 fp16; do
  python3 -m limn_models.export dctnet --random-init --seed 0 --device cuda --precision $p \
    -o build-gpu/dctnet-cuda-$p.pt2 > "$OUT/export-cuda-$p.log" 2>&1 || tail -20 "$OUT/export-cuda-$p.log"
done
B=build-gpu/examples/bench/limn-bench
{
  for p in fp32 fp16; do
    [ -f build-gpu/dctnet-cuda-$p.pt2 ] && $B --model build-gpu/dctnet-cuda-$p.pt2 --device cuda \
      --size 512x512 --size 1024x1024 --size 2048x2048 --warmup 5 --iters 30
  done
  for p in fp32 fp16 bf16; do
    $B --model build-gpu/dctnet.pt --device cuda --precision $p --size 512x512 --size 1024x1024 \
       --size 2048x2048 --warmup 5 --iters 30
    $B --model build-gpu/dctnet.pt --device cuda --precision $p --size 512x512 --batch 8 --warmup 3 --iters 10
  done
  python3 examples/bench/compare_eager.py --bench $B --device cuda --precision fp32 \
    --size 512x512 --size 1024x1024 --iters 20
  python3 examples/bench/compare_eager.py --bench $B --device cuda --precision fp16 \
    --size 512x512 --size 1024x1024 --iters 20
} > "$OUT/bench.log" 2>&1
cat "$OUT/bench.log"
