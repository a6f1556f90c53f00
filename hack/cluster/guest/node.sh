#!/bin/bash
# node.sh: the guest node's daemons, started by stage2-init: containerd 2 (bin/containerd, storage
# on the guest's tmpfs root, never on 9p), the images from the 9p share, kubelet and kube-proxy
# (bin/), and the exec endpoint hack/cluster/guest.sh uses.
# Each daemon logs to /mnt/node/logs/NAME.log (WORKDIR/hosts/g/logs on the host); the steps and
# their guest uptimes go to /mnt/node/progress. Open vSwitch is not started here: the netd
# DaemonSet's ovs container runs it (kernel datapath; stage2-init loaded the openvswitch module).
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

# ---- containerd 2
# /etc is the machine's (9p, with an overlay): whatever CNI configuration it holds is not this node's.
rm -rf /etc/cni/net.d
mkdir -p /opt/cni/bin /etc/cni/net.d /var/lib/containerd /run/containerd
cp /mnt/bin/cni/loopback /opt/cni/bin/
daemon containerd env PATH="/mnt/bin/containerd:$PATH" /mnt/bin/containerd/containerd --config /mnt/node/containerd.toml
waitfor 120 "containerd" test -S /run/containerd/containerd.sock
step "containerd up"
# shellcheck disable=SC2086 # IMAGES is a list of names
out=$(CTR="/mnt/bin/containerd/ctr --address /run/containerd/containerd.sock" IMAGE_DIR=/mnt/images LOG_DIR=$L \
  /mnt/guest/import-images.sh $IMAGES)
rc=$?
[ -z "$out" ] || while IFS= read -r line; do step "$line"; done <<<"$out"
[ "$rc" = 0 ] || exit 1
step "images imported"

# ---- kubelet, kube-proxy
daemon kubelet /mnt/bin/kubelet --config=/mnt/node/kubelet.yaml --kubeconfig=/mnt/node/pki/node.kubeconfig \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --node-labels="$NODE_LABELS" --v=1
daemon kube-proxy /mnt/bin/kube-proxy --config=/mnt/node/kube-proxy.yaml
step "kubelet and kube-proxy started"

step "ready"
wait
