#!/usr/bin/env bash
# The agent ISO and its installer, on the host: the ISO is reproducible and
# carries what it should; install.sh --root into a tree is idempotent, keeps
# an administrator's configuration, uninstalls back to the tree it found,
# and refuses a tampered file before touching anything. With the arm64 agent
# and package, the ISO carries both architectures and the installer picks
# by uname -m (a uname stub on PATH stands in for an arm64 machine and for
# one qtx does not support).
#
#   installer_test.sh ISO AGENT DEB CONFIG [AGENT_ARM64 DEB_ARM64]
set -uo pipefail
iso=$1 agent=$2 deb=$3 config=$4 agent_arm=${5:-} deb_arm=${6:-}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
t=$(mktemp -d /tmp/qtx-installer-test.XXXXXX)
trap 'rm -rf "$t"' EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*"; }
expect_eq() { if [ "$2" == "$3" ]; then ok; else fail "$1"; printf '  expected: %s\n  actual:   %s\n' "$3" "$2"; fi; }
# A tree as text: every path with its type, mode and content hash.
snapshot() {
  (cd "$1" && find . -mindepth 1 -printf '%y %m %p\n' | LC_ALL=C sort | while read -r y m p; do
    if [ "$y" = f ]; then echo "$y $m $p $(sha256sum "$p" | cut -d' ' -f1)"; else echo "$y $m $p"; fi
  done)
}

# --- the image -------------------------------------------------------------------

xorriso -osirrox on -indev "$iso" -extract / "$t/iso" >/dev/null 2>&1
chmod -R u+w "$t/iso"
expect_eq "volume id" "$(xorriso -indev "$iso" -pvd_info 2>/dev/null | sed -n 's/^Volume Id *: //p')" "QTX_AGENT_TOOLS"
if [ -n "$agent_arm" ]; then
  expect_eq "files on the ISO" "$(cd "$t/iso" && find . -type f | LC_ALL=C sort | tr '\n' ' ')" \
    "./README.txt ./SHA256SUMS ./bin/aarch64/qtx-agent ./bin/x86_64/qtx-agent ./cloud-init/user-data.yaml ./config/agent.conf ./deb/$(basename "$deb") ./deb/$(basename "$deb_arm") ./install.sh ./openrc/qtx-agent ./systemd/qtx-agent.service ./udev/90-qtx-agent.rules "
  expect_eq "the ISO's agents' architectures" \
    "$(for a in x86_64 aarch64; do readelf -h "$t/iso/bin/$a/qtx-agent" | sed -n 's/^ *Machine: *//p'; done | tr '\n' ';')" \
    "Advanced Micro Devices X86-64;AArch64;"
  expect_eq "the ISO's arm64 agent is static" "$(readelf -l "$t/iso/bin/aarch64/qtx-agent" | grep -c 'Requesting program interpreter')" "0"
  expect_eq "the packages' architectures" \
    "$(dpkg-deb -f "$t/iso/deb/$(basename "$deb")" Architecture) $(dpkg-deb -f "$t/iso/deb/$(basename "$deb_arm")" Architecture)" \
    "amd64 arm64"
  expect_eq "the arm64 .deb holds the same files" \
    "$(dpkg-deb -c "$t/iso/deb/$(basename "$deb_arm")" | awk '{print $6}' | LC_ALL=C sort | tr '\n' ' ')" \
    "$(dpkg-deb -c "$t/iso/deb/$(basename "$deb")" | awk '{print $6}' | LC_ALL=C sort | tr '\n' ' ')"
else
  expect_eq "files on the ISO" "$(cd "$t/iso" && find . -type f | LC_ALL=C sort | tr '\n' ' ')" \
    "./README.txt ./SHA256SUMS ./bin/x86_64/qtx-agent ./cloud-init/user-data.yaml ./config/agent.conf ./deb/$(basename "$deb") ./install.sh ./openrc/qtx-agent ./systemd/qtx-agent.service ./udev/90-qtx-agent.rules "
fi
expect_eq "SHA256SUMS verifies" "$(cd "$t/iso" && sha256sum -c --quiet SHA256SUMS 2>&1; echo $?)" "0"
file_out=$("$t/iso/bin/x86_64/qtx-agent" --version 2>&1)
expect_eq "the ISO's agent runs" "${file_out%% *}" "qtx-agent"
expect_eq "the .deb holds the agent" \
  "$(dpkg-deb -c "$t/iso/deb/$(basename "$deb")" | awk '{print $6}' | grep -E 'qtx-agent$|agent.conf$|service$|rules$' | LC_ALL=C sort | tr '\n' ' ')" \
  "./etc/qtx/agent.conf ./lib/systemd/system/qtx-agent.service ./lib/udev/rules.d/90-qtx-agent.rules ./usr/sbin/qtx-agent "
expect_eq "the .deb's conffiles" "$(dpkg-deb -I "$t/iso/deb/$(basename "$deb")" conffiles)" "/etc/qtx/agent.conf"

# Reproducible: the same inputs, with every mtime changed, give the same bytes.
mkdir -p "$t/in" "$t/in/arm64"
cp "$agent" "$deb" "$config" "$t/in/"
arm_args=()
if [ -n "$agent_arm" ]; then
  cp "$agent_arm" "$deb_arm" "$t/in/arm64/"
  arm_args=("$t/in/arm64/$(basename "$agent_arm")" "$t/in/arm64/$(basename "$deb_arm")")
fi
SOURCE_DATE_EPOCH=1700000000 sh "$top/iso/build-iso.sh" "$t/a.iso" 9.9.9 "$t/in/$(basename "$agent")" \
  "$t/in/$(basename "$config")" "$t/in/$(basename "$deb")" "${arm_args[@]}" >/dev/null
touch -d '2001-01-01' "$t/in"/* "$t/in/arm64"/*
SOURCE_DATE_EPOCH=1700000000 sh "$top/iso/build-iso.sh" "$t/b.iso" 9.9.9 "$t/in/$(basename "$agent")" \
  "$t/in/$(basename "$config")" "$t/in/$(basename "$deb")" "${arm_args[@]}" >/dev/null
expect_eq "two builds are byte-identical" "$(cmp "$t/a.iso" "$t/b.iso" 2>&1; echo $?)" "0"

# --- the installer ---------------------------------------------------------------

inst="$t/iso/install.sh"
run() { out=$(sh "$inst" "$@" 2>"$t/err"); code=$?; err=$(cat "$t/err"); }

# A tree with something of its own, which the installer must leave alone.
mkdir -p "$t/root/etc" "$t/root/usr/sbin" "$t/root/usr/lib/systemd"
echo "guest" >"$t/root/etc/hostname"
printf '#!/bin/sh\n' >"$t/root/usr/lib/systemd/systemd"
chmod 0755 "$t/root/usr/lib/systemd/systemd"
before=$(snapshot "$t/root")

run --root "$t/root"
expect_eq "first install: exit code" "$code" "0"
expect_eq "first install: output" "$out" "installed /usr/sbin/qtx-agent
installed /etc/qtx/agent.conf
installed /usr/share/doc/qtx-agent/README.txt
installed /etc/systemd/system/qtx-agent.service
installed /etc/udev/rules.d/90-qtx-agent.rules
qtx-agent installed for systemd into $t/root"
expect_eq "the binary" "$(cmp "$t/root/usr/sbin/qtx-agent" "$t/iso/bin/x86_64/qtx-agent"; stat -c %a "$t/root/usr/sbin/qtx-agent")" "755"
expect_eq "the config" "$(cmp "$t/root/etc/qtx/agent.conf" "$config"; stat -c %a "$t/root/etc/qtx/agent.conf")" "644"
expect_eq "the unit" "$(cmp "$t/root/etc/systemd/system/qtx-agent.service" "$top/iso/qtx-agent.service"; echo $?)" "0"
expect_eq "the udev rule" "$(cmp "$t/root/etc/udev/rules.d/90-qtx-agent.rules" "$top/iso/90-qtx-agent.rules"; echo $?)" "0"
installed=$(snapshot "$t/root")

run --root "$t/root"
expect_eq "second install: exit code" "$code" "0"
expect_eq "second install: output" "$out" "qtx-agent is already installed and up to date (systemd): nothing to do"
expect_eq "second install: the tree" "$(snapshot "$t/root")" "$installed"

run --root "$t/root" --uninstall
expect_eq "uninstall: exit code" "$code" "0"
expect_eq "uninstall: the tree is as it was found" "$(snapshot "$t/root")" "$before"
run --root "$t/root" --uninstall
expect_eq "uninstall twice" "$out" "qtx-agent is not installed here (no /var/lib/qtx/install-manifest): nothing to do"

# The administrator's configuration is never replaced, and stays on uninstall.
run --root "$t/root"
echo 'log_level = "debug"  # mine' >>"$t/root/etc/qtx/agent.conf"
mine=$(cat "$t/root/etc/qtx/agent.conf")
run --root "$t/root"
expect_eq "changed config: output" "$out" "kept your /etc/qtx/agent.conf; the shipped default is in /etc/qtx/agent.conf.dist
qtx-agent installed for systemd into $t/root"
expect_eq "changed config: kept" "$(cat "$t/root/etc/qtx/agent.conf")" "$mine"
expect_eq "changed config: the default beside it" "$(cmp "$t/root/etc/qtx/agent.conf.dist" "$config"; echo $?)" "0"
run --root "$t/root"
expect_eq "changed config: then nothing to do" "$out" "qtx-agent is already installed and up to date (systemd): nothing to do"
run --root "$t/root" --uninstall
expect_eq "changed config: uninstall keeps it" "$(echo "$out" | grep '^kept')" "kept /etc/qtx/agent.conf (changed since it was installed)"
expect_eq "changed config: only it is left" "$(cd "$t/root" && find etc/qtx -type f)" "etc/qtx/agent.conf"
rm -rf "$t/root/etc/qtx"
expect_eq "and the rest is as it was found" "$(snapshot "$t/root")" "$before"

# A tampered file is refused before anything is written.
cp -a "$t/iso" "$t/bad"
printf 'x' >>"$t/bad/bin/x86_64/qtx-agent"
mkdir "$t/root2"
out=$(sh "$t/bad/install.sh" --root "$t/root2" 2>"$t/err"); code=$?
expect_eq "tampered: exit code" "$code" "1"
expect_eq "tampered: the message" "$(cat "$t/err")" \
  "install.sh: bin/x86_64/qtx-agent does not match SHA256SUMS: the ISO is damaged or was modified; get a fresh copy"
expect_eq "tampered: nothing written" "$(snapshot "$t/root2")" ""

# OpenRC and no init system.
mkdir "$t/root3"
run --root "$t/root3" --init openrc
expect_eq "openrc: exit code" "$code" "0"
expect_eq "openrc: the script" "$(stat -c %a "$t/root3/etc/init.d/qtx-agent"; test -e "$t/root3/etc/systemd" && echo unit)" "755"
mkdir "$t/root4"
run --root "$t/root4"
expect_eq "no init in the tree: output's last line" "${out##*$'\n'}" "qtx-agent installed for none into $t/root4"
expect_eq "no init: binary, config, doc and manifest only" "$(cd "$t/root4" && find . -type f | LC_ALL=C sort | tr '\n' ' ')" \
  "./etc/qtx/agent.conf ./usr/sbin/qtx-agent ./usr/share/doc/qtx-agent/README.txt ./var/lib/qtx/install-manifest "

# The agent for the machine's architecture, by uname -m; an architecture qtx
# has no agent for is refused before anything is written.
stub() {  # stub NAME MACHINE: a directory whose uname says MACHINE for -m
  mkdir -p "$t/$1"
  printf '#!/bin/sh\nif [ "$1" = -m ]; then echo %s; else exec /bin/uname "$@"; fi\n' "$2" >"$t/$1/uname"
  chmod 0755 "$t/$1/uname"
}
if [ -n "$agent_arm" ]; then
  stub arm aarch64
  mkdir "$t/root5"
  PATH="$t/arm:$PATH" run --root "$t/root5" --init none
  expect_eq "aarch64: exit code" "$code" "0"
  expect_eq "aarch64: the arm64 agent is installed" "$(cmp "$t/root5/usr/sbin/qtx-agent" "$t/iso/bin/aarch64/qtx-agent"; echo $?)" "0"
  PATH="$t/arm:$PATH" run --root "$t/root5" --init none
  expect_eq "aarch64: second install" "$out" "qtx-agent is already installed and up to date (none): nothing to do"
fi
stub riscv riscv64
mkdir "$t/root6"
PATH="$t/riscv:$PATH" run --root "$t/root6"
expect_eq "unknown architecture: exit code and message" "$code $err" \
  "1 install.sh: this machine is riscv64: qtx-agent is built for x86_64 and aarch64 only"
expect_eq "unknown architecture: nothing written" "$(snapshot "$t/root6")" ""

# Usage.
run --frobnicate
expect_eq "unknown option: exit code" "$code" "2"
expect_eq "unknown option: message" "$err" "install.sh: unknown option --frobnicate (see --help)"
run --root "$t/missing"
expect_eq "missing root: exit code and message" "$code $err" "1 install.sh: --root $t/missing is not a directory"
run --help
expect_eq "help: exit code" "$code" "0"
case $out in *"--uninstall"*) ok ;; *) fail "help mentions --uninstall" ;; esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
