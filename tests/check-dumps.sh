#!/usr/bin/env bash
# check-dumps.sh BUILD_DIR: for every model generator the build made
# (BUILD_DIR/generators/*_generator),
#   - runs it twice into two fresh directories and requires byte-identical
#     objects, headers and IR dumps (determinism);
#   - requires `kiln-opt F.kir` to print every dumped F byte for byte (the
#     text round-trips) and `kiln-opt --passes=cse,fold,simplify,stable,fuse`
#     to accept it;
#   - requires the interpreter to give the same results before and after each
#     pass of the default pipeline on the model's 01-grad.kir (pass_equiv).
set -uo pipefail
build=$1
opt=$build/bin/kiln-opt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
count=0
for gen in "$build"/generators/*_generator; do
  name=$(basename "$gen" _generator)
  for run in a b; do
    mkdir -p "$tmp/$name/$run/out"
    if ! "$gen" --out-dir "$tmp/$name/$run/out" --dump "$tmp/$name/$run/dump" >"$tmp/$name.$run.log" 2>&1; then
      echo "check-dumps: $name: the generator failed:"; cat "$tmp/$name.$run.log"; status=1; continue 2
    fi
  done
  # report.json holds compile times, which vary; everything else must not
  if ! diff -r -q -x report.json "$tmp/$name/a" "$tmp/$name/b"; then
    echo "check-dumps: $name: two compilations differ"; status=1
  fi
  for f in "$tmp/$name/a/dump"/*.kir; do
    count=$((count + 1))
    if ! "$opt" "$f" | cmp -s - "$f"; then
      echo "check-dumps: $name/$(basename "$f"): kiln-opt does not print it back byte for byte"; status=1
    fi
    if ! "$opt" "$f" --passes=cse,fold,simplify,stable,fuse >/dev/null 2>"$tmp/err"; then
      echo "check-dumps: $name/$(basename "$f"): kiln-opt --passes=cse,fold,simplify,stable,fuse failed:"
      cat "$tmp/err"; status=1
    fi
  done
  if ! "$build/bin/kiln_pass_equiv" "$tmp/$name/a/dump/01-grad.kir"; then
    echo "check-dumps: $name: a pass changed what the graph computes"; status=1
  fi
done
if [ "$count" -eq 0 ]; then echo "check-dumps: no dumps found under $build/generators"; exit 1; fi
echo "check-dumps: $count dumped .kir files checked"
exit $status
