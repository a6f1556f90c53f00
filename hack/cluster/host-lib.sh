# shellcheck shell=bash
# Setting up one namespace host of the local cluster, in steps: up.sh runs each step for every host
# (the daemons of all hosts start while the others come up); host.sh add runs them all for one. Sourced
# after lib.sh; every function takes the host key (HOSTS, NODE_NAME, ...) and reads $HERE.

# host_net KEY: its network namespace, its "NIC" on the datacenter bridge, address, route, sysctls
host_net() {
  local h=$1 ns=$PREFIX-$1
  ip netns add "$ns" && echo "$ns" >>"$STATE/netns"
  ip -n "$ns" link set lo up
  # The host's "NIC": a veth whose other end is a port of the datacenter bridge in eup-cp.
  ip link add name eth0 netns "$ns" type veth peer name "$h-eth0" netns "$CP_NS"
  ip -n "$CP_NS" link set "$h-eth0" master br0 up
  # The host's NIC ends up on the OVS userspace datapath (br-phy, below), which reads frames raw
  # and does not complete checksums a veth left to "hardware": a TCP segment from the control
  # plane would reach the host with a bad checksum and be dropped (ping still works).
  ip netns exec "$CP_NS" ethtool -K "$h-eth0" tx off >/dev/null
  ip -n "$ns" addr add "${NODE_IP[$h]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  # A host's default gateway is on the datacenter network: without a route, a host-network pod
  # (netd, node-agent) cannot even start a connection to a Service IP such as the apiserver's
  # 10.96.0.1 ("network is unreachable") before kube-proxy's DNAT rewrites it.
  ip -n "$ns" route add default via "$CP_IP"
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  # Conntrack must let a connection's two directions take different paths: a host reaches a pod
  # on another host through the tunnel, and the reply comes back through that host's gateway and
  # the datacenter network. kube-proxy (tcpBeLiberal below) then installs no DROP of INVALID packets.
  ip netns exec "$ns" sysctl -qw net.netfilter.nf_conntrack_tcp_be_liberal=1
}

host_configs() { # KEY: containerd, kubelet and kube-proxy configuration of a host
  local h=$1 d=$WORKDIR/hosts/$1
  containerd_config "$d/containerd" "$d/containerd-opt" "$CONTAINERD_OOM_RESTRICT" >"$d/containerd.toml"
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts: since 1.35 the kubelet refuses them unless this is false.
failCgroupV1: false
# No systemd on the hosts: containerd reports cgroupfs through the CRI RuntimeConfig call too.
cgroupDriver: cgroupfs
cgroupRoot: $CG/$h/pods
failSwapOn: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
# No cluster DNS in the local cluster; the components reach the apiserver by Service IP.
resolvConf: ""
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
# Without CAP_SYS_RESOURCE the kubelet cannot lower its own oom_score_adj.
oomScoreAdj: 0
makeIPTablesUtilChains: false
EOF
  cat >"$d/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
# Pod traffic to a Service is SNATed to the node: the reply from an endpoint elsewhere (another
# host's pod over the tunnel, or the apiserver on the datacenter network) then comes back through
# this host's conntrack, which undoes the DNAT. The ecloud overlay carries pod-to-pod replies past
# the host stack, so without it a ClusterIP connection never completes (docs/design/cni-datapath.md).
iptables: {masqueradeAll: true}
hostnameOverride: ${NODE_NAME[$h]}
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
# conntrack sysctls are kernel-wide or read-only in a network namespace: leave them alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, tcpBeLiberal: true}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
}

# hs NAME CMD...: start daemon NAME-$h inside host $h (its namespaces and its cgroup)
hs() { local n=$1; shift; start "$n-$h" "$CG/$h/sys" nsenter --target "$(host_pid "$h")" --mount --net -- "$@"; }

# host_anchor KEY: the host's anchor process (host-init.sh: its mount namespace); wait with host_wait_anchor
host_anchor() {
  local h=$1 d=$WORKDIR/hosts/$1
  mkdir -p "$d/ovs"
  rm -f "$d/ready"
  # The anchor: a new mount namespace inside the host's network namespace (host-init.sh).
  setsid env -i PATH="$CLEAN_PATH" "$HERE/in-cgroup.sh" "$CG/$h/sys" \
    nsenter --net="/run/netns/$PREFIX-$h" unshare --mount --propagation private \
    "$HERE/host-init.sh" "$d" "${HOST_BIND_DIRS[@]}" >"$LOGS/host-$h.log" 2>&1 </dev/null &
  echo $! >"$STATE/anchor-$h.pid"
}
host_wait_anchor() { wait_for 10 "host $1 namespaces (logs/host-$1.log)" test -e "$WORKDIR/hosts/$1/ready"; }

# host_daemons KEY: its configuration files, ovsdb-server and containerd
host_daemons() {
  local h=$1 d=$WORKDIR/hosts/$1
  host_configs "$h"
  # containerd's CRI runs the reference "loopback" plugin for every sandbox, whatever the pod
  # network: a node has it from its CNI plugins package; ecloud installs only its own plugin.
  cp "$BIN/cni/loopback" "$d/root/opt/cni/bin/"
  # Open vSwitch, userspace datapath; its sockets in the host's /run/openvswitch (what netd mounts).
  ovsdb-tool create "$d/ovs/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  hs ovsdb-server env OVS_DBDIR="$d/ovs" OVS_LOGDIR="$d/ovs" OVS_SYSCONFDIR="$d/ovs" ovsdb-server "$d/ovs/conf.db" \
    --remote=punix:/run/openvswitch/db.sock --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
    --pidfile=/run/openvswitch/ovsdb-server.pid --unixctl=/run/openvswitch/ovsdb-server.ctl -vconsole:info
  hs containerd env PATH="$CONTAINERD_BIN:$CLEAN_PATH" "$CONTAINERD_BIN/containerd" --config "$d/containerd.toml"
}

# host_node KEY: ovs-vswitchd with br-int and br-phy (the NIC and its address), the images,
# kubelet and kube-proxy
host_node() {
  local h=$1 d=$WORKDIR/hosts/$1 mac first img out
  wait_for 20 "ovsdb-server on $h" in_host "$h" test -S /run/openvswitch/db.sock
  in_host "$h" ovs-vsctl --no-wait init
  in_host "$h" ovs-vsctl --no-wait set Open_vSwitch . other_config:hw-offload=false
  hs ovs-vswitchd env OVS_DBDIR="$d/ovs" OVS_LOGDIR="$d/ovs" OVS_SYSCONFDIR="$d/ovs" ovs-vswitchd unix:/run/openvswitch/db.sock \
    --pidfile=/run/openvswitch/ovs-vswitchd.pid --unixctl=/run/openvswitch/ovs-vswitchd.ctl -vconsole:info
  # br-int, the integration bridge netd programs (it ensures it too; creating it here is harmless).
  in_host "$h" ovs-vsctl --timeout=20 --may-exist add-br br-int -- set bridge br-int datapath_type=netdev
  # The userspace datapath sends tunnel packets only out of an OVS bridge that owns the endpoint
  # IP: the NIC becomes a port of br-phy, which takes over its address and the default route (the
  # OVS userspace-tunneling layout, docs/design/cni-datapath.md). br-phy gets a MAC of its own (the NIC's
  # with the first octet 0a, or 0e): with the NIC's own, the kernel would also take every frame for the
  # host off eth0 itself (the weak host model answers for br-phy's address there), and each
  # packet would arrive twice.
  mac=$(in_host "$h" cat /sys/class/net/eth0/address)
  first=0a; [ "${mac%%:*}" != 0a ] || first=0e
  in_host "$h" ovs-vsctl --timeout=20 --may-exist add-br br-phy -- set bridge br-phy datapath_type=netdev \
    fail-mode=standalone other_config:hwaddr="$first:${mac#*:}" -- --may-exist add-port br-phy eth0
  ip -n "$PREFIX-$h" addr del "${NODE_IP[$h]}/24" dev eth0
  ip -n "$PREFIX-$h" addr add "${NODE_IP[$h]}/24" dev br-phy
  ip -n "$PREFIX-$h" link set br-phy up
  ip -n "$PREFIX-$h" route replace default via "$CP_IP"
  wait_for 20 "containerd on $h (logs/containerd-$h.log)" in_host "$h" test -S /run/containerd/containerd.sock
  for img in "$IMAGES"/*.tar; do
    # (ctr's own warnings, e.g. containerd 2.2's about cgroup v1, only when the import fails)
    out=$(in_host "$h" "$CONTAINERD_BIN/ctr" --address /run/containerd/containerd.sock -n k8s.io images import "$img" 2>&1) ||
      die "importing $img into $h's containerd: $out"
  done
  hs kubelet "$BIN/kubelet" --config="$d/kubelet.yaml" --kubeconfig="$PKI/node-${NODE_NAME[$h]}.kubeconfig" \
    --hostname-override="${NODE_NAME[$h]}" --node-ip="${NODE_IP[$h]}" \
    --node-labels="topology.kubernetes.io/zone=${NODE_ZONE[$h]},$HOST_NODE_LABELS" --v=1
  hs kube-proxy "$BIN/kube-proxy" --config="$d/kube-proxy.yaml"
}

host_wait_registered() { wait_for 120 "node ${NODE_NAME[$1]} registered (logs/kubelet-$1.log)" kubectl_admin get node "${NODE_NAME[$1]}"; }
