#!/bin/sh
# Every qtx_* metric the alerting rules use must be one the library exports:
# checked against an exposition (tests/data/metrics-text.txt, which carries
# every family). Usage: check-rule-metrics.sh RULES EXPOSITION
set -eu
rules=$1
exposition=$2
status=0
for m in $(grep -o 'qtx_[a-z0-9_]*' "$rules" | sort -u); do
  if ! grep -q "^# TYPE $m " "$exposition"; then
    echo "$rules uses $m, which is not exported" >&2
    status=1
  fi
done
exit $status
