#!/usr/bin/env bash
# Builds a Debian 12 cloud-style image for the provisioning test: what a
# platform team downloads as a "generic cloud" image, made here from the
# Debian archive apt already uses (debootstrap). It has systemd, udev,
# cloud-init (NoCloud datasource first), cloud-guest-utils (growpart),
# ifupdown, openssh-server and the archive kernel; nothing of qtx. Like a
# real cloud image it has no hostname, no machine-id and no SSH host keys
# of its own, and its root partition is smaller than its disk, so that
# cloud-init's growpart has work to do at first boot.
#
#   build-cloud-guest.sh OUT_DIR
#
# Writes OUT_DIR/disk.qcow2 (MBR, one ext4 partition on /dev/vda1, 3 GiB
# virtual; the tests use it read-only as a backing file), OUT_DIR/vmlinuz
# and OUT_DIR/initrd.img (booted directly: there is no boot loader). Cached:
# nothing is rebuilt while OUT_DIR/disk.qcow2 exists and this script is
# unchanged.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
stamp=$out/.built-by-$(sha256sum "$0" | cut -c1-16)
if [ -f "$stamp" ] && [ -f "$out/disk.qcow2" ]; then
  echo "build-cloud-guest: $out/disk.qcow2 is up to date"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "build-cloud-guest: debootstrap needs root" >&2; exit 1; }
for tool in debootstrap qemu-img sfdisk mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "build-cloud-guest: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

. "$here/../debian-mirror.sh"

rm -rf "$out"
mkdir -p "$out"
root=$out/rootfs
# Downloaded packages are kept beside OUT_DIR for the next build.
cache=$(cd "$out/.." && pwd)/debootstrap-cache
mkdir -p "$cache"
echo "build-cloud-guest: debootstrap bookworm with cloud-init from $mirror (several minutes)"
# debootstrap resolves no virtual packages: python3-cffi-backend provides
# the api-min/api-max that python3-cryptography (cloud-init's) depends on.
# locales: cloud-init's locale module sets its default, en_US.UTF-8, and
# fails (cloud-init status: error) where that locale is not generated.
debootstrap --variant=minbase --cache-dir="$cache" \
  --include=systemd,systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,procps,util-linux,mount,fdisk,e2fsprogs,cloud-init,python3-cffi-backend,locales,cloud-guest-utils,ifupdown,iproute2,openssh-server,sudo \
  bookworm "$root" "$mirror" >"$out/debootstrap.log" 2>&1 || {
  tail -n 20 "$out/debootstrap.log" >&2
  exit 1
}

echo "/dev/vda1 / ext4 defaults 0 1" >"$root/etc/fstab"
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$root/etc/locale.gen"
chroot "$root" locale-gen >/dev/null
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' >"$root/etc/network/interfaces"
# NoCloud first and nothing that probes a metadata server: a user-mode
# network has none, and probing one costs minutes.
printf 'datasource_list: [ NoCloud, None ]\n' >"$root/etc/cloud/cloud.cfg.d/90-qtx-test-datasource.cfg"
# What makes an image generic: each instance gets its own.
rm -f "$root/etc/hostname" "$root/etc/ssh/ssh_host_"*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# Quiet and quick: no getty on the serial console, no timers.
systemctl --root="$root" mask serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer fstrim.timer systemd-timesyncd.service >/dev/null 2>&1 || true
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*

cp "$(readlink -f "$root/vmlinuz")" "$out/vmlinuz"
cp "$(readlink -f "$root/initrd.img")" "$out/initrd.img"

# A 3 GiB disk whose one partition (from 1 MiB) holds a 1.5 GiB ext4.
raw=$out/disk.raw
truncate -s 3G "$raw"
echo 'start=2048, size=3145728, type=83' | sfdisk -q "$raw"
mkfs.ext4 -q -F -L cloudimg-rootfs -d "$root" "$out/rootfs.ext4" 1536M >/dev/null
dd if="$out/rootfs.ext4" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -rf "$root" "$out/rootfs.ext4"
qemu-img convert -q -f raw -O qcow2 "$raw" "$out/disk.qcow2"
rm -f "$raw"
touch "$stamp"
echo "build-cloud-guest: $out/disk.qcow2 ($(stat -c %s "$out/disk.qcow2") bytes), $out/vmlinuz, $out/initrd.img"
