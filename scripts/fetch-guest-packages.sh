#!/usr/bin/env bash
# Downloads the Debian packages the test guest is built from into a cache
# directory, so that building it (target qtx_vm_guest, tests/vm/guest/
# build-guest.sh) never reaches the network. Today that is one package: the
# kernel that linux-image-amd64 depends on (e.g. linux-image-6.1.0-56-amd64),
# taken with `apt-get download` from the archive apt already uses, never
# installed. busybox-static and qemu-guest-agent come installed
# (scripts/setup.sh).
#
#   scripts/fetch-guest-packages.sh [DIR]
#
# DIR defaults to $QTX_GUEST_PACKAGES, else .cache/guest-packages in the
# source tree (what CMake's QTX_GUEST_PACKAGES_DIR defaults to as well).
# Writes DIR/KERNEL_PACKAGE.deb and DIR/kernel, one line naming that file,
# which is what the build reads. Idempotent: once the package is there,
# nothing is fetched (apt's package lists are refreshed only when they do
# not know linux-image-amd64 at all); a kernel replaced in the archive is
# fetched on the next run, and older ones are removed.
set -euo pipefail
dir=${1:-${QTX_GUEST_PACKAGES:-}}
case $dir in /* | '') ;; *) dir=$PWD/$dir ;; esac  # relative to where it was called from
cd "$(dirname "$0")/.."
[ -n "$dir" ] || dir=$PWD/.cache/guest-packages
mkdir -p "$dir"

SUDO=""
[ "$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null 2>&1 || SUDO=sudo

# The kernel linux-image-amd64 depends on, from apt's local lists.
resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
kpkg=$(resolve)
if [ -z "$kpkg" ] && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
  echo "fetch-guest-packages: apt-get update (the package lists do not know linux-image-amd64)"
  $SUDO apt-get update -q >/dev/null
  kpkg=$(resolve)
fi
if [ -z "$kpkg" ]; then
  echo "fetch-guest-packages: cannot resolve the kernel package of linux-image-amd64 (run apt-get update as root)" >&2
  exit 1
fi

deb=$(cd "$dir" && ls "${kpkg}"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  echo "fetch-guest-packages: apt-get download $kpkg into $dir"
  # A scratch directory first: an interrupted download leaves no half file
  # where the build would take it.
  tmp=$(mktemp -d "$dir/.download.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # As root, apt would drop to its sandbox user, who cannot write here.
  sandbox=()
  [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
  (cd "$tmp" && apt-get download -q "${sandbox[@]}" "$kpkg" >/dev/null)
  deb=$(cd "$tmp" && ls "${kpkg}"_*.deb | head -1)
  mv "$tmp/$deb" "$dir/$deb"
fi
# Kernels the archive no longer points at.
for old in "$dir"/linux-image-*.deb; do
  [ "$(basename "$old")" = "$deb" ] || rm -f "$old"
done
# Rewritten only when it changes: the guest's build depends on this file.
if [ "$(cat "$dir/kernel" 2>/dev/null || true)" != "$deb" ]; then
  echo "$deb" >"$dir/kernel.new"
  mv "$dir/kernel.new" "$dir/kernel"
fi
echo "fetch-guest-packages: $dir/$deb"
