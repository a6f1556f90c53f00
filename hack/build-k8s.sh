#!/usr/bin/env bash
# Builds, from this module, the third-party binaries the local cluster (make up) runs, into bin/:
#   kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#       k8s.io/kubernetes/cmd/<name> at the version go.mod pins
#   etcd
#       go.etcd.io/etcd/server/v3 at the version go.mod pins (its module root is package main)
#   cni/loopback cni/bridge cni/host-local
#       CNI reference plugins, github.com/containernetworking/plugins $CNI_PLUGINS_VERSION: loopback
#       (containerd's CRI runs it for every sandbox, whatever the pod network); bridge and
#       host-local (the reference pod network make bench-e2e compares ecloud with)
#   containerd/containerd containerd/containerd-shim-runc-v2 containerd/ctr
#       containerd 2, github.com/containerd/containerd/v2 $CONTAINERD_VERSION (go install: its go.mod
#       has no replace directives); the shim sits next to containerd, where containerd looks for it
#
#   hack/build-k8s.sh              everything that is missing or out of date
#   hack/build-k8s.sh kubelet etcd only those
#
# Incremental: each binary has a stamp (bin/.stamps/<name>) holding the module version and build
# flags it was built with; a binary whose stamp matches is skipped. `go install k8s.io/kubernetes/
# cmd/X@v` is refused (Kubernetes' go.mod replaces its staging modules with ./staging paths), which
# is why these build inside this module: hack/cluster/tools.go keeps their requirements in go.mod.
# Timings are appended to bin/.stamps/buildtimes.txt. From an empty build cache (module cache
# warm) everything takes about 930 CPU-seconds, peak RSS 2.8 GB: 8-9 min on 2 idle cores;
# kube-apiserver first dominates (later binaries reuse its packages).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BIN:-$PWD/bin}
CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.9.1}
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
CNI_BINS=(cni/loopback cni/bridge cni/host-local)
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.2.9}
CONTAINERD_BINS=(containerd/containerd containerd/containerd-shim-runc-v2 containerd/ctr)
ALL=("${K8S_BINS[@]}" etcd "${CNI_BINS[@]}" "${CONTAINERD_BINS[@]}")
[ $# -gt 0 ] && ALL=("$@")

STAMPS=$BIN/.stamps
mkdir -p "$BIN/cni" "$STAMPS/cni" "$BIN/containerd" "$STAMPS/containerd"
k8s_version=$($GO list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd_version=$($GO list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
IFS=. read -r k8s_major k8s_minor _ <<<"${k8s_version#v}"
# Without the -X flags the binaries, and the Node objects, report v0.0.0-master.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$k8s_major -X $pkg.gitMinor=$k8s_minor"
done
k8s_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
go_version=$($GO env GOVERSION)
# Host binaries (not packed into images): built with the cgo setting of the caller (the Makefile
# exports CGO_ENABLED=0) and without -trimpath, i.e. with the same cache keys as `go test
# ./test/...`, which already compiled most of the apiserver, scheduler and controller packages;
# that saves minutes on 2 cores.

# build NAME STAMP CMD... : run CMD unless bin/NAME exists and its stamp equals STAMP.
build() {
  local name=$1 stamp=$2; shift 2
  if [ -x "$BIN/$name" ] && [ "$(cat "$STAMPS/$name" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  local t0=$SECONDS
  echo "build-k8s: building $name"
  "$@"
  echo "$stamp" >"$STAMPS/$name"
  echo "$(date -u +%FT%TZ) $name $((SECONDS - t0))s" | tee -a "$STAMPS/buildtimes.txt"
}

for b in "${ALL[@]}"; do
  case "$b" in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl)
      build "$b" "$k8s_version $go_version $k8s_ldflags" \
        "$GO" build -ldflags "$k8s_ldflags" -o "$BIN/$b" "k8s.io/kubernetes/cmd/$b" ;;
    etcd)
      build etcd "$etcd_version $go_version" \
        "$GO" build -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3 ;;
    cni/*)
      p=${b#cni/}
      case "$p" in host-local) dir=ipam ;; *) dir=main ;; esac # plugins/<dir>/<p>
      # A module of its own, with no replace directives: go install @version works.
      build "$b" "$CNI_PLUGINS_VERSION $go_version" \
        env CGO_ENABLED=0 GOBIN="$BIN/cni" "$GO" install -trimpath -ldflags "-s -w" \
        "github.com/containernetworking/plugins/plugins/$dir/$p@$CNI_PLUGINS_VERSION" ;;
    containerd/*)
      # Static (no cgo: no btrfs snapshotter, which needs the btrfs headers), like the release builds.
      build "$b" "$CONTAINERD_VERSION $go_version" \
        env CGO_ENABLED=0 GOBIN="$BIN/containerd" "$GO" install -trimpath \
        -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION#v}" \
        "github.com/containerd/containerd/v2/cmd/${b#containerd/}@$CONTAINERD_VERSION" ;;
    *) echo "build-k8s: unknown binary $b (known: ${K8S_BINS[*]} etcd ${CNI_BINS[*]} ${CONTAINERD_BINS[*]})" >&2; exit 2 ;;
  esac
done
