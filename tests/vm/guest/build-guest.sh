#!/usr/bin/env bash
# Builds the test guest from Debian packages only: the Debian kernel
# (unpacked with dpkg-deb -x, never installed), busybox-static, the virtio
# modules, and the static qtx-agent, packed into an initramfs. Offline: the
# kernel package comes from PACKAGES_DIR, where scripts/fetch-guest-packages.sh
# put it (DIR/kernel names it); without it this fails and says so.
#
#   build-guest.sh [--arch arm64] PACKAGES_DIR AGENT_BINARY OUT_DIR [QEMU_GA]
#
# x86-64 (the default): the kernel of PACKAGES_DIR/kernel and the installed
# busybox-static. arm64 (--arch arm64): everything from PACKAGES_DIR/arm64,
# the kernel (an uncompressed Image, what qemu-system-aarch64 -kernel takes)
# and busybox-static:arm64; AGENT_BINARY is the cross-built arm64 agent.
#
# With QEMU_GA (the benchmark's guest), qemu-ga and the shared libraries it
# loads are added, and init runs it on org.qemu.guest_agent.0. On x86-64
# QEMU_GA is the installed binary (its libraries found with ldd); on arm64
# it is the word "packages": qemu-guest-agent:arm64 and the library packages
# PACKAGES_DIR/arm64/qemu-ga lists are unpacked.
#
# Writes OUT_DIR/vmlinuz and OUT_DIR/initramfs.cpio.gz.
set -euo pipefail
arch=amd64
if [ "${1:-}" = --arch ]; then
  arch=$2
  shift 2
fi
case $arch in amd64 | arm64) ;; *) echo "build-guest: unknown architecture $arch (amd64 or arm64)" >&2; exit 2 ;; esac
packages=$1
agent=$2
out=$3
qga=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
[ "$arch" = amd64 ] || packages=$packages/$arch

deb=$packages/$(cat "$packages/kernel" 2>/dev/null || true)
if [ ! -f "$deb" ]; then
  echo "build-guest: no kernel package in $packages: run scripts/fetch-guest-packages.sh" \
       "(it downloads Debian's kernel package with apt-get; the build never does)" >&2
  exit 1
fi
# linux-image-6.1.0-56-amd64_6.1.158-1_amd64.deb -> linux-image-6.1.0-56-amd64
kpkg=$(basename "$deb")
kpkg=${kpkg%%_*}
kdir=$out/kernel
if [ ! -f "$kdir/.unpacked-$(basename "$deb")" ]; then
  rm -rf "$kdir"
  dpkg-deb -x "$deb" "$kdir"
  touch "$kdir/.unpacked-$(basename "$deb")"
fi
kver=${kpkg#linux-image-}
cp "$kdir/boot/vmlinuz-$kver" "$out/vmlinuz"
# qemu-system-aarch64 -kernel boots an Image (or an EFI zboot one), not a
# gzipped Image; Debian 12's arm64 kernel is a plain Image today.
if [ "$arch" = arm64 ] && gzip -t "$out/vmlinuz" 2>/dev/null; then
  gzip -dc "$out/vmlinuz" >"$out/vmlinuz.image"
  mv "$out/vmlinuz.image" "$out/vmlinuz"
fi

root=$out/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc/qtx,proc,sys,dev,tmp,run,lib/modules,var/lib}
strip=strip
if [ "$arch" = amd64 ]; then
  cp /bin/busybox "$root/bin/busybox"
else
  strip=aarch64-linux-gnu-strip
  bdeb=$packages/$(cat "$packages/busybox" 2>/dev/null || true)
  [ -f "$bdeb" ] || { echo "build-guest: no busybox-static:$arch in $packages: run scripts/fetch-guest-packages.sh" >&2; exit 1; }
  rm -rf "$out/busybox"
  dpkg-deb -x "$bdeb" "$out/busybox"
  cp "$out/busybox/bin/busybox" "$root/bin/busybox"
fi
cp "$here/init" "$root/init"
chmod 755 "$root/init"
cp "$here/agent.conf" "$root/etc/qtx/agent.conf"
cp "$agent" "$root/sbin/qtx-agent"
"$strip" "$root/sbin/qtx-agent" 2>/dev/null || true
# The modules in the order their symbols need; init loads those listed in
# /lib/modules/load (a module built into this kernel is not there).
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/char/virtio_console; do
  if grep -qx "kernel/$m.ko" "$kdir/lib/modules/$kver/modules.builtin"; then
    continue
  fi
  src=$kdir/lib/modules/$kver/kernel/$m.ko
  [ -f "$src" ] || src=$src.xz
  case $src in
    *.xz) xz -dc "$src" >"$root/lib/modules/$(basename "$m").ko" ;;
    *) cp "$src" "$root/lib/modules/" ;;
  esac
  basename "$m" >>"$root/lib/modules/load"
done
if [ -n "$qga" ] && [ "$arch" != amd64 ]; then
  # The packages unpacked side by side; their shared libraries and loader
  # keep their paths.
  rm -rf "$out/qga"
  for d in $(cat "$packages/qemu-ga"); do
    dpkg-deb -x "$packages/$d" "$out/qga"
  done
  cp "$out/qga/usr/sbin/qemu-ga" "$root/sbin/qemu-ga"
  for d in lib usr/lib; do
    [ -d "$out/qga/$d" ] || continue
    (cd "$out/qga" && find "$d" \( -name '*.so*' -o -name 'ld-linux*' \) \( -type f -o -type l \)) |
      while read -r f; do
        mkdir -p "$root/$(dirname "$f")"
        cp -P "$out/qga/$f" "$root/$f"
      done
  done
elif [ -n "$qga" ]; then
  cp "$qga" "$root/sbin/qemu-ga"
  # Each library at its own path, and the loader.
  for lib in $(ldd "$qga" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
fi
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "root:*:19000:0:99999:7:::" >"$root/etc/shadow"
echo 'NAME="qtx test guest"' >"$root/etc/os-release"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initramfs.cpio.gz"
echo "build-guest: $out/vmlinuz ($kpkg), $out/initramfs.cpio.gz"
