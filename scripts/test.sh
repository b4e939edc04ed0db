#!/usr/bin/env bash
# Runs every qtx test on a fresh Debian 12 machine: installs what is missing,
# checks the formatting, fetches the test guest's Debian packages (the only
# step that downloads), builds with gcc and warnings as errors (preset dev),
# runs the unit, integration and hostile-peer tests, then the same again on
# a machine loaded on purpose, the real-VM tests, a smoke run of the
# benchmark harness, instruction counts against the committed figures and
# the installed-package check; then builds everything
# again with clang, warnings as errors, ASan+UBSan and the fuzz targets
# (preset san), runs the unit, integration and hostile-peer tests there and a
# short run of every fuzz target; last, the host library's concurrency tests
# under ThreadSanitizer (preset tsan).
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

stage "formatting (clang-format-14, .clang-format)"
scripts/check-format.sh

stage "the test guest's Debian packages (the one step that downloads)"
scripts/fetch-guest-packages.sh

stage "build (preset dev: gcc, warnings as errors)"
# Each tree's flags are its preset's (CMakePresets.json): the gcc tree goes
# without debug information (up to a third of the compile time), the clang
# trees keep line tables for the sanitizers' stacks.
cmake --preset dev -DQTX_BUILD_VM_TESTS=ON >/dev/null
cmake --build --preset dev -j "$JOBS"

stage "unit, integration and hostile-peer tests"
ctest --preset dev -j "$JOBS"

stage "the same tests on a loaded machine (a busy loop per core, twice as many tests as cores)"
# A test that passes only when its threads get the CPU on time fails here,
# not at random later. The tree of the stage above: nothing is built.
scripts/test-under-load.sh build

stage "real-VM tests (QEMU, TCG; the guest is built from Debian packages)"
ctest --preset vm

stage "the same real-VM tests in the arm64 guest (qemu-system-aarch64 -M virt, TCG; the agent cross-built)"
# Two VMs at a time: the 30 s idle case then overlaps the others (about
# 70 s instead of 2 minutes on 2 cores); each case has its own VM and sockets.
ctest --preset vm-arm64 -j "$JOBS"

stage "benchmark harness smoke run: qtx beside qemu-ga, tiny sizes (figures printed, never asserted)"
build/bin/agent_compare --quick --transport all --json build/agent_compare.json --plot build/agent_compare.png

stage "instructions per ping and per MiB (callgrind), against the committed figures (bench/instruction-counts.txt)"
# Counted, not timed: the same figure however busy the machine is, so a
# growth of more than 10% is a regression, not noise.
scripts/instruction-counts.sh --qtx-only --check bench/instruction-counts.txt build

stage "the installed package: find_package(qtx), pkg-config qtx-host, examples"
scripts/check-package.sh build

stage "clang, warnings as errors, ASan+UBSan: every test program and the fuzz targets (preset san)"
# One sanitized tree for both: building a second one only for the fuzzers
# would compile everything twice more.
cmake --preset san -DQTX_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
cmake --build --preset san -j "$JOBS"

stage "unit, integration and hostile-peer tests under ASan+UBSan"
ctest --preset san -j "$JOBS"

stage "fuzz targets, ${FUZZ_SECONDS}s each"
ctest --preset fuzz-smoke

stage "the host library's concurrency tests under ThreadSanitizer"
scripts/tsan.sh

stage "all tests passed"
