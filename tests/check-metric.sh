#!/usr/bin/env bash
# check-metric.sh "METRIC" MIN COMMAND...: runs COMMAND, finds the line
# "METRIC: VALUE" in its output and fails unless VALUE >= MIN.
#
# check-metric.sh --max "METRIC" MAX COMMAND...: fails unless VALUE <= MAX.
#
# check-metric.sh "METRIC" BOUND ["METRIC" BOUND ...] -- COMMAND...: checks
# several metrics of one run. BOUND is MIN (VALUE >= MIN), LO:HI (LO <= VALUE
# <= HI), :HI (VALUE <= HI) or LO: (VALUE >= LO).
set -uo pipefail
metrics=(); bounds=()
if [ "${1:-}" = "--max" ]; then
  metrics=("$2"); bounds=(":$3"); shift 3
elif printf '%s\n' "$@" | grep -qx -- '--'; then
  while [ "$1" != "--" ]; do
    if [ $# -lt 3 ]; then echo "check-metric: METRIC BOUND pairs must come before --"; exit 2; fi
    metrics+=("$1"); bounds+=("$2"); shift 2
  done
  shift
else
  metrics=("$1"); bounds=("$2"); shift 2
fi
out=$("$@" 2>&1); rc=$?
printf '%s\n' "$out" | tail -n 20
if [ $rc -ne 0 ]; then echo "check-metric: command failed with exit code $rc"; exit 1; fi
status=0
for i in "${!metrics[@]}"; do
  metric=${metrics[$i]}; bound=${bounds[$i]}
  case $bound in
    *:*) lo=${bound%%:*}; hi=${bound#*:} ;;
    *) lo=$bound; hi= ;;
  esac
  value=$(printf '%s\n' "$out" | sed -n "s/^$metric: \([-0-9.eE]*\)\$/\1/p" | tail -n 1)
  if [ -z "$value" ]; then echo "check-metric: no line '$metric: VALUE' in the output"; status=1; continue; fi
  if awk -v v="$value" -v lo="$lo" -v hi="$hi" 'BEGIN { exit !((lo == "" || v >= lo + 0) && (hi == "" || v <= hi + 0)) }'; then
    echo "check-metric: $metric = $value is within [${lo:--inf}, ${hi:-inf}]"
  else
    echo "check-metric: $metric = $value is outside [${lo:--inf}, ${hi:-inf}]"; status=1
  fi
done
exit $status
