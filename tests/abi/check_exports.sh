#!/usr/bin/env bash
# What libqtx-host.so exports, checked against the committed allow-list:
#
#   - the soname is libqtx-host.so.MAJOR; the C API's symbols carry a
#     version node of that major (QTX_HOST_MAJOR, or QTX_HOST_MAJOR.N for
#     later additions), the C++ ones QTX_HOST_CXX_MAJOR.MINOR;
#   - no GNU_UNIQUE object (those merge with a program's own copies);
#   - nothing outside the C API (qtx_*), the C++ API (qtx::host) and the
#     schema's message classes (qtx::agent::v1), with their typeinfo and
#     vtables;
#   - the C API and qtx::host exports are exactly the allow-list (demangled,
#     one a line). The schema's classes are generated code whose exported
#     inline functions vary by compiler, so only their namespace is checked;
#     so is the type information of function types that clang's
#     -fsanitize=function emits (typeinfo for qtx::host::Error (char const*)).
#
#   tests/abi/check_exports.sh LIBRARY ALLOWLIST VERSION [--update]
#
# VERSION is the project's (MAJOR.MINOR.PATCH). After adding an export on
# purpose, regenerate the list and commit it:
#   tests/abi/check_exports.sh build/lib/libqtx-host.so tests/abi/libqtx-host.symbols 0.2.0 --update
set -euo pipefail
lib=$1 list=$2 version=$3 mode=${4:-check}
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
status=0
problem() {
  echo "FAIL: $*" >&2
  status=1
}

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libqtx-host.so.$major" ] || problem "soname is '$soname', not libqtx-host.so.$major"

# nm -D lines: "VALUE TYPE NAME@@NODE", or "VALUE A NODE" for a version node.
raw=$(nm -D --defined-only "$lib")
c_node="QTX_HOST_${major}(\.[0-9]+)?"
cxx_node="QTX_HOST_CXX_${major}\.${minor}"
nodes=$(awk '$2 == "A" { print $3 }' <<<"$raw")
bad_nodes=$(grep -Ev "^($c_node|$cxx_node)$" <<<"$nodes" || true)
[ -z "$bad_nodes" ] || problem "version nodes other than QTX_HOST_$major[.N] and QTX_HOST_CXX_$major.$minor: $bad_nodes"
misversioned=$(awk '$2 != "A" { print $3 }' <<<"$raw" |
  grep -Ev "^(qtx_[a-z0-9_]+@@$c_node|_Z.*@@$cxx_node)$" || true)
[ -z "$misversioned" ] || problem "exports outside their version node (C: QTX_HOST_$major, C++: QTX_HOST_CXX_$major.$minor):
$misversioned"
unique=$(awk '$2 == "u" { print $3 }' <<<"$raw" | c++filt)
[ -z "$unique" ] || problem "GNU_UNIQUE objects exported: $unique"

names=$(awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' <<<"$raw" | c++filt | LC_ALL=C sort -u)
api='^(qtx_[a-z0-9_]+|qtx::host::.*|(typeinfo|typeinfo name|vtable) for qtx::host::.*)$'
schema='^(qtx::agent::v1::.*|(typeinfo|typeinfo name|vtable) for qtx::agent::v1::.*)$'
outside=$(grep -Ev "$api" <<<"$names" | grep -Ev "$schema" || true)
[ -z "$outside" ] || problem "exported outside qtx_*, qtx::host and qtx::agent::v1:
$outside"

function_types='^typeinfo (name )?for .*\)( noexcept)?$'
exported=$(grep -E "$api" <<<"$names" | grep -Ev "$function_types" || true)
if [ "$mode" = "--update" ]; then
  {
    echo "# The C API and qtx::host symbols libqtx-host.so exports (nm -D --demangle, sorted)."
    echo "# Regenerate after adding an export on purpose (docs/abi.md):"
    echo "#   tests/abi/check_exports.sh build/lib/libqtx-host.so tests/abi/libqtx-host.symbols $version --update"
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
  echo "An intended change: tests/abi/check_exports.sh $lib $list $version --update" >&2
  exit 1
fi
echo "ok: $(wc -l <<<"$exported") C API and qtx::host symbols as listed," \
  "$(grep -cE "$schema" <<<"$names") of qtx::agent::v1, nothing else; soname $soname"
