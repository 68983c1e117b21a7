#!/usr/bin/env bash
# Installs the built limn into a temporary prefix and builds a consumer against it two ways:
# find_package(limn) (CMake) and pkg-config. Usage: run.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/limn/limn.h"
test -f "$tmp/prefix/lib/cmake/limn/limnConfig.cmake"
soname=$(readelf -d "$tmp/prefix/lib/liblimn.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "liblimn.so.0" ] || { echo "unexpected SONAME: $soname"; exit 1; }

cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
ninja -C "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer_c"
"$tmp/consumer/consumer_cpp"

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc -std=c99 -o "$tmp/pc" "$src/tests/install/consumer/main.c" $(pkg-config --cflags --libs limn) \
  -Wl,-rpath,"$tmp/prefix/lib"
"$tmp/pc"
echo "install: find_package(limn) and pkg-config consumers built and ran"
