#!/usr/bin/env bash
# The image test builds and boots the appliance: Debian's packer (1.6.6),
# ansible and ansible-lint, qemu (TCG), debootstrap and partitioning tools,
# plus the SIP peers the other tests use. Install what a fresh machine lacks.
set -euo pipefail
bash "$(dirname "$0")/ensure-peers.sh"
missing=()
command -v packer >/dev/null 2>&1 || missing+=(packer)
command -v ansible-playbook >/dev/null 2>&1 || missing+=(ansible)
command -v ansible-lint >/dev/null 2>&1 || missing+=(ansible-lint)
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v sfdisk >/dev/null 2>&1 || missing+=(fdisk)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-image-tools: need ${missing[*]} (run as root, or apt-get install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
