#!/bin/sh
# The random-graph checker must catch a one-ulp difference: with
# --inject-fault (one bit of each graph's first output flipped after the
# compiled run) every graph fails, each failure names its seed and a
# reproducer, the reproducer replays clean (the fault is in the checker, not
# the graph) and kiln-opt reads it.
# usage: random_graphs_fault.sh kiln_random_graphs kiln-opt WORKDIR
set -u
bin=$1 opt=$2 dir=$3
rm -rf "$dir"
"$bin" --count 3 --seed 11 --inject-fault --out "$dir" 2>"$dir.err"
rc=$?
cat "$dir.err"
[ $rc -eq 3 ] || { echo "expected exit status 3 (three failing graphs), got $rc"; exit 1; }
for s in 11 12 13; do
  grep -q "FAIL random graph seed $s " "$dir.err" || { echo "no failure reported for seed $s"; exit 1; }
  grep -q "reproducer: $dir/random-graph-$s.kir" "$dir.err" || { echo "no reproducer named for seed $s"; exit 1; }
  [ -f "$dir/random-graph-$s.kir" ] || { echo "missing $dir/random-graph-$s.kir"; exit 1; }
done
"$bin" --replay "$dir/random-graph-11.kir" || { echo "the reproducer does not replay clean"; exit 1; }
"$opt" "$dir/random-graph-11.kir" >/dev/null || { echo "kiln-opt cannot read the reproducer"; exit 1; }
echo "ok: the injected one-ulp fault was caught in all 3 graphs"
