#!/usr/bin/env bash
# run.sh: the kernel OVS datapath in a real kernel, against the userspace datapath.
# Boots a QEMU guest on Debian's own kernel (linux-image-amd64, extracted, not installed; the
# host's /usr and /etc shared read-only over 9p), in which ecloud-ovs runs Open vSwitch on the
# kernel datapath (loading the openvswitch module); next to it a namespace host runs Open vSwitch
# with the userspace datapath (br-phy owns its NIC). On both, test/guestdp builds br-int with
# netd's OVS driver and flow table, a pod and a flow-based tunnel port, and the two pods ping and
# talk TCP to each other, over VXLAN and then Geneve. Exit 0 only if both sides pass.
#
#   hack/guest-datapath/run.sh            # as root; state in $DP_GUEST_BASE (default /tmp/dp-kvmr)
#
# The guest runs under QEMU's TCG (no usable hardware virtualisation needed; slow but faithful),
# 2 vCPUs, 1 GiB. Environment: DP_GUEST_BASE, DP_GUEST_TUNNELS ("vxlan geneve"),
# DP_GUEST_ACCEL (tcg|kvm), DP_GUEST_TIMEOUT (seconds to boot, default 600).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BASE=${DP_GUEST_BASE:-/tmp/dp-kvmr}
TUNNELS=${DP_GUEST_TUNNELS:-vxlan geneve}
TMO=${DP_GUEST_TIMEOUT:-600}
NS=dpk; BR=dpk-br0; TAP=dpk-tap0; PEER=dpk-peer
NET=10.215.0; GUEST_IP=$NET.10; PEER_IP=$NET.20
GUEST_POD=10.70.0.10; PEER_POD=10.70.0.20
[ "$(id -u)" = 0 ] || { echo "run.sh needs root"; exit 1; }
for c in qemu-system-x86_64 busybox ovs-vswitchd depmod; do
  command -v $c >/dev/null || { echo "missing $c (apt-get install qemu-system-x86 busybox-static kmod openvswitch-switch)"; exit 1; }
done
mkdir -p "$BASE/payload" "$BASE/node"
GDP_BASE=$BASE GDP_ACCEL=${DP_GUEST_ACCEL:-tcg}
# shellcheck source=lib.sh
. "$HERE/lib.sh"
log() { gdp_log "$@"; }
gdp_kernel

# ---- payload: the guest's scripts, ecloud-ovs, the test binary
cp "$HERE/guest.sh" "$BASE/payload/"
CGO_ENABLED=0 go -C "$ROOT" build -o "$BASE/payload/ecloud-ovs" ./cni/cmd/ecloud-ovs
CGO_ENABLED=0 go -C "$ROOT" test -c -o "$BASE/payload/guestdp.test" ./test/guestdp
cat >"$BASE/node/node.env" <<ENV
NODE_NAME=dp-guest
NODE_IP=$GUEST_IP
PEER_IP=$PEER_IP
LOCAL_POD=$GUEST_POD
PEER_POD=$PEER_POD
TUNNELS="$TUNNELS"
ENV
rm -f "$BASE/node/"{done,result.txt,ecloud-ovs.log}

cleanup() { # the guest (by pid file), the peer's OVS, the namespaces; safe to repeat
  if [ -f "$BASE/qemu.pid" ]; then kill "$(cat "$BASE/qemu.pid")" 2>/dev/null || true; rm -f "$BASE/qemu.pid"; fi
  for d in ovs-vswitchd ovsdb-server; do
    [ ! -f "$BASE/peer-ovs/$d.pid" ] || ovs-appctl -t "$BASE/peer-ovs/$d.ctl" exit 2>/dev/null || true
  done
  ip netns del dppod 2>/dev/null || true
  ip netns del "$PEER" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

# ---- network: netns $NS with a bridge (the wire), the guest's tap, the peer's veth
ip netns add "$NS"; ip -n "$NS" link set lo up
ip -n "$NS" link add "$BR" type bridge; ip -n "$NS" link set "$BR" up
ip -n "$NS" tuntap add dev "$TAP" mode tap; ip -n "$NS" link set "$TAP" master "$BR" up
ip netns add "$PEER"; ip -n "$PEER" link set lo up
ip link add dpk-pu netns "$NS" type veth peer name eth0 netns "$PEER"
ip -n "$NS" link set dpk-pu master "$BR" up
# The wire must not leave checksums to "hardware": the peer's userspace datapath reads frames raw.
ip netns exec "$NS" ethtool -K dpk-pu tx off >/dev/null

# ---- the netdev peer: its own OVS, br-phy owning eth0 and the tunnel endpoint IP
O=$BASE/peer-ovs; rm -rf "$O"; mkdir -p "$O"
V=(ovs-vsctl --db="unix:$O/db.sock" --timeout=30)
export OVS_RUNDIR=$O OVS_LOGDIR=$O OVS_DBDIR=$O OVS_SYSCONFDIR=$O
ovsdb-tool create "$O/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ip netns exec "$PEER" ovsdb-server "$O/conf.db" --remote="punix:$O/db.sock" --pidfile="$O/ovsdb-server.pid" \
  --unixctl="$O/ovsdb-server.ctl" --log-file="$O/ovsdb-server.log" -vconsole:off --detach
"${V[@]}" --no-wait init
ip netns exec "$PEER" ovs-vswitchd "unix:$O/db.sock" --pidfile="$O/ovs-vswitchd.pid" --unixctl="$O/ovs-vswitchd.ctl" \
  --log-file="$O/ovs-vswitchd.log" -vconsole:off --detach
mac=$(ip netns exec "$PEER" cat /sys/class/net/eth0/address)
"${V[@]}" add-br br-phy -- set bridge br-phy datapath_type=netdev fail-mode=standalone other_config:hwaddr="0e:${mac#*:}" -- add-port br-phy eth0
ip -n "$PEER" link set eth0 up; ip -n "$PEER" addr add "$PEER_IP/24" dev br-phy; ip -n "$PEER" link set br-phy up

# ---- the guest
gdp_boot dp-guest "$NS" "$TAP" 52:54:00:15:00:10 "$BASE/node" "$BASE/payload" "$BASE/qemu.pid"
gdp_wait "$BASE/node" "$TMO" || exit 1
log "peer side runs against the guest"

# ---- the peer side, one tunnel type after the other (the guest does the same)
rc=0
for tun in $TUNNELS; do
  log "== $tun: peer (netdev)"
  ip netns exec "$PEER" env ECLOUD_DP_DATAPATH=netdev ECLOUD_DP_TUNNEL="$tun" ECLOUD_DP_PEER_TEP="$GUEST_IP" \
    ECLOUD_DP_LOCAL_POD="$PEER_POD" ECLOUD_DP_PEER_POD="$GUEST_POD" ECLOUD_DP_LINGER=5s \
    ECLOUD_DP_OVSDB="unix:$O/db.sock" ECLOUD_DP_OVS_RUNDIR="$O" \
    "$BASE/payload/guestdp.test" -test.v -test.run TestPodAcrossDatapaths -test.timeout 10m || rc=1
done
t0=$SECONDS
until [ -f "$BASE/node/done" ]; do
  [ $((SECONDS - t0)) -lt 600 ] || { echo "guest: checks not done after 600s"; break; }
  sleep 2
done
echo "==== guest side ($BASE/node/result.txt)"; cat "$BASE/node/result.txt"
grep -q '^rc=0$' "$BASE/node/done" 2>/dev/null || rc=1
echo "==== ecloud-ovs in the guest"; grep -E 'Kernel module|Loaded kernel|upcall|Started' "$BASE/node/ecloud-ovs.log" || true
[ $rc = 0 ] && log "PASS: pod <-> pod between the kernel datapath (guest) and the userspace datapath, over $TUNNELS" ||
  log "FAIL (see above)"
exit $rc
