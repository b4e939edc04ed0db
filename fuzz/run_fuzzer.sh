#!/bin/sh
# run_fuzzer.sh FUZZER CORPUS_DIR SECONDS [extra libFuzzer flags]
# Runs FUZZER for SECONDS over a scratch copy of CORPUS_DIR, so the committed
# corpus is never rewritten. A crash leaves its input in the scratch directory
# and the path is printed; commit it to CORPUS_DIR to keep it as a regression.
set -eu
fuzzer=$1; corpus=$2; seconds=$3; shift 3
work=$(mktemp -d "${TMPDIR:-/tmp}/qtx-fuzz.XXXXXX")
mkdir -p "$work/corpus"
cp "$corpus"/* "$work/corpus/" 2>/dev/null || true
set +e
"$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" 2>"$work/log"
rc=$?
set -e
grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)|cov:' "$work/log" | tail -4
if [ $rc -ne 0 ]; then
  tail -40 "$work/log"
  echo "run_fuzzer: $fuzzer failed (exit $rc); inputs in $work" >&2
  exit $rc
fi
rm -rf "$work"
