#!/bin/sh
# Installs qtx-agent from the agent ISO (or any copy of its files) into this
# machine, or into a tree with --root. Run it as root from the ISO:
#
#   sh /media/cdrom/install.sh [--root DIR] [--init systemd|openrc|none]
#                              [--no-start] [--uninstall] [--help]
#
# Every file is checked against SHA256SUMS before anything is installed. A
# second run changes nothing and says so. The configuration is never
# replaced once the administrator changed it. --uninstall removes what the
# installer put there (listed in /var/lib/qtx/install-manifest) and nothing
# else. Exit codes: 0 done, 1 refused or failed (one line says why and what
# to do), 2 usage.
set -eu

PORT=org.quantix.agent.0
MANIFEST_REL=/var/lib/qtx/install-manifest
SRC=$(cd "$(dirname "$0")" && pwd)

root=
init=
start=yes
action=install

say() { printf '%s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case $1 in
    --root) [ $# -ge 2 ] || { echo "install.sh: --root needs a directory" >&2; exit 2; }; root=$2; shift ;;
    --root=*) root=${1#--root=} ;;
    --init) [ $# -ge 2 ] || { echo "install.sh: --init needs systemd, openrc or none" >&2; exit 2; }; init=$2; shift ;;
    --init=*) init=${1#--init=} ;;
    --no-start) start=no ;;
    --uninstall) action=uninstall ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $init in ''|systemd|openrc|none) ;; *) echo "install.sh: --init must be systemd, openrc or none" >&2; exit 2 ;; esac
if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root $root is not a directory"
  root=$(cd "$root" && pwd)
  [ "$root" != / ] || root=
  start=no  # a tree is not a running system
fi
[ -n "$root" ] || [ "$(id -u)" -eq 0 ] || die "run as root (or use --root DIR to install into a tree)"

# --- what this machine is ------------------------------------------------------

detect_init() {
  if [ -n "$root" ]; then
    if [ -x "$root/lib/systemd/systemd" ] || [ -x "$root/usr/lib/systemd/systemd" ]; then echo systemd
    elif [ -x "$root/sbin/openrc-run" ] || [ -x "$root/usr/sbin/openrc-run" ]; then echo openrc
    else echo none; fi
  elif [ -d /run/systemd/system ]; then echo systemd
  elif command -v openrc-run >/dev/null 2>&1; then echo openrc
  else echo none; fi
}
[ -n "$init" ] || init=$(detect_init)

# The ISO carries a static agent for each architecture qtx supports (bin/ARCH).
machine=$(uname -m)
case $machine in
  x86_64|amd64) arch=x86_64 ;;
  aarch64|arm64) arch=aarch64 ;;
  *) arch= ;;  # refused below, before anything is installed (uninstall needs no agent)
esac

# What goes where: "SOURCE DESTINATION MODE KIND", KIND config for the one
# file an administrator may change.
files() {
  echo "bin/$arch/qtx-agent /usr/sbin/qtx-agent 0755 program"
  echo "config/agent.conf /etc/qtx/agent.conf 0644 config"
  echo "README.txt /usr/share/doc/qtx-agent/README.txt 0644 doc"
  case $init in
    systemd)
      echo "systemd/qtx-agent.service /etc/systemd/system/qtx-agent.service 0644 unit"
      echo "udev/90-qtx-agent.rules /etc/udev/rules.d/90-qtx-agent.rules 0644 unit" ;;
    openrc)
      echo "openrc/qtx-agent /etc/init.d/qtx-agent 0755 unit" ;;
  esac
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
mode_of() { stat -c %a "$1"; }

# --- the manifest: what an earlier run installed -------------------------------
# Lines "file SHA256 PATH" (what the installer wrote, as it wrote it) and
# "dir PATH" (directories it created), sorted.

manifest=$root$MANIFEST_REL
manifest_sha() { [ -f "$manifest" ] && awk -v p="$1" '$1 == "file" && $3 == p { print $2 }' "$manifest" || true; }

# --- uninstall -------------------------------------------------------------------

if [ "$action" = uninstall ]; then
  [ -f "$manifest" ] || { say "qtx-agent is not installed here (no $MANIFEST_REL): nothing to do"; exit 0; }
  if [ -z "$root" ]; then
    if [ "$init" = systemd ]; then systemctl stop qtx-agent.service 2>/dev/null || true
    elif [ "$init" = openrc ]; then rc-service qtx-agent stop 2>/dev/null || true; rc-update del qtx-agent default 2>/dev/null || true; fi
  fi
  kept=
  while read -r kind a b; do
    [ "$kind" = file ] || continue
    if [ ! -e "$root$b" ]; then continue; fi
    if [ "$(sha "$root$b")" = "$a" ]; then rm -f "$root$b"; say "removed $b"
    else kept="$kept $b"; say "kept $b (changed since it was installed)"; fi
  done <"$manifest"
  dirs=$(awk '$1 == "dir" { print $2 }' "$manifest" | sort -r)
  rm -f "$manifest"
  for d in $dirs; do rmdir "$root$d" 2>/dev/null || true; done
  if [ -z "$root" ] && [ "$init" = systemd ]; then
    systemctl daemon-reload 2>/dev/null || true
    udevadm control --reload-rules 2>/dev/null || true
  fi
  say "qtx-agent uninstalled${kept:+; kept:$kept}"
  exit 0
fi

# --- verify everything before touching anything -------------------------------

[ -n "$arch" ] || die "this machine is $machine: qtx-agent is built for x86_64 and aarch64 only"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f "$SRC/SHA256SUMS" ] || die "no SHA256SUMS beside install.sh in $SRC: use the files of one agent ISO, unmodified"
while read -r sum path; do
  [ -f "$SRC/$path" ] || die "$path is listed in SHA256SUMS but missing from $SRC: the ISO is incomplete; get a fresh copy"
  [ "$(sha "$SRC/$path")" = "$sum" ] ||
    die "$path does not match SHA256SUMS: the ISO is damaged or was modified; get a fresh copy"
done <"$SRC/SHA256SUMS"
files >"$work/files"
while read -r from to mode kind; do
  grep -q " $from\$" "$SRC/SHA256SUMS" && continue
  [ "$kind" = program ] && die "this ISO has no qtx-agent for $arch"
  die "$from is not listed in SHA256SUMS: the ISO is incomplete; get a fresh copy"
done <"$work/files"

# --- install -------------------------------------------------------------------

: >"$work/changed"
: >"$work/entries"
: >"$work/dirs"
[ -f "$manifest" ] && awk '$1 == "dir"' "$manifest" >"$work/dirs"

# make_dirs PATH: creates the missing parents of PATH, remembering them.
make_dirs() {
  d=$(dirname "$1")
  missing=
  while [ "$d" != / ] && [ ! -d "$root$d" ]; do missing="$d $missing"; d=$(dirname "$d"); done
  for m in $missing; do mkdir "$root$m"; echo "dir $m" >>"$work/dirs"; done
}

# put FROM TO MODE: writes TO (atomically, beside it) unless it already has
# FROM's bytes and MODE.
put() {
  if [ -f "$root$2" ] && cmp -s "$1" "$root$2" && [ "$(mode_of "$root$2")" = "${3#0}" ]; then return 1; fi
  make_dirs "$2"
  cp "$1" "$root$2.qtx-new"
  chmod "$3" "$root$2.qtx-new"
  mv -f "$root$2.qtx-new" "$root$2"
  return 0
}

while read -r from to mode kind; do
  if [ "$kind" = config ] && [ -f "$root$to" ] && ! cmp -s "$SRC/$from" "$root$to"; then
    if [ "$(sha "$root$to")" != "$(manifest_sha "$to")" ]; then
      # The administrator's file (changed, or there before us): kept.
      if put "$SRC/$from" "$to.dist" "$mode"; then say "kept your $to; the shipped default is in $to.dist"; echo "$to.dist $kind" >>"$work/changed"; fi
      prev=$(manifest_sha "$to")
      [ -z "$prev" ] || echo "file $prev $to" >>"$work/entries"
      echo "file $(sha "$SRC/$from") $to.dist" >>"$work/entries"
      continue
    fi
  fi
  if put "$SRC/$from" "$to" "$mode"; then say "installed $to"; echo "$to $kind" >>"$work/changed"; fi
  echo "file $(sha "$SRC/$from") $to" >>"$work/entries"
done <"$work/files"

make_dirs "$MANIFEST_REL"
sort -u "$work/entries" "$work/dirs" >"$work/manifest"
put "$work/manifest" "$MANIFEST_REL" 0644 || true

if [ ! -s "$work/changed" ]; then
  say "qtx-agent is already installed and up to date ($init): nothing to do"
else
  say "qtx-agent installed for $init${root:+ into $root}"
fi

# --- start and verify ----------------------------------------------------------

[ "$start" = yes ] || exit 0
snippet="add the port to the VM: QEMU: -device virtio-serial-pci -chardev socket,id=qtx0,path=/run/qtx/VM.sock,server=on,wait=off -device virtserialport,chardev=qtx0,name=$PORT; libvirt: <channel type='unix'><source mode='bind' path='/run/qtx/VM.sock'/><target type='virtio' name='$PORT'/></channel>"
port_present() {
  [ -e "/dev/virtio-ports/$PORT" ] && return 0
  for n in /sys/class/virtio-ports/*/name; do [ -f "$n" ] && [ "$(cat "$n")" = "$PORT" ] && return 0; done
  return 1
}
changed_kind() { grep -q " $1\$" "$work/changed"; }

case $init in
  systemd)
    if changed_kind unit; then
      systemctl daemon-reload
      udevadm control --reload-rules 2>/dev/null || true
    fi
    if ! port_present; then
      say "note: no virtio-serial port $PORT in this VM yet; the agent starts when it appears. To $snippet"
      exit 0
    fi
    # An agent already running is restarted only when its files changed (an
    # upgrade); otherwise it is started once, by the port's device or here.
    if systemctl is-active --quiet qtx-agent.service && { changed_kind program || changed_kind unit; }; then
      systemctl restart qtx-agent.service
    else
      udevadm trigger --action=add --subsystem-match=virtio-ports 2>/dev/null || true
      systemctl start qtx-agent.service
    fi
    i=0
    until systemctl is-active --quiet qtx-agent.service; do
      i=$((i + 1))
      [ $i -le 50 ] || die "qtx-agent.service did not become active: see journalctl -u qtx-agent"
      sleep 0.2
    done
    say "qtx-agent is running (pid $(systemctl show -p MainPID --value qtx-agent.service)) on /dev/virtio-ports/$PORT"
    ;;
  openrc)
    rc-update add qtx-agent default >/dev/null 2>&1 || true
    if rc-service qtx-agent status >/dev/null 2>&1 && { changed_kind program || changed_kind unit; }; then
      rc-service qtx-agent restart >/dev/null
    else
      rc-service qtx-agent start >/dev/null 2>&1 || true
    fi
    rc-service qtx-agent status >/dev/null 2>&1 || die "qtx-agent did not start: see rc-service qtx-agent status"
    if port_present; then say "qtx-agent is running on $PORT"
    else say "note: qtx-agent is running and waits for its port; no virtio-serial port $PORT yet. To $snippet"; fi
    ;;
  none)
    say "no init system recognised (systemd, OpenRC): start the agent with /usr/sbin/qtx-agent &, or from your own init"
    ;;
esac
