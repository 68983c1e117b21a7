#!/usr/bin/env bash
# The ABI gate: compares the built liblimn.so with the committed baseline (abi/liblimn.abi, abidw's
# description of the public functions and types of limn.h) and fails on a change that breaks
# programs built against the baseline:
#   - a function or variable removed, or its signature changed;
#   - a public type changed other than by fields appended at the end of a struct that starts with
#     struct_size (the growable structs of limn.h), or by enumerators appended to an enum.
# Additions (new functions, appended fields) pass, with a reminder to refresh the baseline.
#   check.sh LIBLIMN_SO [BASELINE]
#   check.sh --update LIBLIMN_SO [BASELINE]   writes the baseline (a deliberate step; see README)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UPDATE=0
[ "${1:-}" = "--update" ] && { UPDATE=1; shift; }
LIB=${1:?usage: check.sh [--update] LIBLIMN_SO [BASELINE]}
BASELINE=${2:-$ROOT/abi/liblimn.abi}
command -v abidiff >/dev/null || { echo "abi: abidiff not found (apt-get install abigail-tools)"; exit 1; }
DW_OPTS=(--no-show-locs --no-comp-dir-path --headers-dir "$ROOT/include/limn" --drop-private-types)
if [ "$UPDATE" = 1 ]; then
  abidw "${DW_OPTS[@]}" --out-file "$BASELINE" "$LIB"
  echo "abi: wrote $BASELINE ($(grep -c '<function-decl' "$BASELINE") functions)"
  exit 0
fi
[ -f "$BASELINE" ] || { echo "abi: no baseline $BASELINE (tests/abi/check.sh --update $LIB)"; exit 1; }
if ! grep -q "<function-decl name='limn_model_load'" <(abidw "${DW_OPTS[@]}" "$LIB"); then
  echo "abi: $LIB carries no description of limn.h's functions (built without debug information for src/c_api.cpp?)"
  exit 1
fi
set +e
REPORT=$(abidiff --no-show-locs --headers-dir2 "$ROOT/include/limn" --drop-private-types "$BASELINE" "$LIB" 2>&1)
rc=$?
set -e
if [ $rc -eq 0 ]; then
  echo "abi: liblimn.so matches the baseline"
  exit 0
fi
echo "$REPORT"
if (( rc & 3 )); then echo "abi: abidiff failed (exit $rc)"; exit 1; fi
if (( rc & 8 )); then echo "abi: INCOMPATIBLE change (functions removed or changed): bump LIMN_ABI_VERSION"; exit 1; fi
# rc & 4: changes. Allowed: functions added, fields appended to growable structs, enumerators
# appended. Anything that moves, removes or retypes what a built program uses is not.
if grep -Eq "offset changed|removed|type of .* changed|deleted|name of .* changed|underlying type|size of enum|enumerator .* value changed|function .* changed:.*parameter" <<<"$REPORT" ||
   grep -Eq "[0-9]+ Removed|[0-9]+ Changed.*function" <<<"$REPORT" && grep -Eq "parameter [0-9]+ of type .* changed|return type changed" <<<"$REPORT"; then
  echo "abi: INCOMPATIBLE change (see above): bump LIMN_ABI_VERSION, or keep the old layout"
  exit 1
fi
echo "abi: compatible additions only; refresh the baseline with tests/abi/check.sh --update $LIB"
exit 0
