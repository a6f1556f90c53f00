#!/usr/bin/env bash
# guests.sh: the kernel-datapath part of make bench-datapath. Boots two QEMU guests on Debian's
# own kernel (hack/guest-datapath/lib.sh: the host's /usr and /etc over 9p, TCG) joined by a
# Linux bridge in the network namespace dpb; each runs ecloud-ovs (Open vSwitch on the kernel
# datapath) and the benchdp agent (guest.sh). The driver (benchdp guests, in dpb) builds br-int as
# netd does (two pods, a VXLAN tunnel port, the gateway, netd's flows) and the Linux bridge +
# vxlan reference in both guests, measures every path and prints the RESULT lines.
#   hack/bench-datapath/guests.sh     # as root; state in $BENCH_DP_BASE (default /tmp/bench-dp)
# Environment: BENCH_DP_BASE, BENCH_DP_ACCEL (tcg|kvm), BENCH_DP_ITERATIONS (4).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BASE=${BENCH_DP_BASE:-/tmp/bench-dp}
NS=dpb; BR=dpb-br0; NET=10.216.0
[ "$(id -u)" = 0 ] || { echo "guests.sh needs root"; exit 1; }
for c in qemu-system-x86_64 busybox ovs-vswitchd depmod iperf3; do
  command -v $c >/dev/null || { echo "missing $c (hack/install-deps.sh bench-datapath)"; exit 1; }
done
mkdir -p "$BASE/payload" "$BASE/node0" "$BASE/node1"
GDP_BASE=$BASE GDP_ACCEL=${BENCH_DP_ACCEL:-tcg}
# shellcheck source=../guest-datapath/lib.sh
. "$ROOT/hack/guest-datapath/lib.sh"
gdp_kernel
cp "$HERE/guest.sh" "$BASE/payload/"
CGO_ENABLED=0 go -C "$ROOT" build -o "$BASE/payload/ecloud-ovs" ./cni/cmd/ecloud-ovs
CGO_ENABLED=0 go -C "$ROOT" build -o "$BASE/payload/benchdp" ./test/benchdp/cmd/benchdp

cleanup() { # the guests (by pid file), the namespace; safe to repeat
  for i in 0 1; do
    if [ -f "$BASE/qemu$i.pid" ]; then kill "$(cat "$BASE/qemu$i.pid")" 2>/dev/null || true; rm -f "$BASE/qemu$i.pid"; fi
  done
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$NS"; ip -n "$NS" link set lo up
ip -n "$NS" link add "$BR" type bridge; ip -n "$NS" addr add "$NET.1/24" dev "$BR"; ip -n "$NS" link set "$BR" up
for i in 0 1; do
  ip -n "$NS" tuntap add dev "dpb-tap$i" mode tap; ip -n "$NS" link set "dpb-tap$i" master "$BR" up
  printf 'NODE_NAME=bench-guest%d\nNODE_IP=%s\n' "$i" "$NET.1$i" >"$BASE/node$i/node.env"
  gdp_boot "bench-guest$i" "$NS" "dpb-tap$i" "52:54:00:16:00:1$i" "$BASE/node$i" "$BASE/payload" "$BASE/qemu$i.pid"
done
for i in 0 1; do gdp_wait "$BASE/node$i" 600; done
echo "datapath guests: QEMU ${GDP_ACCEL} (tcg = software emulation), 2 vCPUs and 1 GiB each, on Debian's kernel $KVER; figures are emulated, compare them only with the baselines of this run"
ip netns exec "$NS" "$BASE/payload/benchdp" guests -nodes "$NET.10,$NET.11" -iterations "${BENCH_DP_ITERATIONS:-4}"
