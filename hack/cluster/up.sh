#!/usr/bin/env bash
# up.sh (make up): a real two-datacenter Kubernetes cluster on this machine, as root, from nothing:
# installs the Debian packages, builds the Kubernetes binaries and images from this module, starts
# etcd, kube-apiserver, kube-controller-manager and kube-scheduler in a control-plane network
# namespace and two simulated hosts (network + mount namespaces, each with containerd, kubelet,
# kube-proxy in iptables mode and an Open vSwitch userspace datapath), labelled
# topology.kubernetes.io/zone=dc-a and dc-b; installs ecloud from manifests/ (the same files a user
# applies, with the images built here), runs manifests/examples and prints a summary with the
# KUBECONFIG line. Layout: lib.sh. Besides the two namespace hosts, a third node dc-b-node-1 is a
# QEMU guest on Debian's own kernel (cgroup v2, the openvswitch module; hack/cluster/guest.sh),
# booted while the rest starts when ECLOUD_GUEST_NODE=1; skipped with a message where QEMU cannot run.
#
# Running it again while the cluster is up only prints the summary. Undo with down.sh (make down).
# Environment: WORKDIR (default _work), API_PORT (default 26443, on 127.0.0.1), PROM_PORT (Prometheus
# on 127.0.0.1, default API_PORT+1000), PREFIX (eup).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
HERE=$ROOT/hack/cluster
T0=$(now)
[ "$(id -u)" = 0 ] || die "make up needs root (network and mount namespaces, cgroups, containerd)"
mkdir -p "$WORKDIR" "$STATE" "$LOGS"
TIMINGS=$LOGS/timings.txt
mark() { printf '%-44s %6ss\n' "$1" "$(elapsed "$2")" | tee -a "$TIMINGS"; }

if [ -f "$STATE/up" ] && kubectl_admin get --raw /readyz >/dev/null 2>&1; then
  log "cluster already up (make down to remove it)"
  exec "$HERE/summary.sh"
fi
[ ! -e "$STATE/up" ] && [ ! -e "$STATE/anchor-a.pid" ] || die "a previous cluster was not removed completely: run make down first"
[ -z "$(ss -ltnH "( sport = :$API_PORT )" 2>/dev/null)" ] || die "port $API_PORT on 127.0.0.1 is taken: set API_PORT"
[ -z "$(ss -ltnH "( sport = :$PROM_PORT )" 2>/dev/null)" ] || die "port $PROM_PORT on 127.0.0.1 is taken: set PROM_PORT"
for ns in "$CP_NS" "${HOSTS[@]/#/$PREFIX-}"; do
  [ ! -e "/run/netns/$ns" ] || die "network namespace $ns exists (another make up? set PREFIX, or make down)"
done
: >"$TIMINGS"
trap 'rc=$?; [ $rc = 0 ] || echo "make up failed; component logs are in $LOGS; make down removes what was started" >&2' EXIT

# ------------------------------------------------------------------ packages, binaries, images
s=$(now)
"$ROOT/hack/install-deps.sh" up
mark "packages (hack/install-deps.sh up)" "$s"
s=$(now)
# pipefail: the pipeline fails when the build does (the filter itself never fails)
"$ROOT/hack/build-k8s.sh" 2>&1 | tee -a "$LOGS/build.log" | { grep -v '^go: downloading' || true; } ||
  die "building the Kubernetes binaries failed (see $LOGS/build.log)"
mark "Kubernetes binaries (hack/build-k8s.sh)" "$s"
s=$(now)
make -C "$ROOT" --no-print-directory build >>"$LOGS/build.log" 2>&1 || die "make build failed (see $LOGS/build.log)"
CGO_ENABLED=0 go -C "$ROOT" build -trimpath -o "$BIN/netns-forward" ./hack/netns-forward
OUT=$IMAGES "$ROOT/hack/build-images.sh" 2>&1 | tee -a "$LOGS/build.log" || die "building the images failed (see $LOGS/build.log)"
mark "ecloud binaries + images" "$s"
for c in ecloud-scheduler controller ip-controller netd ovs node-agent; do
  [ -f "$IMAGES/$c.tar" ] || die "image $IMAGES/$c.tar missing after hack/build-images.sh (see $LOGS/build.log)"
done

# ------------------------------------------------------------------ host state we change
s=$(now)
# mountpoints: every directory created is recorded, parents first, for down.sh
for p in "${HOST_BIND_DIRS[@]}"; do
  missing=(); q=$p
  while [ ! -e "$q" ]; do missing=("$q" "${missing[@]}"); q=$(dirname "$q"); done
  for q in "${missing[@]}"; do mkdir "$q"; echo "$q" >>"$STATE/created-dirs"; done
done
[ -e /run/netns ] || touch "$STATE/created-run-netns"
for k in "${KERNEL_SYSCTLS[@]}"; do echo "$k $(cat "/proc/sys/$k")"; done >"$STATE/sysctls"
cgroup_create "$CG/cp"
for h in "${HOSTS[@]}"; do cgroup_create "$CG/$h/sys"; cgroup_create "$CG/$h/pods"; done
echo "$CG" >"$STATE/cgroup"

# ------------------------------------------------------------------ PKI, networks
nodes=(); for h in "${HOSTS[@]}"; do nodes+=("${NODE_NAME[$h]}"); done
# The guest node: can QEMU run here?
if [ "$GUEST_NODE" = 1 ]; then
  if why=$("$HERE/guest.sh" check); then
    nodes+=("$GUEST_NAME")
  else
    log "skipping the guest node $GUEST_NAME: $why (the namespace hosts run on; ECLOUD_GUEST_NODE=0 skips it quietly)"
    GUEST_NODE=0
  fi
else
  log "no guest node: the two namespace hosts only (ECLOUD_GUEST_NODE=1 adds dc-b-node-1, a QEMU guest on Debian's kernel)"
fi
export CP_IP KUBERNETES_SVC_IP  # read by pki.sh
"$HERE/pki.sh" "$PKI" "https://$CP_IP:6443" "${nodes[@]}"
sed "s|https://$CP_IP:6443|https://127.0.0.1:$API_PORT|" "$PKI/admin.kubeconfig" >"$ADMIN_KUBECONFIG"
chmod 600 "$ADMIN_KUBECONFIG"

ip netns add "$CP_NS" && echo "$CP_NS" >>"$STATE/netns"
ip -n "$CP_NS" link set lo up
ip -n "$CP_NS" link add br0 type bridge
ip -n "$CP_NS" addr add "$CP_IP/24" dev br0
ip -n "$CP_NS" link set br0 up
for h in "${HOSTS[@]}"; do
  ns=$PREFIX-$h
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
done
# The datacenter router: the overlay is reachable through any host (it forwards into br-int), so
# the control plane reaches pods (pod proxy, logs of kubectl port-forward through the apiserver).
nexthops=(); for h in "${HOSTS[@]}"; do nexthops+=(nexthop via "${NODE_IP[$h]}"); done
ip -n "$CP_NS" route add "$OVERLAY_CIDR" "${nexthops[@]}"
mark "PKI, namespaces, links, cgroups" "$s"

# ------------------------------------------------------------------ the guest node (boots meanwhile)
if [ "$GUEST_NODE" = 1 ]; then
  s=$(now)
  log "starting the guest node $GUEST_NAME: QEMU (${ECLOUD_GUEST_ACCEL:-tcg}) on Debian's kernel, ${GUEST_MEM} MiB, $GUEST_IP on br0"
  "$HERE/guest.sh" start
  GUEST_T0=$s
  mark "guest node: kernel, initramfs, QEMU started" "$s"
fi

# ------------------------------------------------------------------ control plane (netns eup-cp)
s=$(now)
cp_start() { local n=$1; shift; start "$n" "$CG/cp" ip netns exec "$CP_NS" "$@"; }
mkdir -p "$WORKDIR/cp"
cp_start etcd "$BIN/etcd" --name ecloud --data-dir "$WORKDIR/cp/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster ecloud=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --unsafe-no-fsync --log-level warn
cp_start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$CP_IP" \
  --cert-dir="$WORKDIR/cp/apiserver-certs" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --profiling=false
start netns-forward "$CG/cp" "$BIN/netns-forward" -listen "127.0.0.1:$API_PORT" -netns "/run/netns/$CP_NS" -target "$CP_IP:6443"
wait_for 120 "kube-apiserver /readyz (logs/kube-apiserver.log)" kubectl_admin get --raw /readyz
mark "etcd + kube-apiserver ready" "$s"
# --use-service-account-credentials: the controllers need their own RBAC identities (kubeadm does
# the same); without it the not-ready taint is never removed. No nodeipam: pods get IPs from CNI.
cp_start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$PKI/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" --use-service-account-credentials=true --controllers='*,-nodeipam'
# The default scheduler: DaemonSets and pods without schedulerName use it; ecloud-scheduler runs
# next to it as a second scheduler (manifests/), or replaces it (manifests/overlays/replace-default-scheduler).
cp_start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$PKI/scheduler.kubeconfig" \
  --authentication-kubeconfig="$PKI/scheduler.kubeconfig" --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false

# ------------------------------------------------------------------ Prometheus (netns eup-cp)
# Debian's prometheus, next to the apiserver: it reaches every host (the datacenter network: netd
# and node-agent use the host network) and every pod (the overlay route above). Debian builds it
# without Kubernetes discovery: prom-targets.sh lists the kube-system pods annotated
# prometheus.io/scrape into file_sd files, job = their app.kubernetes.io/name, as
# manifests/prometheus/ecloud-alerts.yaml expects. The https targets (the scheduler's secure port:
# self-signed, delegated authorization) get the cluster admin's token: a throwaway cluster's.
awk -F, '$2 == "admin" {print $1}' "$PKI/tokens.csv" >"$PKI/prometheus.token"
chmod 600 "$PKI/prometheus.token"
mkdir -p "$WORKDIR/cp/prometheus" "$WORKDIR/cp/prometheus-targets"
cat >"$WORKDIR/cp/prometheus.yml" <<EOF
# Written by hack/cluster/up.sh.
global: {scrape_interval: 5s, evaluation_interval: 15s}
rule_files: [$ROOT/manifests/prometheus/ecloud-alerts.yaml]
scrape_configs:
- job_name: ecloud-http
  file_sd_configs: [{files: [$WORKDIR/cp/prometheus-targets/http.json], refresh_interval: 10s}]
- job_name: ecloud-https
  scheme: https
  authorization: {credentials_file: $PKI/prometheus.token}
  tls_config: {insecure_skip_verify: true}
  file_sd_configs: [{files: [$WORKDIR/cp/prometheus-targets/https.json], refresh_interval: 10s}]
EOF
start prometheus-targets "$CG/cp" "$HERE/prom-targets.sh" "$WORKDIR/cp/prometheus-targets" "$BIN/kubectl" "$ADMIN_KUBECONFIG"
cp_start prometheus prometheus --config.file="$WORKDIR/cp/prometheus.yml" --storage.tsdb.path="$WORKDIR/cp/prometheus" \
  --web.listen-address="$CP_IP:9090" --log.level=warn
start netns-forward-prometheus "$CG/cp" "$BIN/netns-forward" -listen "127.0.0.1:$PROM_PORT" -netns "/run/netns/$CP_NS" -target "$CP_IP:9090"

# ------------------------------------------------------------------ hosts
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
s=$(now)
for h in "${HOSTS[@]}"; do
  d=$WORKDIR/hosts/$h
  mkdir -p "$d/ovs"
  rm -f "$d/ready"
  # The anchor: a new mount namespace inside the host's network namespace (host-init.sh).
  setsid env -i PATH="$CLEAN_PATH" "$HERE/in-cgroup.sh" "$CG/$h/sys" \
    nsenter --net="/run/netns/$PREFIX-$h" unshare --mount --propagation private \
    "$HERE/host-init.sh" "$d" "${HOST_BIND_DIRS[@]}" >"$LOGS/host-$h.log" 2>&1 </dev/null &
  echo $! >"$STATE/anchor-$h.pid"
done
for h in "${HOSTS[@]}"; do wait_for 10 "host $h namespaces (logs/host-$h.log)" test -e "$WORKDIR/hosts/$h/ready"; done
for h in "${HOSTS[@]}"; do
  d=$WORKDIR/hosts/$h
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
done
for h in "${HOSTS[@]}"; do
  d=$WORKDIR/hosts/$h
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
done
mark "hosts: OVS, containerd + images, kubelet, kube-proxy" "$s"
s=$(now)
for h in "${HOSTS[@]}"; do
  wait_for 120 "node ${NODE_NAME[$h]} registered (logs/kubelet-$h.log)" kubectl_admin get node "${NODE_NAME[$h]}"
done
mark "nodes registered" "$s"
if [ "$GUEST_NODE" = 1 ]; then
  # TCG is 5-10x slower than the namespace hosts: boot, OVS, containerd and the images take minutes.
  "$HERE/guest.sh" wait 900
  wait_for 300 "node $GUEST_NAME registered ($GUEST_DIR/logs/kubelet.log)" kubectl_admin get node "$GUEST_NAME"
  mark "guest node $GUEST_NAME registered (since its start)" "$GUEST_T0"
fi
touch "$STATE/up"

# ------------------------------------------------------------------ ecloud, workloads
s=$(now)
wait_for 60 "the default ServiceAccount" kubectl_admin get serviceaccount default
kubectl_admin apply --server-side -k "$ROOT/manifests/crds" >/dev/null
kubectl_admin wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl_admin apply --server-side -f "$HERE/default-pool.yaml" >/dev/null
# The same files a user applies; the images are already in every host's containerd.
kubectl_admin apply --server-side -k "$ROOT/manifests" >/dev/null
kubectl_admin wait --for=condition=Ready node --all --timeout=600s >/dev/null ||
  die "nodes not Ready after installing ecloud: is netd running? (kubectl -n kube-system get pods)"
"$HERE/wait-workloads.sh" 600 || die "ecloud components not ready"
# Ready is not enough: until the node lifecycle controller lifts the not-ready taint, ecloud-scheduler
# counts that datacenter as out and (outagePolicy Degrade) would place the examples all in the other.
wait_for 60 "the nodes' not-ready taints lifted" nodes_untainted
kubectl_admin apply --server-side -k "$ROOT/manifests/examples" >/dev/null
"$HERE/wait-workloads.sh" 180 || die "workloads not ready"
mark "workloads Running" "$s"
wait_for 60 "Prometheus ready (logs/prometheus.log)" curl -sf "http://127.0.0.1:$PROM_PORT/-/ready"
mark "TOTAL make up" "$T0"
"$HERE/summary.sh"
