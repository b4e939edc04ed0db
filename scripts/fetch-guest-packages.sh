#!/usr/bin/env bash
# Downloads the Debian packages the test guests are built from into a cache
# directory, so that building them (targets qtx_vm_guest and
# qtx_vm_guest_arm64, tests/vm/guest/build-guest.sh) never reaches the
# network. Each is taken with `apt-get download` from the archive apt already
# uses, never installed:
#   x86-64 guest: the kernel that linux-image-amd64 depends on (e.g.
#     linux-image-6.1.0-56-amd64); its busybox-static and qemu-guest-agent
#     come installed (scripts/setup.sh).
#   arm64 guest: the kernel that linux-image-arm64:arm64 depends on,
#     busybox-static:arm64, and for the benchmark's guest
#     qemu-guest-agent:arm64 with the arm64 libraries it loads. Installing
#     busybox-static:arm64 would replace the amd64 one, hence downloads.
#
#   scripts/fetch-guest-packages.sh [DIR]
#
# DIR defaults to $QTX_GUEST_PACKAGES, else .cache/guest-packages in the
# source tree (what CMake's QTX_GUEST_PACKAGES_DIR defaults to as well).
# Writes DIR/KERNEL_PACKAGE.deb and DIR/kernel, one line naming that file,
# which is what the build reads; the arm64 packages go to DIR/arm64, each
# named by a file there (kernel, busybox, qemu-ga: one .deb a line). The
# arm64 set is skipped (with a note) when apt does not know the arm64
# architecture (`dpkg --add-architecture arm64`, which scripts/setup.sh does).
# Idempotent: once a package is there, nothing is fetched (apt's package
# lists are refreshed only when they do not know linux-image-amd64 at all);
# a package replaced in the archive is fetched on the next run, and older
# ones are removed.
set -euo pipefail
dir=${1:-${QTX_GUEST_PACKAGES:-}}
case $dir in /* | '') ;; *) dir=$PWD/$dir ;; esac  # relative to where it was called from
cd "$(dirname "$0")/.."
[ -n "$dir" ] || dir=$PWD/.cache/guest-packages
mkdir -p "$dir"

SUDO=""
[ "$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null 2>&1 || SUDO=sudo

# The kernel linux-image-ARCH depends on, from apt's local lists.
resolve() { apt-cache depends "$1" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {sub(/:.*/, "", $2); print $2; exit}'; }
kpkg=$(resolve linux-image-amd64)
if [ -z "$kpkg" ] && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
  echo "fetch-guest-packages: apt-get update (the package lists do not know linux-image-amd64)"
  $SUDO apt-get update -q >/dev/null
  kpkg=$(resolve linux-image-amd64)
fi
if [ -z "$kpkg" ]; then
  echo "fetch-guest-packages: cannot resolve the kernel package of linux-image-amd64 (run apt-get update as root)" >&2
  exit 1
fi

declare -A candidate=()  # PACKAGE:ARCH -> the version apt would take
tmp=""
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT
# fetch DIR PACKAGE[:ARCH]: the package's .deb in DIR (downloaded when
# absent); prints its file name. Other .debs of that package are removed.
fetch() {
  local into=$1 pkg=$2 name=${2%%:*} deb
  deb=$(cd "$into" && ls "${name}"_*.deb 2>/dev/null | head -1 || true)
  # A .deb of the package, but not the version the archive has now (from
  # the candidates map, when the caller filled it).
  local want=${candidate[$pkg]:-}
  want=${want//:/%3a}
  if [ -n "$deb" ] && [ -n "$want" ]; then
    case $deb in "${name}_${want}_"*) ;; *) deb= ;; esac
  fi
  if [ -z "$deb" ]; then
    echo "fetch-guest-packages: apt-get download $pkg into $into" >&2
    # A scratch directory first: an interrupted download leaves no half file
    # where the build would take it.
    tmp=$(mktemp -d "$into/.download.XXXXXX")
    # As root, apt would drop to its sandbox user, who cannot write here.
    local sandbox=()
    [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
    (cd "$tmp" && apt-get download -q "${sandbox[@]}" "$pkg" >/dev/null)
    deb=$(cd "$tmp" && ls "${name}"_*.deb | head -1)
    mv "$tmp/$deb" "$into/$deb"
    rm -rf "$tmp"
    tmp=""
  fi
  for old in "$into/${name}"_*.deb; do
    [ "$(basename "$old")" = "$deb" ] || rm -f "$old"
  done
  echo "$deb"
}
# pointer FILE TEXT: FILE rewritten only when it changes (the guests' builds
# depend on it).
pointer() {
  if [ "$(cat "$1" 2>/dev/null || true)" != "$2" ]; then
    printf '%s\n' "$2" >"$1.new"
    mv "$1.new" "$1"
  fi
}

deb=$(fetch "$dir" "$kpkg")
# Kernels the archive no longer points at.
for old in "$dir"/linux-image-*.deb; do
  [ "$(basename "$old")" = "$deb" ] || rm -f "$old"
done
pointer "$dir/kernel" "$deb"
echo "fetch-guest-packages: $dir/$deb"

# The arm64 guest.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "fetch-guest-packages: no arm64 guest packages: apt does not know arm64 (scripts/setup.sh adds it)"
  exit 0
fi
a=$dir/arm64
mkdir -p "$a"
akpkg=$(resolve linux-image-arm64:arm64)
if [ -z "$akpkg" ]; then
  echo "fetch-guest-packages: cannot resolve the kernel package of linux-image-arm64:arm64 (run apt-get update as root)" >&2
  exit 1
fi
# qemu-ga (the benchmark's guest) and the libraries it loads: its Depends,
# recursively (gcc-12-base carries no library, but costs nothing).
qga_deps=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
             --no-enhances --no-pre-depends qemu-guest-agent:arm64 2>/dev/null | awk '/^[a-z]/ && !/^qemu-guest-agent/' | sort -u)
# The archive's versions, in one query (each apt-cache run takes seconds).
while read -r key value; do
  case $key in *:arm64:) pkg=${key%:} ;; Candidate:) candidate[$pkg]=$value ;; esac
done < <(apt-cache policy busybox-static:arm64 qemu-guest-agent:arm64 $qga_deps 2>/dev/null)
adeb=$(fetch "$a" "$akpkg:arm64")
for old in "$a"/linux-image-*.deb; do
  [ "$(basename "$old")" = "$adeb" ] || rm -f "$old"
done
pointer "$a/kernel" "$adeb"
pointer "$a/busybox" "$(fetch "$a" busybox-static:arm64)"
qga_debs=$(fetch "$a" qemu-guest-agent:arm64)
for dep in $qga_deps; do
  qga_debs="$qga_debs
$(fetch "$a" "$dep")"
done
pointer "$a/qemu-ga" "$qga_debs"
echo "fetch-guest-packages: $a/$adeb, busybox-static:arm64, qemu-guest-agent:arm64"
