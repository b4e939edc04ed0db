#!/usr/bin/env bash
# Builds a small Debian 12 guest with systemd and udev, for testing the agent
# ISO's installer the way a platform team would use it. Everything comes
# from the Debian archive apt already uses (debootstrap): the kernel
# (linux-image-amd64 and its initramfs), systemd, udev. Nothing of qtx is
# in it; a first-boot unit mounts the disc labelled QTX_AGENT_TOOLS and runs
# its install.sh, logging to the console.
#
#   build-systemd-guest.sh OUT_DIR
#
# Writes OUT_DIR/disk.img (ext4, read only to the tests: they boot an
# overlay), OUT_DIR/vmlinuz and OUT_DIR/initrd.img. Cached: nothing is
# rebuilt while OUT_DIR/disk.img exists and this script is unchanged.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
stamp=$out/.built-by-$(sha256sum "$0" | cut -c1-16)
if [ -f "$stamp" ] && [ -f "$out/disk.img" ]; then
  echo "build-systemd-guest: $out/disk.img is up to date"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "build-systemd-guest: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-systemd-guest: apt-get install debootstrap (scripts/setup.sh does)" >&2; exit 1; }

. "$here/../debian-mirror.sh"

rm -rf "$out"
mkdir -p "$out"
root=$out/rootfs
echo "build-systemd-guest: debootstrap bookworm from $mirror (a few minutes)"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,procps,util-linux,mount \
  bookworm "$root" "$mirror" >"$out/debootstrap.log" 2>&1 || {
  tail -n 20 "$out/debootstrap.log" >&2
  exit 1
}

echo "qtx-systemd-guest" >"$root/etc/hostname"
echo "/dev/vda / ext4 defaults 0 1" >"$root/etc/fstab"
install -m 0644 "$here/qtx-firstboot.service" "$root/etc/systemd/system/qtx-firstboot.service"
install -m 0755 "$here/qtx-firstboot" "$root/usr/local/sbin/qtx-firstboot"
ln -sf /etc/systemd/system/qtx-firstboot.service "$root/etc/systemd/system/multi-user.target.wants/qtx-firstboot.service"
# Quiet and quick: no getty on the serial console, no timers.
systemctl --root="$root" mask serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer fstrim.timer systemd-timesyncd.service >/dev/null 2>&1 || true
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*

cp "$(readlink -f "$root/vmlinuz")" "$out/vmlinuz"
cp "$(readlink -f "$root/initrd.img")" "$out/initrd.img"
mkfs.ext4 -q -F -L qtxroot -d "$root" "$out/disk.img" 2G
rm -rf "$root"
touch "$stamp"
echo "build-systemd-guest: $out/disk.img, $out/vmlinuz, $out/initrd.img"
