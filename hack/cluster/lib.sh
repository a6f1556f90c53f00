# shellcheck shell=bash
# Shared settings and helpers of hack/cluster/{up,down}.sh (make up / make down). Sourced.
#
# Layout (every name starts with $PREFIX, default "eup"; every private address lives inside a
# network namespace this creates, the root namespace gets none):
#
#   netns eup-cp   control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler;
#                  Linux bridge br0 10.250.0.1/24, the "datacenter network" both hosts hang on
#   netns eup-a    host dc-a-node-0 (zone dc-a) br-phy 10.250.0.11 \  each with its own mount namespace
#   netns eup-b    host dc-b-node-0 (zone dc-b) br-phy 10.250.0.12 /  (private /run, /var/lib/kubelet,
#                  /opt/cni/bin, /etc/cni/net.d, ...), containerd, kubelet, kube-proxy (iptables),
#                  and an Open vSwitch with the userspace datapath (br-int, datapath_type=netdev;
#                  br-phy owns the NIC eth0, a veth into br0, and the host address). This kernel
#                  has no openvswitch module, and with the userspace datapath the host's own
#                  address lives on br-phy, a tap of ovs-vswitchd: were OVS a pod, a restart of
#                  that pod would take the node's address (and its kubelet) off the network. So
#                  up.sh runs OVS as a host daemon and labels the hosts HOST_NODE_LABELS: netd
#                  runs the netdev datapath there, and the DaemonSet's ovs container starts none;
#                  and Prometheus (Debian's package) on 10.250.0.1:9090, scraping every ecloud
#                  component on every host (pods annotated prometheus.io/scrape), with the
#                  alerting rules of manifests/prometheus
#   root netns     only netns-forward: 127.0.0.1:$API_PORT -> the apiserver, for bin/kubectl, and
#                  127.0.0.1:$PROM_PORT -> Prometheus
#   cgroups        /eup/cp (control plane), /eup/<host>/sys (host daemons), /eup/<host>/pods (the
#                  kubelet's cgroupRoot): make down kills whatever is left in /eup, then removes it
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=${PREFIX:-eup}
WORKDIR=${WORKDIR:-$ROOT/_work}
BIN=${BIN:-$ROOT/bin}
IMAGES=${IMAGES:-$ROOT/_out/images}
API_PORT=${API_PORT:-26443}
# Prometheus' forwarder in the root namespace (a second cluster with its own API_PORT gets its own).
PROM_PORT=${PROM_PORT:-$((API_PORT + 1000))}
CP_NS=$PREFIX-cp
CG=/$PREFIX
UNDERLAY_PREFIX=10.250.0
CP_IP=$UNDERLAY_PREFIX.1
SERVICE_CIDR=10.96.0.0/16
# Where the pool CIDRs of the demo (hack/cluster/default-pool.yaml, manifests/examples) live.
OVERLAY_CIDR=10.16.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
# host key -> node name, zone, underlay IP
HOSTS=(a b)
# The spare host: a second namespace host in dc-a that make up does not start; host.sh add starts
# it on a running cluster (the fault matrix lets a node die there), host.sh remove removes it.
SPARE_HOST=c
declare -A NODE_NAME=([a]=dc-a-node-0 [b]=dc-b-node-0 [c]=dc-a-node-1)
declare -A NODE_ZONE=([a]=dc-a [b]=dc-b [c]=dc-a)
declare -A NODE_IP=([a]=$UNDERLAY_PREFIX.11 [b]=$UNDERLAY_PREFIX.12 [c]=$UNDERLAY_PREFIX.14)
# Labels of the namespace hosts (see above): userspace datapath, the host's own Open vSwitch.
HOST_NODE_LABELS=network.ecloud.io/datapath=netdev,network.ecloud.io/ovs=host
# Paths bound per host inside its mount namespace: the defaults Kubernetes, containerd and the
# ecloud DaemonSets (hostPath volumes) expect. The mountpoints must exist on the root filesystem;
# up.sh creates the missing ones and records them for down.sh.
# /lib/modules: the netd DaemonSet mounts it (ecloud-ovs loads the openvswitch module from it);
# a host gets an empty one of its own, and the root filesystem keeps what it has (or lacks).
HOST_BIND_DIRS=(/var/lib/kubelet /var/log/pods /var/log/containers /etc/cni/net.d /opt/cni/bin /var/lib/ecloud /lib/modules)
# Kernel-wide sysctls the kubelet sets at start (protectKernelDefaults=false); restored by down.sh.
KERNEL_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
STATE=$WORKDIR/state
LOGS=$WORKDIR/logs
PKI=$WORKDIR/pki
ADMIN_KUBECONFIG=$WORKDIR/kubeconfig
# The hosts of a running cluster: up.sh's and those host.sh added (down.sh stops them all).
if [ -s "$STATE/hosts" ]; then read -ra HOSTS <"$STATE/hosts"; fi
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
# elapsed START: seconds since START with one decimal
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN{printf "%.1f", a-b}'; }

# cgroup_dirs PATH: PATH (e.g. /eup/a/sys) in every mounted hierarchy (v1 hybrid or v2)
cgroup_dirs() {
  local h
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo "/sys/fs/cgroup$1"; return; fi
  for h in /sys/fs/cgroup/*/; do
    [ -e "$h/cgroup.procs" ] && echo "${h%/}$1"
  done
}

# cgroup_create PATH: mkdir PATH in every hierarchy; cpuset v1 children start empty, so each new
# level copies its parent's cpus and mems; on cgroup v2 each level delegates its controllers to
# the next (the kubelet needs cpu, memory, pids below its cgroupRoot). Verified on v1 (hybrid) only.
cgroup_create() {
  local d p part acc c
  for d in $(cgroup_dirs ""); do
    acc=$d
    IFS=/ read -ra parts <<<"${1#/}"
    for part in "${parts[@]}"; do
      p=$acc; acc=$acc/$part
      if [ -e "$p/cgroup.subtree_control" ] && [ -e "$p/cgroup.controllers" ]; then
        for c in $(cat "$p/cgroup.controllers"); do echo "+$c" >"$p/cgroup.subtree_control" 2>/dev/null || true; done
      fi
      mkdir -p "$acc"
      if [ -e "$acc/cpuset.cpus" ] && [ -z "$(cat "$acc/cpuset.cpus")" ]; then
        cat "$p/cpuset.cpus" >"$acc/cpuset.cpus"
        cat "$p/cpuset.mems" >"$acc/cpuset.mems"
      fi
    done
  done
}

# cgroup_pids PATH: every pid in PATH and below, in any hierarchy
cgroup_pids() {
  local d
  for d in $(cgroup_dirs "$1"); do
    [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

# host_pid KEY: the anchor process of host KEY (its mount + network namespaces)
host_pid() { cat "$STATE/$KEY_ANCHOR$1.pid" 2>/dev/null; }
KEY_ANCHOR=anchor-

# start NAME CGROUP CMD...: run CMD detached (setsid), with a clean environment (containerd hands
# its own to the CNI plugins: no CNI_* may leak), in cgroup CGROUP, logging to logs/NAME.log;
# the pid goes to state/NAME.pid, CGROUP and CMD to state/NAME.cmd (daemon.sh starts it again).
start() {
  local name=$1 cg=$2; shift 2
  printf '%s\0' "$cg" "$@" >"$STATE/$name.cmd"
  setsid env -i PATH="$CLEAN_PATH" HOME=/root "$ROOT/hack/cluster/in-cgroup.sh" "$cg" "$@" \
    >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

# in_host KEY CMD...: run CMD in host KEY's network and mount namespaces
in_host() {
  local k=$1; shift
  nsenter --target "$(host_pid "$k")" --mount --net -- "$@"
}

# wait_for SECONDS WHAT CMD...: poll CMD every 0.2 s until it succeeds
wait_for() {
  local limit=$1 what=$2 t0=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt "$limit" ] || die "timed out after ${limit}s waiting for $what"
    sleep 0.2
  done
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

# nodes_untainted: no node carries a node-lifecycle taint (node.kubernetes.io/not-ready,
# unreachable, ...) any more; the guest node's own ecloud.io/kernel taint stays
nodes_untainted() {
  local keys
  keys=$(kubectl_admin get nodes -o jsonpath='{.items[*].spec.taints[*].key}') || return 1
  [[ $keys != *node.kubernetes.io/* ]]
}

# containerd 2 (hack/build-k8s.sh builds it from its Go module into bin/containerd/: containerd,
# containerd-shim-runc-v2 next to it, where containerd looks for its shim, and ctr); runc is
# Debian's. The namespace hosts lack CAP_SYS_RESOURCE, so they restrict oom_score_adj.
CONTAINERD_BIN=$BIN/containerd
CONTAINERD_OOM_RESTRICT=true

# containerd_config ROOT OPT RESTRICT_OOM: a containerd 2 configuration (version 3) for a node of
# the local cluster; its sockets in the node's own /run.
containerd_config() {
  cat <<EOC
version = 3
root = "$1"
state = "/run/containerd/state"
[grpc]
  address = "/run/containerd/containerd.sock"
[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      # No registry: the pause image is built locally and imported under exactly this name.
      sandbox = "docker.io/ecloud/pause:dev"
  [plugins.'io.containerd.cri.v1.runtime']
    # true where the bounding set lacks CAP_SYS_RESOURCE: otherwise runc cannot give the pause
    # container oom_score_adj -998 and every sandbox fails ("can't get final child's PID from pipe").
    restrict_oom_score_adj = $3
    # Unprivileged ICMP in every pod (net.ipv4.ping_group_range): the test workload pings.
    enable_unprivileged_icmp = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/opt/cni/bin"]
      conf_dir = "/etc/cni/net.d"
  [plugins.'io.containerd.internal.v1.opt']
    path = "$2"
EOC
}

# The guest node: a QEMU guest on Debian's own kernel (cgroup v2, the openvswitch module), joined
# to the cluster as a third node, dc-b-node-1 (hack/cluster/guest.sh). Its NIC is a tap on the
# datacenter bridge br0 in the control-plane namespace. It runs the kernel datapath (netd's
# default, --datapath=system) with the Open vSwitch of the netd DaemonSet's ovs container: none of
# HOST_NODE_LABELS. On by default where QEMU can run; ECLOUD_GUEST_NODE=0 skips it. Under
# emulation it needs a good share of the host's cores, or its container operations outlast
# containerd's and the kubelet's deadlines (docs/design/local-cluster.md).
GUEST_NODE=${ECLOUD_GUEST_NODE:-1}
GUEST_NAME=dc-b-node-1
GUEST_ZONE=dc-b
GUEST_IP=$UNDERLAY_PREFIX.13
GUEST_LABEL=ecloud.io/kernel=guest
# Port of the guest's exec endpoint (guest.sh exec), reachable only from the control plane's address.
GUEST_EXEC_PORT=10022
GUEST_DIR=$WORKDIR/hosts/g
# Kernel and initramfs, kept across make down like bin/ and the images.
GUEST_KERNEL_DIR=${GUEST_KERNEL_DIR:-$ROOT/_out/guest}
GUEST_MEM=${GUEST_MEM:-2560}
# The images the guest imports: the sandbox, the DaemonSets' and the tests' workload (the
# Deployments do not tolerate the guest's taint).
GUEST_IMAGES="pause workload netd ovs node-agent"
GUEST_SMP=${GUEST_SMP:-2}
# The guest's cgroup weight against the control plane's and each namespace host's (1024 each).
GUEST_CPU_SHARES=${GUEST_CPU_SHARES:-3072}
