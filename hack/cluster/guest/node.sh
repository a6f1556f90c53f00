#!/bin/bash
# node.sh: the guest node's daemons, started by stage2-init: Open vSwitch (from the shared /usr),
# containerd 2 (bin/containerd, storage on the guest's tmpfs root, never on 9p), the images from
# the 9p share, kubelet and kube-proxy (bin/), and the exec endpoint hack/cluster/guest.sh uses.
# Each daemon logs to /mnt/node/logs/NAME.log (WORKDIR/hosts/g/logs on the host); the steps and
# their guest uptimes go to /mnt/node/progress.
set -u
. /mnt/node/node.env
L=/mnt/node/logs
up() { cut -d' ' -f1 /proc/uptime; }
step() { echo "$(up) $*" >>/mnt/node/progress; echo "$(up) $*"; }
fail() { step "FAILED: $*"; exit 1; }
# The node's own daemons in a cgroup of their own; the kubelet puts the pods under /kubepods.
mkdir -p /sys/fs/cgroup/system.slice && echo $$ >/sys/fs/cgroup/system.slice/cgroup.procs
# daemon NAME CMD...: start CMD in the background, logging to $L/NAME.log
daemon() { local n=$1; shift; "$@" >"$L/$n.log" 2>&1 </dev/null & }
waitfor() { # SECONDS WHAT CMD...
  local t=$1 w=$2 i; shift 2
  for ((i = 0; i < t * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  fail "timed out after ${t}s waiting for $w"
}
step "node.sh start on $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup)"

# ---- exec endpoint: one shell command per connection, only from the control plane's address
# (hack/cluster/guest.sh exec); the datacenter network is private to the cluster's namespaces.
daemon exec socat -t 600 TCP-LISTEN:"$EXEC_PORT",bind="$NODE_IP",range="$GATEWAY/32",reuseaddr,fork \
  EXEC:/mnt/guest/exec-one.sh

# ---- Open vSwitch: ovsdb-server + ovs-vswitchd; the kernel module is loaded (stage2-init)
mkdir -p /run/openvswitch /var/lib/openvswitch /var/log/openvswitch
ovsdb-tool create /var/lib/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server /var/lib/openvswitch/conf.db --remote=punix:/run/openvswitch/db.sock \
  --remote=db:Open_vSwitch,Open_vSwitch,manager_options --pidfile=/run/openvswitch/ovsdb-server.pid \
  --unixctl=/run/openvswitch/ovsdb-server.ctl --detach --log-file=$L/ovsdb-server.log
ovs-vsctl --no-wait init
vswitchd() {
  ovs-vswitchd unix:/run/openvswitch/db.sock --pidfile=/run/openvswitch/ovs-vswitchd.pid \
    --unixctl=/run/openvswitch/ovs-vswitchd.ctl --detach --log-file=$L/ovs-vswitchd.log
}
vswitchd
# OVS 3.1 sometimes starts with no upcall handler threads ("Overriding n-handler-threads to 0"):
# the kernel datapath then drops every packet that misses its flow cache. Restart until it has them.
for try in 1 2 3; do
  sleep 2
  grep -q 'Overriding n-handler-threads to 0' $L/ovs-vswitchd.log || break
  step "ovs-vswitchd started without upcall handlers; restarting it (try $try)"
  ovs-appctl -t /run/openvswitch/ovs-vswitchd.ctl exit; sleep 1
  : >$L/ovs-vswitchd.log; vswitchd
done
if [ "$DATAPATH" = netdev ]; then
  # The userspace datapath sends tunnel packets only out of a bridge that owns the endpoint IP:
  # the NIC becomes a port of br-phy, which takes over its address (as on the namespace hosts).
  mac=$(cat /sys/class/net/eth0/address)
  ovs-vsctl --timeout=60 --may-exist add-br br-phy -- set bridge br-phy datapath_type=netdev \
    fail-mode=standalone other_config:hwaddr="0a:${mac#*:}" -- --may-exist add-port br-phy eth0 || fail "creating br-phy with eth0"
  ip addr del "$NODE_IP/24" dev eth0
  ip addr add "$NODE_IP/24" dev br-phy
  ip link set br-phy up
  ip route replace default via "$GATEWAY"
fi
step "openvswitch up ($DATAPATH datapath)"

# ---- containerd 2
# /etc is the machine's (9p, with an overlay): whatever CNI configuration it holds is not this node's.
rm -rf /etc/cni/net.d
mkdir -p /opt/cni/bin /etc/cni/net.d /var/lib/containerd /run/containerd
cp /mnt/bin/cni/loopback /opt/cni/bin/
daemon containerd env PATH="/mnt/bin/containerd:$PATH" /mnt/bin/containerd/containerd --config /mnt/node/containerd.toml
waitfor 120 "containerd" test -S /run/containerd/containerd.sock
step "containerd up"
for img in $IMAGES; do
  /mnt/bin/containerd/ctr --address /run/containerd/containerd.sock -n k8s.io images import "/mnt/images/$img.tar" \
    >>$L/images.log 2>&1 || fail "importing /mnt/images/$img.tar"
done
step "images imported"

# ---- kubelet, kube-proxy
daemon kubelet /mnt/bin/kubelet --config=/mnt/node/kubelet.yaml --kubeconfig=/mnt/node/pki/node.kubeconfig \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --node-labels="$NODE_LABELS" --v=1
daemon kube-proxy /mnt/bin/kube-proxy --config=/mnt/node/kube-proxy.yaml
step "kubelet and kube-proxy started"

step "ready"
wait
