#!/usr/bin/env bash
# Builds the offline base image for `packer build`: a bootable Debian 12 qcow2
# debootstrapped from the Debian mirror, so an image build needs no cloud
# image download. It authorises no SSH key: like Debian's cloud images it
# takes keys from a NoCloud seed at boot (base/nocloud-keys), the build's
# seed carrying the build key and an operator's seed their own.
#
# usage: packer/offline-base.sh   (prints the qcow2's path)
#
# The result is cached in $SIPEDGE_CACHE (default ~/.cache/sipedge) under a
# hash of this script and base/, so it is rebuilt only when they change.
# Needs root (loop devices, mount, chroot).
set -euo pipefail

# The root is mounted in a mount namespace of this script's own. In the
# host's, any process that makes a namespace meanwhile (`ip netns exec`, a
# container, a test) gets a copy of the mount, which keeps the filesystem
# mounted after our umount: its journal is then never written back, GRUB
# (which does not replay it) reads an empty grub.cfg, and the image stops
# at a grub> prompt. Seen in a CI run while tests made network namespaces.
if [[ ${SIPEDGE_BASE_UNSHARED:-} != 1 ]]; then
  SIPEDGE_BASE_UNSHARED=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${SIPEDGE_CACHE:-$HOME/.cache/sipedge}
# What the appliance needs before Ansible runs: a kernel that boots, SSH and
# python3 for Ansible, nftables and openssl for the role, keepalived for the
# role's optional HA pair (sipedge_vrrp_enabled), python3-yaml for the NoCloud
# seed's user-data, no package fetches.
packages=dbus,udev,kmod,netbase,systemd-timesyncd,grub-pc,openssh-server,python3,python3-apt,python3-yaml,systemd-sysv,systemd-resolved,linux-image-amd64,nftables,openssl,keepalived,iproute2,procps,ca-certificates,logrotate,sudo

hash=$(cat "$0" "$here"/base/* <(echo "$mirror") | sha256sum | cut -c1-16)
out="$cache/debian12-base-$hash.qcow2"
if [[ -s $out ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"

work=$(mktemp -d "$cache/base.XXXXXX")
mnt="$work/root"
loop_disk=""
loop_part=""
cleanup() {
  set +e
  for m in dev/pts dev proc sys; do mountpoint -q "$mnt/$m" && umount "$mnt/$m"; done
  mountpoint -q "$mnt" && umount "$mnt"
  [[ -n $loop_part ]] && losetup -d "$loop_part"
  [[ -n $loop_disk ]] && losetup -d "$loop_disk"
  rm -rf "$work"
}
trap cleanup EXIT

raw="$work/disk.raw"
truncate -s 4G "$raw"
# One bootable primary partition from 1 MiB: room before it for GRUB's core image.
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$raw"
loop_disk=$(losetup -f --show "$raw")
# losetup -P makes no partition devices here: map the partition by its offset.
loop_part=$(losetup -f --show -o $((2048 * 512)) "$raw")
mkfs.ext4 -q -L sipedge-root "$loop_part"
uuid=$(blkid -s UUID -o value "$loop_part")
mkdir -p "$mnt"
mount "$loop_part" "$mnt"

debootstrap --variant=minbase --include="$packages" bookworm "$mnt" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -30 "$work/debootstrap.log" >&2
  exit 1
}

for m in dev dev/pts proc sys; do mount --bind "/$m" "$mnt/$m"; done

echo "UUID=$uuid / ext4 errors=remount-ro 0 1" >"$mnt/etc/fstab"
echo sipedge >"$mnt/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 sipedge\n' >"$mnt/etc/hosts"
# systemd-networkd: DHCP on whatever the NIC is called (virtio, ENA, vmxnet3).
cat >"$mnt/etc/systemd/network/10-dhcp.network" <<NET
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
chroot "$mnt" systemctl enable -q systemd-networkd systemd-resolved ssh
# Debian enables keepalived on install; an appliance is in an HA pair only when
# the role says so (sipedge_vrrp_enabled), which enables it then.
chroot "$mnt" systemctl disable -q keepalived
# No login key in the base: keys come from a NoCloud seed at boot.
install -d -m 700 "$mnt/root/.ssh"
install -m 755 "$here/base/nocloud-keys" "$mnt/usr/local/sbin/nocloud-keys"
install -m 644 "$here/base/nocloud-keys.service" "$mnt/etc/systemd/system/nocloud-keys.service"
chroot "$mnt" systemctl enable -q nocloud-keys.service
# The image gets fresh SSH host keys and machine-id on first boot; the keys'
# fingerprints go to the console, so the first SSH connection can be checked
# against them (as cloud-init prints them) instead of trusted blindly.
rm -f "$mnt"/etc/ssh/ssh_host_*
cat >"$mnt/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
# $$: a literal $ for the shell (systemd expands $NAME itself).
ExecStartPost=/bin/sh -c 'for k in /etc/ssh/ssh_host_*_key.pub; do echo "ssh host key: $$(ssh-keygen -l -f "$$k")"; done'
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
chroot "$mnt" systemctl enable -q ssh-hostkeys.service
: >"$mnt/etc/machine-id"
echo 'APT::Install-Recommends "false";' >"$mnt/etc/apt/apt.conf.d/90norecommends"
echo "deb $mirror bookworm main" >"$mnt/etc/apt/sources.list"

# GRUB into the MBR gap. update-grub writes an empty menu on a file-backed
# loop device, so the menu is written here; /vmlinuz and /initrd.img are the
# kernel package's own symlinks, so it survives kernel upgrades.
chroot "$mnt" grub-install --target=i386-pc --modules="part_msdos ext2" --force "$loop_disk" >"$work/grub.log" 2>&1 || {
  cat "$work/grub.log" >&2
  exit 1
}
cat >"$mnt/boot/grub/grub.cfg" <<GRUB
set timeout=0
insmod part_msdos
insmod ext2
search --no-floppy --fs-uuid --set=root $uuid
linux /vmlinuz root=UUID=$uuid ro console=tty0 console=ttyS0,115200n8 net.ifnames=0
initrd /initrd.img
boot
GRUB
chroot "$mnt" apt-get clean

for m in dev/pts dev proc sys; do umount "$mnt/$m"; done
umount "$mnt"
# A filesystem left with its journal to replay does not boot (above): refuse it here, by name.
if dumpe2fs -h "$loop_part" 2>/dev/null | grep -q needs_recovery; then
  echo "offline-base: the root filesystem was not written back at umount (needs_recovery)" >&2
  exit 1
fi
losetup -d "$loop_part"
loop_part=""
losetup -d "$loop_disk"
loop_disk=""
qemu-img convert -c -O qcow2 "$raw" "$out.tmp"
mv "$out.tmp" "$out"
# Older bases (another version of this script or base/) are no longer used.
find "$cache" -maxdepth 1 -name 'debian12-base-*.qcow2' ! -path "$out" -delete
echo "$out"
