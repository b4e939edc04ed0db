#!/bin/sh
# Installs every Debian package qtx needs to build, test, fuzz, benchmark and
# boot its test VM. Idempotent: packages already present are not reinstalled,
# and apt's index is refreshed only when something is missing.
#
# Usage: scripts/setup.sh            (as root, or with sudo available)
set -eu

PACKAGES="
  build-essential cmake ninja-build pkg-config git
  protobuf-compiler libprotobuf-dev
  libasio-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nettle-dev
  clang-14 libclang-rt-14-dev clang-format-14
  libcli11-dev libtomlplusplus-dev libcrypt-dev
  qemu-system-x86 busybox-static cpio xz-utils
  xorriso debootstrap qemu-utils fdisk libyaml-cpp-dev
  qemu-guest-agent gnuplot-nox faketime
  prometheus libcpp-httplib-dev
  zsh
  golang-go
  python3 python3-pytest python3-venv
"
# The arm64 guest: the cross compiler and the arm64 libraries the static
# agent links (its header-only dependencies' headers are the same for every
# architecture), and QEMU for arm64. Needs dpkg's arm64 architecture, added
# below when missing. (busybox-static:arm64 is never installed: it would
# replace the amd64 one; scripts/fetch-guest-packages.sh downloads it.)
PACKAGES="$PACKAGES
  g++-aarch64-linux-gnu qemu-system-arm
  libprotobuf-dev:arm64 nettle-dev:arm64 libcrypt-dev:arm64
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "setup: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup: need root (or sudo) to install:$missing" >&2; exit 1; }
  SUDO="sudo"
fi

echo "setup: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 architecture (dpkg --add-architecture arm64)"
  $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
