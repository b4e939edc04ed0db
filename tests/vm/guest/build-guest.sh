#!/usr/bin/env bash
# Builds the test guest from Debian packages only: the Debian kernel
# (unpacked with dpkg-deb -x, never installed), busybox-static, the virtio
# modules, and the static qtx-agent, packed into an initramfs. Offline: the
# kernel package comes from PACKAGES_DIR, where scripts/fetch-guest-packages.sh
# put it (DIR/kernel names it); without it this fails and says so.
#
#   build-guest.sh PACKAGES_DIR AGENT_BINARY OUT_DIR [QEMU_GA_BINARY]
#
# With QEMU_GA_BINARY (the benchmark's guest), qemu-ga and the shared
# libraries it loads are added, and init runs it on org.qemu.guest_agent.0.
#
# Writes OUT_DIR/vmlinuz and OUT_DIR/initramfs.cpio.gz.
set -euo pipefail
packages=$1
agent=$2
out=$3
qga=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

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

root=$out/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc/qtx,proc,sys,dev,tmp,run,lib/modules,var/lib}
cp /bin/busybox "$root/bin/busybox"
cp "$here/init" "$root/init"
chmod 755 "$root/init"
cp "$here/agent.conf" "$root/etc/qtx/agent.conf"
cp "$agent" "$root/sbin/qtx-agent"
strip "$root/sbin/qtx-agent" 2>/dev/null || true
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/char/virtio_console; do
  src=$kdir/lib/modules/$kver/kernel/$m.ko
  [ -f "$src" ] || src=$src.xz
  case $src in
    *.xz) xz -dc "$src" >"$root/lib/modules/$(basename "$m").ko" ;;
    *) cp "$src" "$root/lib/modules/" ;;
  esac
done
if [ -n "$qga" ]; then
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
