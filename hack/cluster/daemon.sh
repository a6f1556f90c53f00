#!/usr/bin/env bash
# daemon.sh: stop and start again one daemon of the running local cluster, by the name up.sh gave
# it (state/NAME.pid: kube-apiserver, etcd, kube-scheduler, kubelet-a, containerd-b, ...).
#
#   daemon.sh stop NAME    SIGTERM, up to 10 s for it to exit, then SIGKILL
#   daemon.sh start NAME   start it again with the command and cgroup up.sh used (state/NAME.cmd),
#                          its output appended to logs/NAME.log
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "daemon.sh needs root"
cmd=${1:-}; name=${2:-}
[ -n "$name" ] && [ -f "$STATE/$name.cmd" ] || die "usage: daemon.sh stop|start NAME (a daemon of state/*.cmd)"
CGROOT=$(cat "$STATE/cgroup")
ours() { grep -q ":$CGROOT/" "/proc/$1/cgroup" 2>/dev/null; }
case $cmd in
stop)
  p=$(cat "$STATE/$name.pid" 2>/dev/null) || die "$name has no pid file"
  if ours "$p"; then
    kill "$p"
    for _ in $(seq 50); do ours "$p" || break; sleep 0.2; done
    ! ours "$p" || kill -9 "$p"
  fi
  log "$name stopped"
  ;;
start)
  p=$(cat "$STATE/$name.pid" 2>/dev/null) || true
  [ -z "$p" ] || ! ours "$p" || die "$name is running (pid $p)"
  mapfile -d '' args <"$STATE/$name.cmd"
  start "$name" "${args[@]}"
  log "$name started (pid $(cat "$STATE/$name.pid"))"
  ;;
*) die "usage: daemon.sh stop|start NAME" ;;
esac
