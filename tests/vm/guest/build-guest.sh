#!/usr/bin/env bash
# Builds the test guest from Debian packages only: the Debian kernel
# (apt-get download + dpkg-deb -x, never installed), busybox-static, the
# virtio modules, and the static qtx-agent, packed into an initramfs.
#
#   build-guest.sh AGENT_BINARY OUT_DIR [QEMU_GA_BINARY]
#
# With QEMU_GA_BINARY (the benchmark's guest), qemu-ga and the shared
# libraries it loads are added, and init runs it on org.qemu.guest_agent.0.
#
# Writes OUT_DIR/vmlinuz and OUT_DIR/initramfs.cpio.gz. The kernel package
# is cached in OUT_DIR (or taken from $QTX_KERNEL_DEB_DIR) and fetched only
# when missing.
set -euo pipefail
agent=$1
out=$2
qga=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

# The kernel linux-image-amd64 depends on (e.g. linux-image-6.1.0-56-amd64).
resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
kpkg=$(resolve)
if [ -z "$kpkg" ] && [ "$(id -u)" -eq 0 ]; then
  apt-get update -q >/dev/null  # package lists never fetched on this machine
  kpkg=$(resolve)
fi
if [ -z "$kpkg" ]; then
  echo "build-guest: cannot resolve the kernel package of linux-image-amd64 (run apt-get update)" >&2
  exit 1
fi
deb=$(ls "$out"/"$kpkg"_*.deb 2>/dev/null | head -1 || true)
# Another guest's cached copy ($QTX_KERNEL_DEB_DIR), before the archive.
if [ -z "$deb" ] && [ -n "${QTX_KERNEL_DEB_DIR:-}" ]; then
  cached=$(ls "$QTX_KERNEL_DEB_DIR"/"$kpkg"_*.deb 2>/dev/null | head -1 || true)
  [ -z "$cached" ] || { cp "$cached" "$out/"; deb=$out/$(basename "$cached"); }
fi
if [ -z "$deb" ]; then
  (cd "$out" && apt-get download "$kpkg" >/dev/null 2>&1)
  deb=$(ls "$out"/"$kpkg"_*.deb | head -1)
fi
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
