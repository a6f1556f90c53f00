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
mkdir -p "$BASE/debs" "$BASE/payload" "$BASE/node"
log() { printf '[%s] %s\n' "$(date -u +%T)" "$*"; }

# ---- kernel (the package behind linux-image-amd64), modules.dep, initramfs
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
KVER=${KPKG#linux-image-}
KDIR=$BASE/kernel-$KVER
if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ]; then
  log "downloading $KPKG"
  (cd "$BASE/debs" && apt-get download -q -o APT::Sandbox::User=root "$KPKG" >/dev/null)
  rm -rf "$KDIR.tmp"; dpkg-deb -x "$BASE"/debs/"${KPKG}"_*.deb "$KDIR.tmp"; mv "$KDIR.tmp" "$KDIR"
  depmod -b "$KDIR" "$KVER"   # the .deb ships no modules.dep
fi
INITRD=$BASE/initrd-$KVER.img
if [ ! -f "$INITRD" ]; then
  IR=$BASE/initramfs.d; rm -rf "$IR"; mkdir -p "$IR"/{bin,dev,proc,sys,newroot,modules}
  cp /bin/busybox "$IR/bin/busybox"; cp "$HERE/stage1-init" "$IR/init"
  # one modprobe call per module: extra names would be taken as module parameters
  for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe -d "$KDIR" -S "$KVER" --show-depends $m; done |
    awk '$1=="insmod"{print $2}' | awk '!seen[$0]++' | while read -r ko; do cp "$ko" "$IR/modules/"; basename "$ko"; done >"$IR/modules.order"
  (cd "$IR" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$INITRD")
fi

# ---- payload: the guest's scripts, ecloud-ovs, the test binary
cp "$HERE/stage2-init" "$HERE/guest.sh" "$BASE/payload/"
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
rm -f "$BASE/node/"{done,result.txt,console.log,ecloud-ovs.log}

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
ACCEL="-machine q35 -accel tcg,thread=multi,tb-size=128 -cpu max"
[ "${DP_GUEST_ACCEL:-tcg}" = kvm ] && ACCEL="-machine q35,accel=kvm -cpu host"
P9="security_model=none,multidevs=remap"
log "booting the guest ($KVER, ${DP_GUEST_ACCEL:-tcg})"
# shellcheck disable=SC2086
ip netns exec "$NS" qemu-system-x86_64 -name dp-guest $ACCEL -smp 2 -m 1024 \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$INITRD" \
  -append "console=ttyS0 quiet loglevel=3 cgroup_no_v1=all panic=-1" \
  -chardev file,id=con0,path="$BASE/node/console.log" -serial chardev:con0 \
  -fsdev local,id=fs_usr,path=/usr,readonly=on,$P9 -device virtio-9p-pci,fsdev=fs_usr,mount_tag=hostusr \
  -fsdev local,id=fs_etc,path=/etc,readonly=on,$P9 -device virtio-9p-pci,fsdev=fs_etc,mount_tag=hostetc \
  -fsdev local,id=fs_mod,path="$KDIR/lib/modules",readonly=on,$P9 -device virtio-9p-pci,fsdev=fs_mod,mount_tag=modules \
  -fsdev local,id=fs_pay,path="$BASE/payload",readonly=on,$P9 -device virtio-9p-pci,fsdev=fs_pay,mount_tag=payload \
  -fsdev local,id=fs_node,path="$BASE/node",$P9 -device virtio-9p-pci,fsdev=fs_node,mount_tag=node \
  -netdev tap,id=n0,ifname="$TAP",script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:15:00:10 \
  -pidfile "$BASE/qemu.pid" -daemonize
t0=$SECONDS
until grep -qa GUEST-READY "$BASE/node/console.log" 2>/dev/null; do
  [ $((SECONDS - t0)) -lt "$TMO" ] || { echo "guest: no GUEST-READY after ${TMO}s"; tail -20 "$BASE/node/console.log"; exit 1; }
  sleep 1
done
log "guest up after $((SECONDS - t0))s; peer side runs against it"

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
