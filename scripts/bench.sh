#!/usr/bin/env bash
# Measures qtx beside the QEMU Guest Agent on this machine, on unix sockets
# and in a VM over virtio-serial (x86-64, and arm64 where the arm64 agent is
# built), and prints the table (docs/benchmarks.md).
# Installs what is missing (scripts/setup.sh), fetches the test guest's
# packages (scripts/fetch-guest-packages.sh), builds build-bench/ (preset bench) with the
# flags the agent ships with (RelWithDebInfo, -O2: under TCG an -O3 agent
# moves sha256-checked files 2.5 times slower), then runs bench/compare's
# agent_compare with the arguments given (default: every transport, 64 MiB
# files, 5 repetitions).
#
#   scripts/bench.sh [agent_compare options]     e.g. --quick, --transport unix
#
# Writes build-bench/agent_compare.json and build-bench/agent_compare.png.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/fetch-guest-packages.sh  # the VM transport's guest; the build itself never downloads
cmake --preset bench -DQTX_BUILD_VM_TESTS=ON >/dev/null
cmake --build build-bench --target agent_compare
[ $# -gt 0 ] || set -- --transport all
exec build-bench/bin/agent_compare --json build-bench/agent_compare.json --plot build-bench/agent_compare.png \
  --markdown build-bench/agent_compare.md "$@"
