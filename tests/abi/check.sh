#!/usr/bin/env bash
# The ABI gate: compares the built liblimn.so with the committed baseline (abi/liblimn.abi, abidw's
# description of the exported functions and the types they reach) and fails on any change that
# breaks a program built against the baseline. Allowed, and only these:
#   - functions added;
#   - fields appended at the end of a struct whose first field is struct_size (limn.h's growable
#     structs), which may therefore grow;
#   - enumerators appended (abidiff counts them harmless);
#   - so a struct that points to a growable struct which grew is unchanged.
# Anything else abidiff reports (a function removed or retyped, a field moved, removed or retyped,
# another struct resized) fails: bump LIMN_ABI_VERSION, or keep the old layout.
#   check.sh LIBLIMN_SO [BASELINE]
#   check.sh --update LIBLIMN_SO [BASELINE]   rewrites the baseline (a deliberate step; see README)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UPDATE=0
[ "${1:-}" = "--update" ] && { UPDATE=1; shift; }
LIB=${1:?usage: check.sh [--update] LIBLIMN_SO [BASELINE]}
BASELINE=${2:-$ROOT/abi/liblimn.abi}
HEADER=${LIMN_ABI_HEADER:-$ROOT/include/limn/limn.h}
# Types whose changes do not matter to callers (see the file); none for the self-test.
SUPPR=${LIMN_ABI_SUPPRESSIONS-$ROOT/abi/limn.suppr}
command -v abidiff >/dev/null || { echo "abi: abidiff not found (apt-get install abigail-tools)"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
abidw --no-show-locs --no-comp-dir-path --no-corpus-path --headers-dir "$(dirname "$HEADER")" --drop-private-types ${SUPPR:+--suppressions "$SUPPR"} --out-file "$WORK/current.abi" "$LIB"
if ! grep -q "<function-decl name='limn_" "$WORK/current.abi" || ! grep -q "<class-decl name='limn_" "$WORK/current.abi"; then
  echo "abi: $LIB carries no description of limn.h's functions and types (src/c_api.cpp built without -g?)"
  exit 1
fi
if [ "$UPDATE" = 1 ]; then
  cp "$WORK/current.abi" "$BASELINE"
  echo "abi: wrote $BASELINE"
  exit 0
fi
[ -f "$BASELINE" ] || { echo "abi: no baseline $BASELINE (write one: tests/abi/check.sh --update $LIB)"; exit 1; }
set +e
abidiff --no-show-locs ${SUPPR:+--suppressions "$SUPPR"} "$BASELINE" "$WORK/current.abi" >"$WORK/report" 2>&1
rc=$?
set -e
if [ $rc -eq 0 ]; then
  echo "abi: liblimn.so matches the baseline $BASELINE"
  exit 0
fi
cat "$WORK/report"
if (( rc & 3 )); then echo "abi: abidiff failed (exit $rc)"; exit 1; fi
if (( rc & 8 )); then echo "abi: INCOMPATIBLE: a function or variable was removed; bump LIMN_ABI_VERSION"; exit 1; fi
python3 - "$WORK/report" "$HEADER" <<'PYEOF'
import re, sys
report = open(sys.argv[1]).read().splitlines()
header = open(sys.argv[2]).read()
growable = set(re.findall(r"typedef struct (\w+) \{\s*size_t struct_size;", header))
allowed = [
    r"(Functions|Variables|Function symbols|Variable symbols) changes summary:.*",
    r"\d+ functions? with some indirect sub-type changes?:",
    r"\[C\] 'function .*' has some indirect sub-type changes:",
    r"parameter \d+ of type '.*' has sub-type changes:",
    r"return type has sub-type changes:",
    r"in pointed to type '.*':",
    r"in unqualified underlying type '.*':",
    r"\d+ Added functions?:",
    r"\d+ Added function symbols? not referenced by debug info:",
    r"\[A\] .*",
    # A member pointing to a growable struct that grew: the struct's own changes are judged where
    # abidiff reports them (every growable struct is reached by a function of its own).
    r"\d+ data member changes?:",
    r"type size hasn't changed",
    r"no data member change \(\d+ filtered\);",
]
pointer_to_growable = re.compile(r"type of '(?:const )?(?:struct )?(\w+) ?\* ?\w+' changed:")
struct, old_bits, bad = None, None, []
for raw in report:
    line = raw.strip()
    if not line:
        continue
    m = re.fullmatch(r"(?:underlying )?type 'struct (\w+)' changed:", line)
    if m:
        struct, old_bits = m.group(1), None
        continue
    m = re.fullmatch(r"type size changed from (\d+) to (\d+) \(in bits\)", line)
    if m and struct in growable and int(m.group(2)) > int(m.group(1)):
        old_bits = int(m.group(1))
        continue
    if re.fullmatch(r"\d+ data member insertions?:", line) and old_bits is not None:
        continue
    m = re.fullmatch(r"'.*', at offset (\d+) \(in bits\)", line)
    if m and old_bits is not None and int(m.group(1)) >= old_bits:
        continue
    if any(re.fullmatch(p, line) for p in allowed):
        continue
    m = pointer_to_growable.fullmatch(line)
    if m and m.group(1) in growable:
        continue
    bad.append(line)
if bad:
    print("abi: INCOMPATIBLE change (growable structs: " + ", ".join(sorted(growable)) + "):")
    for line in bad:
        print("  " + line)
    print("abi: keep the old layout, or bump LIMN_ABI_VERSION and refresh the baseline (README, 'ABI')")
    sys.exit(1)
print("abi: compatible additions only; refresh the baseline deliberately: tests/abi/check.sh --update LIB")
PYEOF
