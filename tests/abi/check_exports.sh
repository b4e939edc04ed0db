#!/usr/bin/env bash
# What libqtx-host.so exports, checked against the committed allow-list:
#
#   - the soname is libqtx-host.so.MAJOR and every export carries a version
#     node of that major (QTX_HOST_MAJOR, QTX_HOST_MAJOR.N);
#   - no GNU_UNIQUE object (those merge with a program's own copies);
#   - nothing outside the C API (qtx_*), the C++ API (qtx::host) and the
#     schema's message classes (qtx::agent::v1), with their typeinfo and
#     vtables;
#   - the C API and qtx::host exports are exactly the allow-list (demangled,
#     one a line). The schema's classes are generated code whose exported
#     inline functions vary by compiler, so only their namespace is checked.
#
#   tests/abi/check_exports.sh LIBRARY ALLOWLIST MAJOR [--update]
#
# After adding an export on purpose, regenerate the list and commit it:
#   tests/abi/check_exports.sh build/lib/libqtx-host.so tests/abi/libqtx-host.symbols 0 --update
set -euo pipefail
lib=$1 list=$2 major=$3 mode=${4:-check}
status=0
problem() {
  echo "FAIL: $*" >&2
  status=1
}

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libqtx-host.so.$major" ] || problem "soname is '$soname', not libqtx-host.so.$major"

# nm -D lines: "VALUE TYPE NAME@@VERSION", or "VALUE A NODE" for a version node.
raw=$(nm -D --defined-only "$lib")
nodes=$(awk '$2 == "A" { print $3 }' <<<"$raw")
bad_nodes=$(grep -Ev "^QTX_HOST_${major}(\.[0-9]+)?$" <<<"$nodes" || true)
[ -z "$bad_nodes" ] || problem "version nodes outside QTX_HOST_$major: $bad_nodes"
unversioned=$(awk '$2 != "A" && $3 !~ /@@QTX_HOST_/ { print $3 }' <<<"$raw")
[ -z "$unversioned" ] || problem "exports without a QTX_HOST_ version: $unversioned"
unique=$(awk '$2 == "u" { print $3 }' <<<"$raw" | c++filt)
[ -z "$unique" ] || problem "GNU_UNIQUE objects exported: $unique"

names=$(awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' <<<"$raw" | c++filt | LC_ALL=C sort -u)
api='^(qtx_[a-z0-9_]+|qtx::host::.*|(typeinfo|typeinfo name|vtable) for qtx::host::.*)$'
schema='^(qtx::agent::v1::.*|(typeinfo|typeinfo name|vtable) for qtx::agent::v1::.*)$'
outside=$(grep -Ev "$api" <<<"$names" | grep -Ev "$schema" || true)
[ -z "$outside" ] || problem "exported outside qtx_*, qtx::host and qtx::agent::v1:
$outside"

exported=$(grep -E "$api" <<<"$names" || true)
if [ "$mode" = "--update" ]; then
  {
    echo "# The C API and qtx::host symbols libqtx-host.so exports (nm -D --demangle, sorted)."
    echo "# Regenerate after adding an export on purpose (docs/abi.md):"
    echo "#   tests/abi/check_exports.sh build/lib/libqtx-host.so tests/abi/libqtx-host.symbols $major --update"
    echo "$exported"
  } >"$list"
  echo "wrote $(wc -l <<<"$exported") symbols to $list"
  exit "$status"
fi

allowed=$(grep -v '^#' "$list" | LC_ALL=C sort -u)
added=$(LC_ALL=C comm -13 <(echo "$allowed") <(echo "$exported"))
removed=$(LC_ALL=C comm -23 <(echo "$allowed") <(echo "$exported"))
[ -z "$added" ] || problem "exported but not in $list:
$added"
[ -z "$removed" ] || problem "in $list but no longer exported (an ABI break within soname $major):
$removed"
if [ "$status" -ne 0 ]; then
  echo "An intended change: tests/abi/check_exports.sh $lib $list $major --update" >&2
  exit 1
fi
echo "ok: $(wc -l <<<"$exported") C API and qtx::host symbols as listed," \
  "$(grep -cE "$schema" <<<"$names") of qtx::agent::v1, nothing else; soname $soname"
