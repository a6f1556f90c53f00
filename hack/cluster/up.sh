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
# booted while the rest starts unless ECLOUD_GUEST_NODE=0; skipped with a message where QEMU cannot run.
#
# Running it again while the cluster is up only prints the summary. Undo with down.sh (make down).
# Environment: WORKDIR (default _work), API_PORT (default 26443, on 127.0.0.1), PROM_PORT (Prometheus
# on 127.0.0.1, default API_PORT+1000), PREFIX (eup).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=host-lib.sh
. "$(dirname "$0")/host-lib.sh"
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
CGO_ENABLED=0 go -C "$ROOT" build -o "$BIN/netns-forward" ./hack/netns-forward
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
echo "${HOSTS[*]}" >"$STATE/hosts"

# ------------------------------------------------------------------ PKI, networks
# The spare host's node identity too: host.sh add starts it on a running cluster, whose apiserver
# reads its static tokens only at start.
nodes=(); for h in "${HOSTS[@]}" "$SPARE_HOST"; do nodes+=("${NODE_NAME[$h]}"); done
# The guest node: can QEMU run here?
if [ "$GUEST_NODE" = 1 ]; then
  if why=$("$HERE/guest.sh" check); then
    nodes+=("$GUEST_NAME")
  else
    log "skipping the guest node $GUEST_NAME: $why (the namespace hosts run on; ECLOUD_GUEST_NODE=0 skips it quietly)"
    GUEST_NODE=0
  fi
else
  log "no guest node (ECLOUD_GUEST_NODE=0): the two namespace hosts only"
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
for h in "${HOSTS[@]}"; do host_net "$h"; done
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

# ------------------------------------------------------------------ hosts (host-lib.sh)
s=$(now)
for h in "${HOSTS[@]}"; do host_anchor "$h"; done
for h in "${HOSTS[@]}"; do host_wait_anchor "$h"; done
for h in "${HOSTS[@]}"; do host_daemons "$h"; done
for h in "${HOSTS[@]}"; do host_node "$h"; done
mark "hosts: OVS, containerd + images, kubelet, kube-proxy" "$s"
s=$(now)
for h in "${HOSTS[@]}"; do host_wait_registered "$h"; done
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
