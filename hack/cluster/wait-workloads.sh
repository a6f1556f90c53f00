#!/usr/bin/env bash
# wait-workloads.sh SECONDS: wait until every Deployment, StatefulSet and DaemonSet of the local
# cluster has all its replicas ready; on timeout print what is not ready and fail.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
limit=${1:-180}
t0=$SECONDS
notready() {
  kubectl_admin get deploy,statefulset,daemonset -A -o go-template='{{range .items}}{{$want := or .status.desiredNumberScheduled .spec.replicas}}{{$have := or .status.readyReplicas .status.numberReady 0}}{{if ne (printf "%v" $want) (printf "%v" $have)}}{{.kind}} {{.metadata.namespace}}/{{.metadata.name}} {{$have}}/{{$want}}
{{end}}{{end}}'
}
while :; do
  out=$(notready) || out="apiserver unreachable"
  [ -z "$out" ] && exit 0
  if [ $((SECONDS - t0)) -ge "$limit" ]; then
    echo "not ready after ${limit}s:"; echo "$out" | sed 's/^/  /'
    kubectl_admin get pods -A -o wide | grep -v ' Running ' | sed 's/^/  /'
    exit 1
  fi
  sleep 1
done
