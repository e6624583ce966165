#!/usr/bin/env bash
# Runs kir_fuzz for a bounded time from the lit tests' .kir files plus a
# dictionary of .kir tokens (op names from Ops.def, keywords, punctuation).
# Fails on any crash, sanitizer report, leak, slow input (> 10 s) or an
# input that needs over 2 GB. A failing input is kept in WORK/ as
# crash-*/timeout-*/oom-*; reproduce with `kir_fuzz WORK/crash-...`.
# Usage: run-fuzz.sh KIR_FUZZ SECONDS WORK [extra libFuzzer flags...]
set -euo pipefail
fuzz=$1 seconds=$2 work=$3
shift 3
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work/corpus" "$work/seeds"
find "$root/tests/lit" -name '*.kir' -exec cp {} "$work/seeds/" \;
if [ -d "$root/tools/fuzz/corpus" ]; then cp "$root"/tools/fuzz/corpus/* "$work/seeds/" 2>/dev/null || true; fi
{
  for w in func updates loc f32 i32 input param state const nan inf -inf '->' '%0' '%1' '@f' '"x"' \
           '[' ']' '{' '}' '(' ')' ',' ':' '=' '= ' ' : ' '\n' '\\"'; do
    printf '"%s"\n' "$(printf '%s' "$w" | sed 's/\\/\\\\/g; s/"/\\"/g')"
  done
  sed -n 's/^KILN_OP([A-Za-z0-9]*, *"\([a-zA-Z0-9_]*\)".*/"\1"/p' "$root/compiler/ir/Ops.def"
} > "$work/kir.dict"
echo "kir_fuzz: $(ls "$work/seeds" | wc -l) seeds, $(wc -l < "$work/kir.dict") dictionary words, ${seconds}s"
cd "$work"
exec "$fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -dict="$work/kir.dict" -artifact_prefix="$work/" -print_final_stats=1 "$@" "$work/corpus" "$work/seeds"
