#!/usr/bin/env bash
# Checks that C and C++ files follow .clang-format (clang-format-14, as
# Debian 12 ships it), changing nothing. With no arguments it checks every
# tracked .c, .cc and .h file; with arguments, only those files (e.g. the
# ones a change touched: scripts/check-format.sh $(git diff --name-only main)).
# Prints each offending file and how to fix them; exits 1 if there is any.
#
#   scripts/check-format.sh [FILE...]
#
# Environment: CLANG_FORMAT (default clang-format-14).
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format-14}
command -v "$clang_format" >/dev/null || {
  echo "check-format: $clang_format not found (apt-get install clang-format-14; scripts/setup.sh does)" >&2
  exit 2
}

files=()
if [ $# -gt 0 ]; then
  for f in "$@"; do
    case $f in *.c | *.cc | *.h) [ -f "$f" ] && files+=("$f") ;; esac
  done
else
  while IFS= read -r -d '' f; do files+=("$f"); done < <(git ls-files -z -- '*.c' '*.cc' '*.h')
fi

[ ${#files[@]} -gt 0 ] || { echo "check-format: no C or C++ file to check"; exit 0; }
# One clang-format for all files; each difference is reported as
# FILE:LINE:COL: error: code should be clang-formatted.
report=$("$clang_format" --dry-run -Werror "${files[@]}" 2>&1 >/dev/null || true)
mapfile -t bad < <(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' <<<"$report" | sort -u)
if [ ${#bad[@]} -gt 0 ]; then
  printf 'check-format: not formatted: %s\n' "${bad[@]}" >&2
  echo "check-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format; fix with: $clang_format -i FILE..." >&2
  exit 1
fi
if [ -n "$report" ]; then
  echo "$report" >&2
  exit 2
fi
echo "check-format: ${#files[@]} files formatted"
