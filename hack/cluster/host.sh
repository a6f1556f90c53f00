#!/usr/bin/env bash
# host.sh: add a namespace host to the running local cluster, let it die, remove it.
#
#   host.sh add KEY      start host KEY (default: the spare host, dc-a-node-1) as up.sh starts
#                        its hosts (host-lib.sh) and wait until its Node is registered
#   host.sh kill KEY     the host dies: SIGKILL every process of it at once (kubelet, containerd,
#                        Open vSwitch, netd and every pod; its cgroup /PREFIX/KEY); its network
#                        namespace stays, with nothing answering on its address
#   host.sh remove KEY   kill it, then remove its network namespace, cgroups and files
# The Node object is the caller's: kubectl delete node removes it from the cluster. make down
# removes an added host like the others (state/hosts lists it).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=host-lib.sh
. "$(dirname "$0")/host-lib.sh"
HERE=$ROOT/hack/cluster
[ "$(id -u)" = 0 ] || die "host.sh needs root"
[ -f "$STATE/up" ] || die "no running cluster in $WORKDIR (make up first)"
cmd=${1:-}; h=${2:-$SPARE_HOST}
[ -n "${NODE_NAME[$h]:-}" ] || die "unknown host key $h (lib.sh: NODE_NAME)"
listed() { [[ " ${HOSTS[*]} " == *" $h "* ]]; }

kill_host() {
  local left
  for _ in $(seq 50); do
    left=$(cgroup_pids "$CG/$h")
    [ -z "$left" ] && return 0
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null
    sleep 0.2
  done
  die "processes left in $CG/$h: $(cgroup_pids "$CG/$h" | tr '\n' ' ')"
}

case $cmd in
add)
  ! listed || die "host $h is already part of the cluster"
  [ ! -e "/run/netns/$PREFIX-$h" ] || die "network namespace $PREFIX-$h exists: host.sh remove $h first"
  s=$(now)
  cgroup_create "$CG/$h/sys"; cgroup_create "$CG/$h/pods"
  echo "${HOSTS[*]} $h" >"$STATE/hosts"
  host_net "$h"
  host_anchor "$h"
  host_wait_anchor "$h"
  host_daemons "$h"
  host_node "$h"
  host_wait_registered "$h"
  log "host $h (${NODE_NAME[$h]}, ${NODE_ZONE[$h]}, ${NODE_IP[$h]}) added in $(elapsed "$s")s"
  ;;
kill)
  listed || die "host $h is not part of the cluster"
  kill_host
  log "host $h (${NODE_NAME[$h]}) killed"
  ;;
remove)
  listed || { log "host $h is not part of the cluster"; exit 0; }
  kill_host
  for n in kubelet kube-proxy ovs-vswitchd ovsdb-server containerd anchor; do rm -f "$STATE/$n-$h.pid"; done
  if ip netns del "$PREFIX-$h" 2>/dev/null; then
    grep -vx "$PREFIX-$h" "$STATE/netns" >"$STATE/netns.new" || true
    mv "$STATE/netns.new" "$STATE/netns"
  fi
  for d in $(cgroup_dirs "$CG/$h"); do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rest=(); for k in "${HOSTS[@]}"; do [ "$k" = "$h" ] || rest+=("$k"); done
  echo "${rest[*]}" >"$STATE/hosts"
  rm -rf "$WORKDIR/hosts/$h"
  log "host $h (${NODE_NAME[$h]}) removed"
  ;;
*) die "usage: host.sh add|kill|remove [KEY]" ;;
esac
