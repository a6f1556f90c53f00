#!/usr/bin/env bash
# down.sh (make down): removes everything up.sh made, and only that; safe to run any number of
# times. Processes: stopped by their recorded pids, then whatever is still in the /eup cgroups
# (containers, shims) is killed; the hosts' mount namespaces, and every mount in them, end with
# their last process. Then the network namespaces (with their links, bridges, OVS taps and iptables
# rules), the cgroups, the mountpoints created on the root filesystem, /run/netns if up.sh created
# it, the kernel sysctls the kubelet changed, and the runtime state under WORKDIR. Binaries (bin/),
# images (_out/) and logs (WORKDIR/logs) are kept.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "make down needs root"
T0=$(now)
[ -d "$STATE" ] || { log "nothing to remove (no $STATE)"; exit 0; }

CGROOT=$(cat "$STATE/cgroup" 2>/dev/null || echo "$CG")
# ours PID: the process lives in our cgroups, so a recorded pid reused by someone else after a
# reboot is never signalled
ours() { grep -q ":$CGROOT/" "/proc/$1/cgroup" 2>/dev/null; }
alive() { local p; p=$(cat "$STATE/$1.pid" 2>/dev/null) && ours "$p"; }
# stop NAME...: SIGTERM the recorded pids, wait up to 3 s, then SIGKILL. Nothing they keep is
# reused (etcd data, containers and sandboxes are all removed), so a graceful stop buys nothing.
stop() {
  local n p pids=()
  for n in "$@"; do
    p=$(cat "$STATE/$n.pid" 2>/dev/null) || continue
    ours "$p" && kill "$p" && pids+=("$p")
  done
  for _ in $(seq 15); do
    local left=0
    for p in "${pids[@]}"; do ours "$p" && left=1; done
    [ $left = 0 ] && break
    sleep 0.2
  done
  for p in "${pids[@]}"; do ours "$p" && kill -9 "$p"; done
  for n in "$@"; do rm -f "$STATE/$n.pid"; done
}

# 1. the hosts: kubelet and kube-proxy first (nothing restarts containers), then OVS cleanly
#    (exit --cleanup deletes its datapath taps), then containerd.
stop "${HOSTS[@]/#/kubelet-}" "${HOSTS[@]/#/kube-proxy-}"
for h in "${HOSTS[@]}"; do
  if alive "ovs-vswitchd-$h" && [ -n "$(host_pid "$h")" ]; then
    timeout 10 nsenter --target "$(host_pid "$h")" --mount --net -- \
      ovs-appctl -t /run/openvswitch/ovs-vswitchd.ctl exit --cleanup 2>/dev/null
  fi
  stop "ovs-vswitchd-$h" "ovsdb-server-$h" "containerd-$h"
done
# the guest node: QEMU (everything of the guest lives in its memory; the tap goes with eup-cp)
stop qemu-g
log "stopped the hosts' daemons ($(elapsed "$T0")s)"
# 2. Prometheus, the control plane and the forwarders
stop netns-forward-prometheus prometheus prometheus-targets
stop kube-scheduler kube-controller-manager netns-forward kube-apiserver etcd
log "stopped the control plane ($(elapsed "$T0")s)"
# 3. whatever is left in our cgroups: containers, containerd shims, the hosts' anchors
for _ in $(seq 50); do
  left=$(cgroup_pids "$CGROOT")
  [ -z "$left" ] && break
  # shellcheck disable=SC2086
  kill -9 $left 2>/dev/null
  sleep 0.2
done
[ -z "$(cgroup_pids "$CGROOT")" ] || log "WARNING: processes left in $CGROOT: $(cgroup_pids "$CGROOT" | tr '\n' ' ')"
for h in "${HOSTS[@]}"; do rm -f "$STATE/anchor-$h.pid"; done
log "killed what was left in $CGROOT ($(elapsed "$T0")s)"

# 4. network namespaces: deleting them removes their links (the veth pairs, br0, cni0, OVS taps)
#    and their iptables rules and routes
#    (only those up.sh recorded as created)
if [ -f "$STATE/netns" ]; then
  while read -r ns; do ip netns del "$ns" 2>/dev/null && log "deleted netns $ns"; done <"$STATE/netns"
  rm -f "$STATE/netns"
fi
if [ -f "$STATE/created-run-netns" ] && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
  while mountpoint -q /run/netns; do umount /run/netns || break; done
  rmdir /run/netns && log "removed /run/netns"
fi
rm -f "$STATE/created-run-netns"

# 5. cgroups, deepest first (rmdir removes only empty ones)
for d in $(cgroup_dirs "$CGROOT"); do
  [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  [ -d "$d" ] && log "WARNING: cgroup $d not removed"
done
rm -f "$STATE/cgroup"

# 6. directories up.sh created on the root filesystem as mountpoints (empty: the binds lived in the
#    hosts' mount namespaces), deepest first
# mounted_elsewhere PATH: another cluster's host (its own mount namespace) has a mount on PATH;
# removing the directory would detach that mount there.
mounted_elsewhere() { awk -v p="$1" '$5 == p {found = 1; exit} END {exit !found}' /proc/[0-9]*/mountinfo 2>/dev/null; }
if [ -f "$STATE/created-dirs" ]; then
  tac "$STATE/created-dirs" | while read -r p; do
    if mounted_elsewhere "$p"; then log "kept $p: another cluster's host has a mount on it"; continue; fi
    rmdir "$p" 2>/dev/null && log "removed $p"
  done
  rm -f "$STATE/created-dirs"
fi

# 7. kernel-wide sysctls the kubelets set
if [ -f "$STATE/sysctls" ]; then
  while read -r k v; do echo "$v" >"/proc/sys/$k"; done <"$STATE/sysctls"
  rm -f "$STATE/sysctls"
fi

# 8. runtime state (etcd data, PKI, containerd content, host dirs), keeping the logs
leftover=$(findmnt -rn -o TARGET | grep "^$WORKDIR/" || true)
[ -z "$leftover" ] || die "mounts left under $WORKDIR: $leftover"
# The guest's logs join the others
if [ -d "$GUEST_DIR/logs" ]; then
  mkdir -p "$LOGS/guest" && cp -a "$GUEST_DIR/logs/." "$GUEST_DIR/console.log" "$GUEST_DIR/progress" "$LOGS/guest/" 2>/dev/null
fi
rm -rf "$WORKDIR/cp" "$WORKDIR/hosts" "$PKI" "$ADMIN_KUBECONFIG" "$STATE"
log "make down done in $(elapsed "$T0")s (logs kept in $LOGS)"
