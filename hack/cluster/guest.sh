#!/usr/bin/env bash
# guest.sh: the guest node of the local cluster (make up): dc-b-node-1, a QEMU guest (TCG: software
# emulation, which runs anywhere; ECLOUD_GUEST_ACCEL=kvm on hosts with real VT-x/SVM) booting
# Debian's own kernel with the host's /usr and /etc shared read-only over 9p; cgroup v2, the
# openvswitch kernel module, its own containerd 2 + kubelet + kube-proxy (guest/node.sh). It is
# tainted ecloud.io/kernel=guest:NoSchedule (emulated, 5-10x slower than the namespace hosts): the
# DaemonSets run there, and what else should must tolerate the taint.
#
#   guest.sh check          exit 0 if QEMU can run here, else say why (make up then skips the guest)
#   guest.sh start          kernel + initramfs (guest/prepare.sh), the node's files, boot QEMU
#   guest.sh wait SECONDS   until the guest's daemons are up (guest/node.sh says "ready")
#   guest.sh exec CMD       run the shell command CMD in the guest; its output, its exit status
# State: WORKDIR/hosts/g (node.env, configs, logs/, progress, console.log); QEMU's pid in
# state/qemu-g.pid (make down stops it; the tap goes with the control-plane namespace).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
HERE=$ROOT/hack/cluster
G=$GUEST_DIR

check() {
  command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 not installed"; return 1; }
  [ -c /dev/net/tun ] || { echo "no /dev/net/tun for the guest's NIC"; return 1; }
  [ -x /bin/busybox ] || { echo "no static /bin/busybox (busybox-static) for the initramfs"; return 1; }
  local mem_kib; mem_kib=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
  [ "$mem_kib" -gt $(((GUEST_MEM + 1024) * 1024)) ] || { echo "less than $((GUEST_MEM + 1024)) MiB of memory available"; return 1; }
}

kubeconfig_for_guest() { sed "s|$PKI/|/mnt/node/pki/|g" "$1"; }

write_node_files() {
  mkdir -p "$G/pki" "$G/logs"
  rm -f "$G/progress" "$G/console.log"
  cp "$PKI/ca.crt" "$G/pki/"
  kubeconfig_for_guest "$PKI/node-$GUEST_NAME.kubeconfig" >"$G/pki/node.kubeconfig"
  kubeconfig_for_guest "$PKI/kube-proxy.kubeconfig" >"$G/pki/kube-proxy.kubeconfig"
  cat >"$G/node.env" <<ENV
NODE_NAME=$GUEST_NAME
NODE_IP=$GUEST_IP
GATEWAY=$CP_IP
NODE_LABELS=topology.kubernetes.io/zone=$GUEST_ZONE,$GUEST_LABEL
EXEC_PORT=$GUEST_EXEC_PORT
IMAGES="$GUEST_IMAGES"
ENV
  # A real kernel, full capabilities: oom_score_adj is not restricted.
  containerd_config /var/lib/containerd /var/lib/containerd-opt false >"$G/containerd.toml"
  cat >"$G/kubelet.yaml" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v2, no systemd in the guest: cgroupfs (containerd reports the same through RuntimeConfig).
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /mnt/node/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: ""
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
makeIPTablesUtilChains: false
# Emulated (TCG): only what tolerates this runs here (the DaemonSets, the tests' guest pods).
registerWithTaints: [{key: ecloud.io/kernel, value: guest, effect: NoSchedule}]
EOF2
  cat >"$G/kube-proxy.yaml" <<EOF2
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
iptables: {masqueradeAll: true}
hostnameOverride: $GUEST_NAME
clientConnection: {kubeconfig: /mnt/node/pki/kube-proxy.kubeconfig}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, tcpBeLiberal: true}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF2
}

start_guest() {
  "$HERE/guest/prepare.sh" "$GUEST_KERNEL_DIR" || die "preparing the guest kernel (guest/prepare.sh)"
  local kver; kver=$(cat "$GUEST_KERNEL_DIR/kver")
  write_node_files
  ip -n "$CP_NS" tuntap add dev g-eth0 mode tap
  ip -n "$CP_NS" link set g-eth0 master br0 up
  cgroup_create "$CG/g"
  # QEMU emulates a whole machine with its two threads: it weighs as much as the rest of the
  # cluster together (control plane and namespace hosts: one share each), so their daemons do not
  # starve the guest's (its container operations then outlast containerd's fixed 10 s per exit).
  local d; for d in $(cgroup_dirs "$CG/g"); do
    if [ -e "$d/cpu.shares" ]; then echo "$GUEST_CPU_SHARES" >"$d/cpu.shares"; fi
    if [ -e "$d/cpu.weight" ]; then echo $((GUEST_CPU_SHARES * 100 / 1024)) >"$d/cpu.weight"; fi
  done
  local p9="security_model=none,multidevs=remap" accel
  case "${ECLOUD_GUEST_ACCEL:-tcg}" in
    kvm) accel=(-machine q35,accel=kvm -cpu host) ;;
    *) accel=(-machine q35 -accel tcg,thread=multi,tb-size=256 -cpu max) ;;
  esac
  share() { echo "-fsdev local,id=fs_$1,path=$2,$3$p9 -device virtio-9p-pci,fsdev=fs_$1,mount_tag=$1"; }
  # shellcheck disable=SC2046 # share prints words
  start qemu-g "$CG/g" ip netns exec "$CP_NS" qemu-system-x86_64 -name "$GUEST_NAME" "${accel[@]}" \
    -smp "$GUEST_SMP" -m "$GUEST_MEM" -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$GUEST_KERNEL_DIR/kernel/boot/vmlinuz-$kver" -initrd "$GUEST_KERNEL_DIR/initrd.img" \
    -append "console=ttyS0 quiet loglevel=3 cgroup_no_v1=all panic=-1" \
    -chardev file,id=con0,path="$G/console.log" -serial chardev:con0 \
    -chardev socket,id=sh0,path="$G/shell.sock",server=on,wait=off -serial chardev:sh0 \
    $(share hostusr /usr readonly=on,) $(share hostetc /etc readonly=on,) \
    $(share modules "$GUEST_KERNEL_DIR/kernel/lib/modules" readonly=on,) \
    $(share guest "$HERE/guest" readonly=on,) $(share node "$G" "") \
    $(share bin "$BIN" readonly=on,) $(share images "$IMAGES" readonly=on,) \
    -netdev tap,id=n0,ifname=g-eth0,script=no,downscript=no,vnet_hdr=off \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:fa:00:13
  echo "$GUEST_NAME" >"$STATE/guest"
}

# console_said: what the guest's kernel printed on its console besides the boot line (errors
# only: it boots with loglevel=3), its last lines, for a failure's message.
console_said() {
  local said
  said=$(grep -v ECLOUD-GUEST-BOOTED "$G/console.log" 2>/dev/null | tail -n 5)
  [ -z "$said" ] || printf '; the guest kernel said:\n%s' "$said"
}

wait_ready() {
  local limit=$1 t0=$SECONDS
  until grep -q ' ready$' "$G/progress" 2>/dev/null; do
    grep -q FAILED "$G/progress" 2>/dev/null && die "guest node: $(grep FAILED "$G/progress") (logs in $G/logs)$(console_said)"
    kill -0 "$(cat "$STATE/qemu-g.pid" 2>/dev/null)" 2>/dev/null || die "guest node: QEMU exited ($LOGS/qemu-g.log: $(tail -3 "$LOGS/qemu-g.log"))$(console_said)"
    [ $((SECONDS - t0)) -lt "$limit" ] || die "guest node: not ready after ${limit}s (console $G/console.log, progress $G/progress)$(console_said)"
    sleep 1
  done
  grep WARNING "$G/progress" | while read -r _ w; do log "guest node: $w"; done || true
}

guest_exec() {
  local out rc
  out=$(printf '%s\n' "$*" | ip netns exec "$CP_NS" socat -t 600 - "TCP:$GUEST_IP:$GUEST_EXEC_PORT,connect-timeout=10") ||
    die "guest node: no answer from its exec endpoint $GUEST_IP:$GUEST_EXEC_PORT"
  rc=$(tail -1 <<<"$out" | sed -n 's/^exit-status=//p')
  sed '$d' <<<"$out"
  return "${rc:-1}"
}

case "${1:-}" in
  check) check ;;
  start) start_guest ;;
  wait) wait_ready "${2:-900}" ;;
  exec) shift; guest_exec "$@" ;;
  *) echo "usage: guest.sh check|start|wait SECONDS|exec CMD" >&2; exit 2 ;;
esac
