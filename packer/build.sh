#!/usr/bin/env bash
# Builds the appliance image offline, on this host: the release bundle, the
# Debian base (debootstrapped, cached), then `packer build` of the qemu source
# with the Ansible provisioner running ansible/image.yml.
#
# usage: packer/build.sh   (prints the qcow2's path; needs root for the base)
# env:   SIPEDGE_CACHE (default ~/.cache/sipedge), PACKER_ACCELERATOR (tcg)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cache=${SIPEDGE_CACHE:-$HOME/.cache/sipedge}
out="$repo/packer/out"
mkdir -p "$cache" "$out"

# One build key per build host. The base authorises no key: the build boots
# it with a NoCloud seed carrying this one, as an operator's first boot does
# with theirs, and image.yml removes it at the end, so the image ships none.
key="$cache/build_ed25519"
[[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C sipedge-build -f "$key"
seed="$out/build-seed.iso"
SEED_INSTANCE_ID=sipedge-build bash packer/nocloud-seed.sh "$seed" "$key.pub"

bundle=$(bash packer/release-bundle.sh "$out")
base=$(bash packer/offline-base.sh)
version=$(node -p 'require("./package.json").version')

vars="$out/offline.pkrvars.json"
cat >"$vars" <<JSON
{
  "version": "$version",
  "bundle": "$bundle",
  "base_image": "$base",
  "base_checksum": "none",
  "cloud_init": false,
  "seed_iso": "$seed",
  "ssh_username": "root",
  "ssh_private_key_file": "$key",
  "output_directory": "$out/image",
  "accelerator": "${PACKER_ACCELERATOR:-tcg}"
}
JSON
rm -rf "$out/image"
export CHECKPOINT_DISABLE=1 PACKER_CACHE_DIR="$cache/packer"
packer build -only=qemu.sipedge -color=false -var-file="$vars" packer/sipedge.pkr.hcl >"$out/packer.log" 2>&1 || {
  tail -40 "$out/packer.log" >&2
  exit 1
}
echo "$out/image/sipedge-$version.qcow2"
