#!/usr/bin/env bash
# Runs the unit, integration and hostile-peer tests of an already built tree
# on a machine loaded on purpose: one busy loop per core, and ctest running
# twice as many tests at once as there are cores. A test that passes only
# when its threads get the CPU on time (a count read before the thread that
# updates it has run, a wait standing in for synchronisation) fails here,
# where it can be found, rather than at random on a busy CI machine.
# scripts/test.sh runs this on the gcc tree after the normal run; it builds
# nothing.
#
#   scripts/test-under-load.sh [BUILD_DIR]        (default build)
#
# Environment: QTX_LOAD_JOBS (ctest -j, default twice nproc), QTX_LOAD_LABELS
# (ctest -L, default 'unit|integration|hostile'). Extra ctest arguments can
# be given after the directory (e.g. -R FaultInjection --repeat until-fail:40).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-build}
[ $# -eq 0 ] || shift
if [ ! -f "$dir/CTestTestfile.cmake" ]; then
  echo "test-under-load: $dir is not a built tree (run scripts/test.sh, or cmake --preset dev && cmake --build build)" >&2
  exit 2
fi
cores=$(nproc)
jobs=${QTX_LOAD_JOBS:-$((2 * cores))}
labels=${QTX_LOAD_LABELS:-unit|integration|hostile}

# The busy loops end with this script however it ends (success, a failed
# test, an interrupt): each is killed by its own pid.
loops=()
stop_loops() {
  local pid
  for pid in "${loops[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${loops[@]}"; do wait "$pid" 2>/dev/null || true; done
  loops=()
}
trap stop_loops EXIT
trap 'stop_loops; exit 130' INT
trap 'stop_loops; exit 143' TERM

for _ in $(seq "$cores"); do
  # A subshell spinning without a fork: a full core each, nothing else.
  bash -c 'while :; do :; done' &
  loops+=($!)
done
# The bindings' suites (label bindings: go test -race, pytest) are left out:
# each is one long ctest entry over the C API whose threads the C++ suites
# load here already, and under -race Go's would cost minutes.
echo "test-under-load: ${#loops[@]} busy loops, ctest -j $jobs -L '$labels' -LE bindings in $dir"
ctest --test-dir "$dir" -L "$labels" -LE bindings --output-on-failure -j "$jobs" "$@"
