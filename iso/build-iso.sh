#!/bin/sh
# Builds the agent ISO, qtx-agent-tools-VERSION.iso: Rock Ridge + Joliet,
# volume id QTX_AGENT_TOOLS. The same inputs give a byte-identical image:
# every date is SOURCE_DATE_EPOCH (the commit's time when the caller passes
# it, else a fixed date), owners and modes are normalised, and xorriso
# writes directory entries in sorted order.
#
#   build-iso.sh OUT.iso VERSION AGENT_X86_64 CONFIG DEB [AGENT_AARCH64 [DEB_ARM64]]
#
# AGENT_AARCH64 goes to bin/aarch64 (stripped with aarch64-linux-gnu-strip
# when that is installed), DEB_ARM64 beside DEB in deb/.
set -eu
[ $# -ge 5 ] || { echo "usage: build-iso.sh OUT.iso VERSION AGENT_X86_64 CONFIG DEB [AGENT_AARCH64 [DEB_ARM64]]" >&2; exit 2; }
out=$1 version=$2 agent=$3 config=$4 deb=$5 agent_arm=${6:-} deb_arm=${7:-}
here=$(cd "$(dirname "$0")" && pwd)
: "${SOURCE_DATE_EPOCH:=1700000000}"
export SOURCE_DATE_EPOCH

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin/x86_64" "$stage/config" "$stage/systemd" "$stage/udev" "$stage/openrc" "$stage/cloud-init" "$stage/deb"
cp "$agent" "$stage/bin/x86_64/qtx-agent"
strip "$stage/bin/x86_64/qtx-agent"
if [ -n "$agent_arm" ]; then
  mkdir -p "$stage/bin/aarch64"
  cp "$agent_arm" "$stage/bin/aarch64/qtx-agent"
  if command -v aarch64-linux-gnu-strip >/dev/null 2>&1; then aarch64-linux-gnu-strip "$stage/bin/aarch64/qtx-agent"; fi
fi
cp "$config" "$stage/config/agent.conf"
cp "$here/install.sh" "$stage/install.sh"
cp "$here/qtx-agent.service" "$stage/systemd/qtx-agent.service"
cp "$here/90-qtx-agent.rules" "$stage/udev/90-qtx-agent.rules"
cp "$here/qtx-agent.openrc" "$stage/openrc/qtx-agent"
cp "$here/cloud-init.yaml" "$stage/cloud-init/user-data.yaml"
cp "$deb" "$stage/deb/"
[ -z "$deb_arm" ] || cp "$deb_arm" "$stage/deb/"
sed "s/@VERSION@/$version/g" "$here/README.txt" >"$stage/README.txt"
chmod 0755 "$stage/install.sh" "$stage/openrc/qtx-agent" "$stage"/bin/*/qtx-agent
(cd "$stage" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)

# xorriso's date string: YYYYMMDDhhmmsscc, UTC.
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S00)
rm -f "$out"
xorriso -as mkisofs -quiet -r -J -joliet-long -V QTX_AGENT_TOOLS -volset "qtx-agent-tools $version" \
  -publisher qtx -appid "qtx-agent-tools $version" \
  --set_all_file_dates "$date" --modification-date="$date" \
  -o "$out" "$stage" 2>&1 | grep -v 'SOURCE_DATE_EPOCH\|^xorriso .*RockRidge\|^$' >&2 || true
[ -s "$out" ] || { echo "build-iso: xorriso wrote no image" >&2; exit 1; }
echo "build-iso: $out ($(stat -c %s "$out") bytes)"
