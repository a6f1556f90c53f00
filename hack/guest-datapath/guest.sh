#!/bin/bash
# Inside the guest (Debian's kernel): the shipped OVS supervisor (ecloud-ovs) on the kernel
# datapath, then the pod-to-pod check against the netdev host, once per tunnel type.
set -u
. /mnt/node/node.env
P=/mnt/payload
uname -r; stat -fc %T /sys/fs/cgroup
mkdir -p /var/lib/ecloud/ovs /run/openvswitch
"$P/ecloud-ovs" --check-node-label=false --metrics-bind-address=0 --modprobe=/usr/sbin/modprobe --v=2 > /mnt/node/ecloud-ovs.log 2>&1 &
for _ in $(seq 120); do ovs-vsctl --timeout=2 show >/dev/null 2>&1 && break; sleep 1; done
lsmod | grep -w openvswitch || echo "openvswitch module NOT loaded"
rc=0
for tun in $TUNNELS; do
  echo "== $tun"
  ECLOUD_DP_DATAPATH=system ECLOUD_DP_TUNNEL=$tun ECLOUD_DP_PEER_TEP=$PEER_IP \
  ECLOUD_DP_LOCAL_POD=$LOCAL_POD ECLOUD_DP_PEER_POD=$PEER_POD ECLOUD_DP_LINGER=5s \
    "$P/guestdp.test" -test.v -test.run TestPodAcrossDatapaths -test.timeout 10m || rc=1
done
ovs-vsctl show; ovs-dpctl show
exit $rc
