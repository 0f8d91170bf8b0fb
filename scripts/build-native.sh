#!/usr/bin/env bash
# Builds sipedge's native datagram path (src/transport/native/datagram.c)
# into build/native/datagram.node; run by `npm install` and before the tests,
# and does nothing when the build is newer than its source.
#
# Headers: Node-API from the node-api-headers package (the Node.js project's
# own, ABI-stable across Node versions) and libuv from Debian's libuv1-dev
# (libuv keeps its ABI within 1.x, so the handle layout matches the libuv
# inside Node). No node-gyp: it would fetch Node's full headers from the
# internet, and one C file needs no build system.
set -euo pipefail
cd "$(dirname "$0")/.."
source=src/transport/native/datagram.c
out=build/native/datagram.node
[ "${1:-}" != --force ] && [ "$out" -nt "$source" ] && exit 0
if [ ! -f /usr/include/uv.h ] || ! command -v cc >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-native: needs a C compiler and libuv's headers (apt-get install gcc libuv1-dev)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends gcc libc6-dev libuv1-dev >/dev/null
fi
mkdir -p "$(dirname "$out")"
cc -std=gnu11 -O2 -fPIC -shared -Wall -Wextra -Werror \
  -I node_modules/node-api-headers/include \
  -o "$out.tmp" "$source"
mv "$out.tmp" "$out"
