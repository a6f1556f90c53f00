#!/bin/bash
# Inside each guest of make bench-datapath (Debian's kernel): the shipped OVS supervisor
# (ecloud-ovs) on the kernel datapath, then the benchdp agent through which the driver builds the
# paths and runs the clients and servers.
set -u
. /mnt/node/node.env
P=/mnt/payload
uname -r
mkdir -p /var/lib/ecloud/ovs /run/openvswitch
"$P/ecloud-ovs" --check-node-label=false --metrics-bind-address=0 --modprobe=/usr/sbin/modprobe --v=2 > /mnt/node/ecloud-ovs.log 2>&1 &
for _ in $(seq 120); do ovs-vsctl --timeout=2 show >/dev/null 2>&1 && break; sleep 1; done
lsmod | grep -w openvswitch || echo "openvswitch module NOT loaded"
ethtool -k eth0 | grep -E '^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|tx-udp_tnl-segmentation):'
exec "$P/benchdp" agent -listen "$NODE_IP:7000"
