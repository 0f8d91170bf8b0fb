#!/usr/bin/env bash
# Makes a NoCloud seed: an ISO 9660 image labelled `cidata` holding
# `user-data` (a #cloud-config authorising the given SSH public keys) and
# `meta-data`. Attached to the VM (e.g. `-cdrom seed.iso`, or a CD-ROM in
# the hypervisor) it is how SSH keys reach an appliance, which ships with
# none: the image build attaches one with its build key, an operator one
# with theirs, and Debian's cloud images read the same seed with cloud-init.
#
# usage: packer/nocloud-seed.sh OUT.iso PUBKEY_FILE...
# env:   SEED_INSTANCE_ID (default: sipedge-<random>)
set -euo pipefail
out=${1:?usage: nocloud-seed.sh OUT.iso PUBKEY_FILE...}
shift
[[ $# -gt 0 ]] || { echo "nocloud-seed.sh: no public key given" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
{
  echo "#cloud-config"
  echo "ssh_authorized_keys:"
  # Quoted: a key's comment may hold characters YAML would read otherwise.
  for f in "$@"; do
    while IFS= read -r key; do
      [[ -z $key || $key == \#* ]] && continue
      printf '  - "%s"\n' "$(printf '%s' "$key" | sed 's/\\/\\\\/g; s/"/\\"/g')"
    done <"$f"
  done
} >"$dir/user-data"
printf 'instance-id: %s\n' "${SEED_INSTANCE_ID:-sipedge-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}" >"$dir/meta-data"
# genisoimage (Debian's), or xorriso's mkisofs emulation: the same options.
if command -v genisoimage >/dev/null; then mkiso=(genisoimage); else mkiso=(xorriso -as mkisofs); fi
"${mkiso[@]}" -quiet -output "$out" -volid cidata -joliet -rock "$dir/user-data" "$dir/meta-data"
