#!/usr/bin/env bash
# Builds the container images of the local cluster, without Docker or a registry, into _out/images/
# as docker-archive tarballs (import: `ctr -n k8s.io images import FILE`):
#   ecloud/pause:dev      the pod sandbox (containerd's sandbox_image must name it exactly)
#   ecloud/workload:dev   the test workload (test/e2e/images/workload)
#   ecloud/<component>:dev for each ecloud binary already in bin/ (make build): ecloud-scheduler,
#                         controller, ip-controller (with location-relay), node-agent, and netd (which also carries
#                         ecloud-cni, which it copies to the host's /opt/cni/bin, and the build
#                         host's ovs-vsctl, ovs-ofctl and ovs-appctl with their shared libraries:
#                         netd drives the node's Open vSwitch through them)
#   ecloud/ovs:dev        the node's Open vSwitch (netd DaemonSet, container ovs): Debian's
#                         openvswitch packages and their library closure, unpacked with dpkg-deb
#                         (hack/ovs-rootfs.sh, cached in _out/ovs-rootfs), and bin/ecloud-ovs
# Each image is a static Go binary on a minimal base (hack/image-build). An image is rebuilt only
# when one of its binaries is newer than its tarball.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BIN:-$PWD/bin}
OUT=${OUT:-$PWD/_out/images}
TAG=${TAG:-dev}
mkdir -p "$OUT" "$BIN/images"
# Static binaries; without -trimpath, so the packages come from the build cache go test filled.
gobuild() { CGO_ENABLED=0 $GO build -ldflags "-s -w" "$@"; }

# gobuild_keep OUT PKG: go build, replacing OUT only when the binary changed (its mtime decides
# whether the images are packed again).
gobuild_keep() {
  gobuild -o "$1.new" "$2"
  if cmp -s "$1.new" "$1"; then rm -f "$1.new"; else mv "$1.new" "$1"; fi
}
gobuild_keep "$BIN/image-build" ./hack/image-build
gobuild_keep "$BIN/images/pause" ./test/e2e/images/pause
gobuild_keep "$BIN/images/workload" ./test/e2e/images/workload

# image NAME SOURCE=/DEST... : pack unless _out/images/NAME.tar is newer than every source.
image() {
  local name=$1 tar=$OUT/$1.tar spec src fresh=1; shift
  for spec in "$@"; do
    src=${spec%%=*}
    [ -f "$tar" ] && [ "$tar" -nt "$src" ] || fresh=0
  done
  [ $fresh = 1 ] && return 0
  local args=()
  for spec in "$@"; do args+=(-file "$spec"); done
  "$BIN/image-build" -ref "ecloud/$name:$TAG" -o "$tar" "${args[@]}"
  echo "build-images: ecloud/$name:$TAG -> $tar"
}

image pause "$BIN/images/pause=/pause"
image workload "$BIN/images/workload=/workload"
for c in ecloud-scheduler controller node-agent; do
  [ -x "$BIN/$c" ] && image "$c" "$BIN/$c=/usr/local/bin/$c"
done
# The location relay ships in the ip-controller's image (one image less to pull on every node).
[ -x "$BIN/ip-controller" ] && image ip-controller "$BIN/ip-controller=/usr/local/bin/ip-controller" "$BIN/location-relay=/usr/local/bin/location-relay"
# with_libs BINARY...: SOURCE=/DEST pairs for each binary (into /usr/bin) and every shared library
# it loads, at the same path (the dynamic loader included).
with_libs() {
  local b p
  for b in "$@"; do
    p=$(command -v "$b") || { echo "build-images: $b not found (hack/install-deps.sh up installs it)" >&2; return 1; }
    echo "$p=/usr/bin/$b"
  done
  for b in "$@"; do ldd "$(command -v "$b")"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' |
    sort -u | while read -r lib; do echo "$lib=$lib"; done
}
if [ -x "$BIN/netd" ]; then
  files=("$BIN/netd=/usr/local/bin/netd")
  [ -x "$BIN/ecloud-cni" ] && files+=("$BIN/ecloud-cni=/usr/local/bin/ecloud-cni")
  mapfile -t ovs < <(with_libs ovs-vsctl ovs-ofctl ovs-appctl)
  image netd "${files[@]}" "${ovs[@]}"
fi
if [ -x "$BIN/ecloud-ovs" ]; then
  ROOTFS=${OVS_ROOTFS:-$OUT/../ovs-rootfs}
  [ -d "$ROOTFS" ] || "$PWD/hack/ovs-rootfs.sh" "$ROOTFS"
  tar=$OUT/ovs.tar
  if [ ! -f "$tar" ] || [ "$BIN/ecloud-ovs" -nt "$tar" ] || [ "$ROOTFS" -nt "$tar" ]; then
    "$BIN/image-build" -ref "ecloud/ovs:$TAG" -o "$tar" -tree "$ROOTFS=/" -file "$BIN/ecloud-ovs=/usr/local/bin/ecloud-ovs" \
      -entrypoint /usr/local/bin/ecloud-ovs
    echo "build-images: ecloud/ovs:$TAG -> $tar"
  fi
fi
exit 0
