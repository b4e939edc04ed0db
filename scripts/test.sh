#!/usr/bin/env bash
# Runs every qtx test on a fresh Debian 12 machine: installs what is missing,
# builds with gcc and warnings as errors, runs the unit, integration and
# hostile-peer tests, the real-VM tests, a smoke run of the benchmark harness and the
# installed-package check; then builds everything
# again with clang, warnings as errors, ASan+UBSan and the fuzz targets, runs
# the unit, integration and hostile-peer tests there and a short run of every fuzz target;
# last, the host library's concurrency tests under ThreadSanitizer.
# (The systemd-guest and cloud-init guest tests, labels vm-systemd and
# vm-cloud, take minutes and run apart, as root: ctest --test-dir build -L
# vm-systemd, -L vm-cloud.)
#
#   scripts/test.sh
#
# Environment: JOBS (parallel jobs, default nproc), QTX_FUZZ_SECONDS (per fuzz
# target, default 15).
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${QTX_FUZZ_SECONDS:-15}
# Each stage is headed by the minutes and seconds spent so far.
stage() { printf '\n=== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

stage "setup"
scripts/setup.sh

stage "the test guest's Debian packages (the one step that downloads)"
scripts/fetch-guest-packages.sh

stage "build (warnings as errors)"
# Debug information costs up to a third of the compile time: the gcc tree
# goes without, the clang trees keep line tables for the sanitizers' stacks.
cmake -S . -B build -G Ninja -DQTX_WERROR=ON -DQTX_BUILD_BENCHMARKS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" -DQTX_BUILD_VM_TESTS=ON >/dev/null
cmake --build build -j "$JOBS"

stage "unit, integration and hostile-peer tests"
ctest --test-dir build -L 'unit|integration|hostile' --output-on-failure -j "$JOBS"

stage "real-VM tests (QEMU, TCG; the guest is built from Debian packages)"
ctest --test-dir build -L '^vm$' --output-on-failure

stage "benchmark harness smoke run: qtx beside qemu-ga, tiny sizes (figures printed, never asserted)"
build/bin/agent_compare --quick --transport all --json build/agent_compare.json --plot build/agent_compare.png

stage "the installed package: find_package(qtx), pkg-config qtx-host, examples"
scripts/check-package.sh build

stage "clang, warnings as errors, ASan+UBSan: every test program and the fuzz targets"
# One sanitized tree for both: building a second one only for the fuzzers
# would compile everything twice more.
CC=clang-14 CXX=clang++-14 cmake -S . -B build-san -G Ninja -DQTX_WERROR=ON -DQTX_BUILD_FUZZERS=ON \
  -DQTX_BUILD_TESTS=ON -DQTX_BUILD_VM_TESTS=OFF -DQTX_FUZZ_SECONDS="$FUZZ_SECONDS" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" >/dev/null
cmake --build build-san -j "$JOBS"

stage "unit, integration and hostile-peer tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-san -L 'unit|integration|hostile' --output-on-failure -j "$JOBS"

stage "fuzz targets, ${FUZZ_SECONDS}s each"
ctest --test-dir build-san -L fuzz --output-on-failure

stage "the host library's concurrency tests under ThreadSanitizer"
scripts/tsan.sh

stage "all tests passed"
