#!/usr/bin/env bash
# The ABI gate's own test: a tiny library with a growable struct, built as a baseline and in three
# later versions, must pass when a function and an appended field are added, and fail when a field
# is inserted before others or a function is removed.
set -euo pipefail
CHECK=$(cd "$(dirname "$0")" && pwd)/check.sh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# version NAME: writes cur/limn/limn.h and cur/lib.c for that version and builds NAME.so from cur/
# (one source path for all, as one project's builds have).
version() {
  local v=$1 inserted="" appended="" inner="" g='int limn_g(int x);' h=""
  case $v in
    appended) appended="int32_t appended;"; h='int limn_h(int x);' ;;
    inner_appended) inner="const char* appended;" ;;
    inserted) inserted="int32_t inserted;" ;;
    removed) g="" ;;
  esac
  rm -rf cur && mkdir -p cur/limn
  cat > cur/limn/limn.h <<H
#include <stddef.h>
#include <stdint.h>
#define API __attribute__((visibility("default")))
typedef struct limn_inner { size_t struct_size; float a; $inner } limn_inner;
typedef struct limn_opts { size_t struct_size; $inserted float strength; int32_t tiles; const limn_inner* inner; $appended } limn_opts;
API int limn_f(const limn_opts* o);
API int limn_i(const limn_inner* i);
${g:+API $g}
${h:+API $h}
H
  { echo '#include "limn/limn.h"'; echo 'int limn_f(const limn_opts* o) { return (int)o->strength + o->tiles; }'
    echo 'int limn_i(const limn_inner* i) { return (int)i->a; }'
    [ -n "$g" ] && echo 'int limn_g(int x) { return x + 1; }'
    [ -n "$h" ] && echo 'int limn_h(int x) { return x * 3; }'; } > cur/lib.c
  cc -g -O1 -shared -fPIC -fvisibility=hidden -I cur -o "$v.so" cur/lib.c
}
version base
LIMN_ABI_HEADER=cur/limn/limn.h "$CHECK" --update base.so baseline.abi >/dev/null
status=0
expect() {  # expect PASS|FAIL VERSION
  version "$2"
  if LIMN_ABI_HEADER=cur/limn/limn.h "$CHECK" "$2.so" baseline.abi >"$2.log" 2>&1; then got=PASS; else got=FAIL; fi
  if [ "$got" = "$1" ]; then echo "ok: $2 -> $got"; else echo "WRONG: $2 -> $got (expected $1)"; cat "$2.log"; status=1; fi
}
expect PASS base
expect PASS appended
expect PASS inner_appended
expect FAIL inserted
expect FAIL removed
exit $status
