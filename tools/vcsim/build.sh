#!/usr/bin/env bash
# Builds tools/vcsim (the govmomi 0.24.2 vCenter simulator as a program) offline from Debian's
# golang-go and golang-github-vmware-govmomi-dev, with the patches in tools/vcsim/patches applied to
# a copy of the simulator package. The binary is cached under .cache/vcsim by the content of its
# inputs (sources, patches, Go and govmomi versions): a second run costs nothing.
# Prints the binary's path on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${VMGUARD_CACHE:-$ROOT/.cache}/vcsim
SRC=${VMGUARD_GOCODE:-/usr/share/gocode/src}
GOVMOMI=$SRC/github.com/vmware/govmomi
command -v go >/dev/null || { echo "go not found: apt-get install golang-go (scripts/setup.sh)" >&2; exit 1; }
[ -d "$GOVMOMI/simulator" ] || { echo "$GOVMOMI/simulator not found: apt-get install golang-github-vmware-govmomi-dev" >&2; exit 1; }

key=$( (cat "$0" "$ROOT/tools/vcsim/main.go" "$ROOT"/tools/vcsim/patches/*.patch; go version;
        dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || true) | sha256sum | cut -c1-16)
bin=$CACHE/vmguard-vcsim-$key
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

mkdir -p "$CACHE"
work=$CACHE/build; rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
# A GOPATH that overlays Debian's sources: everything linked, except a patched copy of the simulator.
gp=$work/gopath
mkdir -p "$gp/src/github.com/vmware/govmomi" "$gp/src/vmguard-vcsim"
for d in "$SRC"/*; do [ "$(basename "$d")" = github.com ] || ln -s "$d" "$gp/src/"; done
for d in "$SRC"/github.com/*; do [ "$(basename "$d")" = vmware ] || ln -s "$d" "$gp/src/github.com/"; done
for d in "$SRC"/github.com/vmware/*; do [ "$(basename "$d")" = govmomi ] || ln -s "$d" "$gp/src/github.com/vmware/"; done
for d in "$GOVMOMI"/*; do [ "$(basename "$d")" = simulator ] || ln -s "$d" "$gp/src/github.com/vmware/govmomi/"; done
cp -r "$GOVMOMI/simulator" "$gp/src/github.com/vmware/govmomi/simulator"
chmod -R u+w "$gp/src/github.com/vmware/govmomi/simulator"
for p in "$ROOT"/tools/vcsim/patches/*.patch; do
  patch -s -p1 -d "$gp/src/github.com/vmware/govmomi" < "$p" || { echo "patch $p does not apply" >&2; exit 1; }
done
cp "$ROOT/tools/vcsim/main.go" "$gp/src/vmguard-vcsim/main.go"
( cd "$gp/src/vmguard-vcsim" && GO111MODULE=off GOPATH=$gp GOCACHE=$CACHE/gocache \
    go build -o "$work/vmguard-vcsim" . ) >&2
mv "$work/vmguard-vcsim" "$bin"
echo "$bin"
