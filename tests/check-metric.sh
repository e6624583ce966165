#!/usr/bin/env bash
# check-metric.sh "METRIC" MIN COMMAND...: runs COMMAND, finds the line
# "METRIC: VALUE" in its output and fails unless VALUE >= MIN.
set -uo pipefail
metric=$1; min=$2; shift 2
out=$("$@" 2>&1); rc=$?
printf '%s\n' "$out" | tail -n 20
if [ $rc -ne 0 ]; then echo "check-metric: command failed with exit code $rc"; exit 1; fi
value=$(printf '%s\n' "$out" | sed -n "s/^$metric: \([-0-9.eE]*\)\$/\1/p" | tail -n 1)
if [ -z "$value" ]; then echo "check-metric: no line '$metric: VALUE' in the output"; exit 1; fi
if awk -v v="$value" -v m="$min" 'BEGIN { exit !(v >= m) }'; then
  echo "check-metric: $metric = $value >= $min"
else
  echo "check-metric: $metric = $value is below $min"; exit 1
fi
