#!/usr/bin/env bash
# The peers of `npm run bench:compare`: sipp (Debian sip-tester) for the load,
# stunnel4 (a TLS client in front of sipp, whose Debian build has no TLS),
# openssl (the test certificate), and Kamailio with its TLS module (the
# balancer sipedge is compared with). kamailio-tls-modules ships no command,
# so it is checked by its module file; the rest through apt-ensure.sh.
set -euo pipefail
here="$(dirname "$0")"
bash "$here/../../setup/apt-ensure.sh" sipp:sip-tester stunnel:stunnel4 openssl:openssl kamailio:kamailio
if ! compgen -G "/usr/lib/*/kamailio/modules/tls.so" >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench:compare: need kamailio-tls-modules (run as root, or apt-get install it)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends kamailio-tls-modules >/dev/null
fi
