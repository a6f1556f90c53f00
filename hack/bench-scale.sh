#!/usr/bin/env bash
# make bench-scale: builds the binaries the scale benchmark runs as processes (netd and
# ip-controller of this tree, and netd of the per-claim design from the git commit
# BENCH_SCALE_PER_CLAIM_REF) and runs TestScaleBench; prints its figure lines, RESULT lines last.
# Sizes: BENCH_SCALE_NODES, BENCH_SCALE_CLAIMS, BENCH_SCALE_SIM_NODES, BENCH_SCALE_TODAY_SIM_NODES,
# BENCH_SCALE_TODAY_MESH, BENCH_SCALE_RATE, BENCH_SCALE_SECONDS; BENCH_SCALE_RELAYS, BENCH_SCALE_RELAY_SOURCE,
# BENCH_SCALE_CPU_PROFILE_DIR (docs/design/scale.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
go=${GO:-go}
ref=${BENCH_SCALE_PER_CLAIM_REF:-839cfe5}
out="$root/bin/bench-scale"
mkdir -p "$out"
cd "$root"
$go build -o "$out/netd" ./cni/cmd/netd
$go build -o "$out/ip-controller" ./cni/cmd/ip-controller
src=$(mktemp -d /tmp/ecloud-bench-scale-src.XXXXXX)
trap 'rm -rf "$src"' EXIT
git -C "$root" archive "$ref" | tar -x -C "$src"
(cd "$src" && $go build -o "$out/netd-per-claim" ./cni/cmd/netd)
log="$out/bench-scale.log"
export BENCH_SCALE_NETD="$out/netd" BENCH_SCALE_TODAY_NETD="$out/netd-per-claim" BENCH_SCALE_IP_CONTROLLER="$out/ip-controller"
ECLOUD_BENCH=scale $go test -count=1 -timeout 60m -run '^TestScaleBench$' -v ./test/integration >"$log" 2>&1 || {
	tail -60 "$log"
	exit 1
}
grep -a -E '^(scale |  scale |RESULT )' "$log"
