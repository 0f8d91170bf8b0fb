#!/usr/bin/env bash
# The root the fleet tests boot with systemd-nspawn: the appliance's own
# debootstrapped Debian 12 base (packer/offline-base.sh, cached), its
# filesystem copied out of the qcow2 into a folder, so each test host is an
# overlay over it and costs seconds. Made as a container root: no fstab (the
# disk's UUID is not there), no NoCloud seed to wait for (the test puts its
# key in place itself).
#
# usage: test/fleet/nspawn-root.sh   (prints the folder's path; needs root)
#
# Cached in $SIPEDGE_CACHE (default ~/.cache/sipedge) under a hash of this
# script and of the base's name (itself a hash of what built it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SIPEDGE_CACHE:-$HOME/.cache/sipedge}
base=$(bash "$here/../../packer/offline-base.sh")
hash=$(cat "$0" <(basename "$base") | sha256sum | cut -c1-16)
out="$cache/nspawn-root-$hash"
if [[ -d $out ]]; then
  echo "$out"
  exit 0
fi

work=$(mktemp -d "$cache/nspawn-root.XXXXXX")
loop=""
cleanup() {
  set +e
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [[ -n $loop ]] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT

qemu-img convert -O raw "$base" "$work/disk.raw"
# The one partition starts at 1 MiB (offline-base.sh).
loop=$(losetup -f --show -r -o $((2048 * 512)) "$work/disk.raw")
mkdir -p "$work/mnt" "$work/root"
mount -o ro "$loop" "$work/mnt"
cp -a "$work/mnt/." "$work/root/"
umount "$work/mnt"
losetup -d "$loop"
loop=""

: >"$work/root/etc/fstab"
# In a container there is no seed device to read keys from, and the clock is
# the host's (timesyncd could not set it).
for unit in nocloud-keys.service systemd-timesyncd.service; do
  ln -sf /dev/null "$work/root/etc/systemd/system/$unit"
done
mv "$work/root" "$out"
# Roots made from older bases or by another version of this script are no longer used.
find "$cache" -maxdepth 1 -name 'nspawn-root-*' -type d ! -path "$out" -exec rm -rf {} +
echo "$out"
