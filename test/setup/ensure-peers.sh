#!/usr/bin/env bash
# The integration tests drive real peers: sipp (Debian sip-tester), stunnel
# (TLS in front of sipp, whose Debian build has none), openssl, and
# Prometheus (a real scrape, promtool for the alert rules), and coturn's STUN
# client (keep-alives on the SIP port); for the hostile-traffic test,
# nftables (its stray-send counters), SIPVicious (svmap, svwar) and sipsak
# (the attackers), and setpriv (util-linux: sipedge's socket group); baresip
# (its core package, no GUI: a real SIP UA over TLS); Kamailio (a real
# registrar that honours Path, behind two appliances in the scale-out test);
# ansible-playbook (upgrade tasks run against a stand-in admin API; the
# fleet's DNS records rendered from an inventory) and named-checkzone
# (bind9-utils: those records checked as a zone); and user-mode Linux (a
# kernel of its own where bench:connections may raise its open-file limit,
# test/bench/connections/uml.sh).
set -euo pipefail
exec bash "$(dirname "$0")/apt-ensure.sh" sipp:sip-tester openssl:openssl stunnel:stunnel4 ss:iproute2 promtool:prometheus turnutils_stunclient:coturn \
  nft:nftables svmap:sipvicious sipsak:sipsak setpriv:util-linux baresip:baresip-core kamailio:kamailio \
  ansible-playbook:ansible named-checkzone:bind9-utils linux.uml:user-mode-linux
