#!/usr/bin/env bash
# Ignoring a limn_status is a compiler warning (LIMN_NODISCARD), in C and in C++; checking it, or
# calling the inline *_options_init without looking at its status, is not.
#   nodiscard.sh CC CXX INCLUDE_DIR
set -euo pipefail
CC=$1 CXX=$2 INC=$3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/checked.c" <<'C'
#include <limn/limn.h>
int f(void) {
    limn_model_options o;
    limn_model_options_init(&o);
    return limn_memory_reset_peak("cpu") == LIMN_OK ? 0 : 1;
}
C
cat > "$WORK/ignored.c" <<'C'
#include <limn/limn.h>
void f(void) { limn_memory_reset_peak("cpu"); }
C
status=0
for lang in c c++; do
  compiler=$CC; [ "$lang" = c++ ] && compiler=$CXX
  if ! "$compiler" -x "$lang" -c -o "$WORK/out.o" -Werror=unused-result -I "$INC" "$WORK/checked.c" 2>"$WORK/log"; then
    echo "FAIL ($lang): a checked status or an init call was warned about:"; cat "$WORK/log"; status=1
  fi
  if "$compiler" -x "$lang" -c -o "$WORK/out.o" -Werror=unused-result -I "$INC" "$WORK/ignored.c" 2>"$WORK/log"; then
    echo "FAIL ($lang): ignoring the status of limn_memory_reset_peak compiled without a warning"; status=1
  elif ! grep -q "limn_memory_reset_peak" "$WORK/log"; then
    echo "FAIL ($lang): the warning does not name the function:"; cat "$WORK/log"; status=1
  else
    echo "ok ($lang): $(grep -m1 -o 'warning.*\|error.*' "$WORK/log" | head -c 160)"
  fi
done
exit $status
