#!/usr/bin/env bash
# check-metric.sh [--max] "METRIC" BOUND COMMAND...: runs COMMAND, finds the
# line "METRIC: VALUE" in its output and fails unless VALUE >= BOUND (with
# --max, for metrics where lower is better: unless VALUE <= BOUND).
set -uo pipefail
cmp=">="
if [ "${1:-}" = "--max" ]; then cmp="<="; shift; fi
metric=$1; bound=$2; shift 2
out=$("$@" 2>&1); rc=$?
printf '%s\n' "$out" | tail -n 20
if [ $rc -ne 0 ]; then echo "check-metric: command failed with exit code $rc"; exit 1; fi
value=$(printf '%s\n' "$out" | sed -n "s/^$metric: \([-0-9.eE]*\)\$/\1/p" | tail -n 1)
if [ -z "$value" ]; then echo "check-metric: no line '$metric: VALUE' in the output"; exit 1; fi
if awk -v v="$value" -v b="$bound" -v c="$cmp" 'BEGIN { exit !(c == ">=" ? v >= b : v <= b) }'; then
  echo "check-metric: $metric = $value $cmp $bound"
else
  if [ "$cmp" = ">=" ]; then echo "check-metric: $metric = $value is below $bound"
  else echo "check-metric: $metric = $value is above $bound"; fi
  exit 1
fi
