#!/usr/bin/env bash
# The qtx demo on a fresh Debian 12 machine: installs what is missing,
# builds, runs the guest agent on a unix socket (the real-VM demo comes with
# the VM test suite) and drives it with the qtx tool: the agent becoming
# ready, info, live telemetry, an exec, a file copied in and out with its
# sha256 checked; then decodes a capture of a noisy channel.
#
#   scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-$(nproc)}" --target qtx qtx-agent

work=$(mktemp -d /tmp/qtx-demo.XXXXXX)
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

run() {
  echo
  echo "\$ qtx $*"
  build/bin/qtx "$@"
}

sock=$work/agent.sock
export QTX_SOCKET=$sock
echo "No VM here yet: the agent runs on a unix socket, as QEMU's chardev would serve it."
printf '[telemetry]\ninterval_ms = 1000\n' >"$work/agent.conf"
build/bin/qtx-agent --config "$work/agent.conf" --transport "unix-listen:$sock" --log-level warn &
agent_pid=$!

run wait-ready --timeout 10
run info
run telemetry --watch --count 3
run exec -- /bin/sh -c 'echo "hello from $(uname -n), kernel $(uname -r)"; exit 3' || echo "(exit code $?)"
head -c 32M /dev/urandom >"$work/in.bin"
run cp "$work/in.bin" ":$work/guest.bin"
run cp ":$work/guest.bin" "$work/out.bin"
echo
echo "\$ sha256sum in.bin out.bin"
(cd "$work" && sha256sum in.bin out.bin)
cmp "$work/in.bin" "$work/out.bin" && echo "identical"

run decode tests/data/noisy-channel.bin --stats
