#!/usr/bin/env bash
# The integration tests drive real peers: sipp (Debian sip-tester), stunnel
# (TLS in front of sipp, whose Debian build has none), openssl, and
# Prometheus (a real scrape, promtool for the alert rules).
# Install what a fresh machine lacks; do nothing when present.
set -euo pipefail
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v stunnel >/dev/null 2>&1 || missing+=(stunnel4)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-peers: need ${missing[*]} (run as root, or apt-get install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
