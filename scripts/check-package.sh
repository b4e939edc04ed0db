#!/usr/bin/env bash
# Installs the build tree's libqtx-host into a scratch prefix and builds the
# examples against it the two ways users do (find_package, pkg-config), then
# runs each example against a real agent on a unix socket.
#
#   scripts/check-package.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

work=$(mktemp -d /tmp/qtx-package.XXXXXX)
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S examples -B "$work/examples" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build "$work/examples"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046 # pkg-config output is a list of words
cc -std=c99 -Wall -Wextra -Werror examples/c/main.c -o "$work/example_c_pkgconfig" $(pkg-config --cflags --libs qtx-host)

sock=$work/agent.sock
"$build/bin/qtx-agent" --transport "unix-listen:$sock" --log-level warn --config /dev/null &
agent_pid=$!
for example in "$work/examples/qtx_example_cpp" "$work/examples/qtx_example_c" "$work/example_c_pkgconfig"; do
  echo "--- $(basename "$example") $sock"
  LD_LIBRARY_PATH=$prefix/lib "$example" "$sock"
done
echo "--- installed qtx"
"$prefix/bin/qtx" --socket "$sock" ping
