#!/usr/bin/env bash
# The qtx demo on a fresh Debian 12 machine: installs what is missing, builds,
# and decodes a capture of a noisy channel (garbage, a stale partial frame, a
# frame cut off at the end) to show that every valid message is recovered and
# every dropped byte is accounted for.
#
#   scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-$(nproc)}" --target qtx

echo
echo "\$ qtx decode tests/data/noisy-channel.bin --stats"
build/bin/qtx decode tests/data/noisy-channel.bin --stats
