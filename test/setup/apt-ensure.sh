#!/usr/bin/env bash
# usage: apt-ensure.sh COMMAND:PACKAGE ...
# Installs, from Debian's packages, the PACKAGE of every COMMAND missing on
# PATH; does nothing when all are present. Needs root only to install.
set -euo pipefail
missing=()
for pair in "$@"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "apt-ensure: need ${missing[*]} (run as root, or apt-get install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
