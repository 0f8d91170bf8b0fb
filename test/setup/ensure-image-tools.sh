#!/usr/bin/env bash
# The image test builds and boots the appliance: Debian's packer (1.6.6),
# ansible and ansible-lint, qemu (TCG), debootstrap and partitioning tools,
# genisoimage for the NoCloud seeds that authorise SSH keys (the build's and
# the test's: the image carries none), nft to check rendered firewalls,
# systemd-nspawn for the fleet tests' Debian hosts (test/fleet/), plus the SIP
# peers the other tests use.
set -euo pipefail
here=$(dirname "$0")
bash "$here/ensure-peers.sh"
exec bash "$here/apt-ensure.sh" packer:packer ansible-playbook:ansible ansible-lint:ansible-lint \
  qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils debootstrap:debootstrap sfdisk:fdisk ssh:openssh-client \
  genisoimage:genisoimage nft:nftables systemd-nspawn:systemd-container
