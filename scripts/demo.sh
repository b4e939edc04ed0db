#!/usr/bin/env bash
# The qtx demo on a fresh Debian 12 machine: installs what is missing, builds,
# boots a small Linux guest under QEMU with qtx-agent on its virtio-serial
# port, and drives it with the qtx tool: the agent becoming ready, info, live
# telemetry, an exec, a file copied in and out with its sha256 checked, and a
# clean shutdown through the agent. Where QEMU cannot run, the same steps run
# against the agent on a unix socket, and the demo says so. It ends by
# decoding a capture of a noisy channel.
#
#   scripts/demo.sh            (QTX_DEMO_NO_VM=1: skip the VM)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# The guest's Debian packages: the one step that downloads (the build never does).
vm_packages=ON
scripts/fetch-guest-packages.sh || vm_packages=OFF
cmake --preset dev -DQTX_BUILD_VM_TESTS=$vm_packages >/dev/null
cmake --build build -j "${JOBS:-$(nproc)}" --target qtx qtx-agent

work=$(mktemp -d /tmp/qtx-demo.XXXXXX)
child_pid=
cleanup() {
  if [ -n "$child_pid" ]; then kill "$child_pid" 2>/dev/null && wait "$child_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

run() {
  echo
  local line="\$ qtx" a
  for a in "$@"; do
    case $a in *[!A-Za-z0-9_./:=@%+-]*) a="'${a//\'/\'\\\'\'}'" ;; esac
    line+=" $a"
  done
  echo "$line"
  build/bin/qtx "$@"
}

sock=$work/agent.sock
export QTX_SOCKET=$sock

# The VM: the test guest (Debian kernel, busybox, the static agent), TCG.
mode=unix
why=
if [ -n "${QTX_DEMO_NO_VM:-}" ]; then
  why="QTX_DEMO_NO_VM is set"
elif ! command -v qemu-system-x86_64 >/dev/null; then
  why="qemu-system-x86_64 is not installed"
elif [ "$vm_packages" = OFF ]; then
  why="the guest's Debian kernel package could not be fetched (scripts/fetch-guest-packages.sh)"
elif ! cmake --build build --target qtx_vm_guest >"$work/guest-build.log" 2>&1; then
  why="the guest image did not build (see below)"
  tail -n 5 "$work/guest-build.log" >&2
else
  mode=vm
fi

if [ "$mode" = vm ]; then
  qemu=(qemu-system-x86_64 -m 256 -nographic -no-reboot
    -kernel build/vm/vmlinuz -initrd build/vm/initramfs.cpio.gz
    -append "console=ttyS0 quiet panic=-1"
    -device virtio-serial-pci
    -chardev "socket,id=qtx0,path=$sock,server=on,wait=off"
    -device virtserialport,chardev=qtx0,name=org.quantix.agent.0)
  echo "Booting the guest under QEMU (TCG); its console goes to a log:"
  echo "  ${qemu[*]}"
  start=$(date +%s%N)
  "${qemu[@]}" </dev/null >"$work/console.log" 2>&1 &
  child_pid=$!
  # QEMU creates the socket as it starts; the agent answers once the guest booted.
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  if ! run wait-ready --timeout 120; then
    echo "the guest did not become ready; its console:" >&2
    cat "$work/console.log" >&2
    exit 1
  fi
  ms=$((($(date +%s%N) - start) / 1000000))
  echo "boot to ready: $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
  guest_dir=/tmp
else
  echo "No VM: $why. The agent runs on a unix socket instead, as QEMU's chardev would serve it."
  printf '[telemetry]\ninterval_ms = 1000\n' >"$work/agent.conf"
  build/bin/qtx-agent --config "$work/agent.conf" --transport "unix-listen:$sock" --log-level warn &
  child_pid=$!
  run wait-ready --timeout 10
  guest_dir=$work
fi

run info
run telemetry --watch --interval 1 --count 3
run exec -- /bin/sh -c 'echo "hello from $(uname -n), kernel $(uname -r)"; exit 3' || echo "(exit code $?)"
head -c 32M /dev/urandom >"$work/in.bin"
run cp "$work/in.bin" ":$guest_dir/demo.bin"
run cp ":$guest_dir/demo.bin" "$work/out.bin"
echo
echo "\$ sha256sum in.bin out.bin"
(cd "$work" && sha256sum in.bin out.bin)
cmp "$work/in.bin" "$work/out.bin" && echo "identical"

if [ "$mode" = vm ]; then
  run shutdown
  # The agent answers before acting; QEMU exits when the guest powers off.
  for _ in $(seq 600); do kill -0 "$child_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$child_pid" 2>/dev/null; then
    echo "the guest did not power off within 60 s" >&2
    exit 1
  fi
  status=0
  wait "$child_pid" || status=$?
  child_pid=
  echo "the guest powered off; QEMU exited with $status"
  [ "$status" -eq 0 ]
fi

run decode tests/data/noisy-channel.bin --stats
