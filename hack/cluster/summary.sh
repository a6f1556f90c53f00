#!/usr/bin/env bash
# summary.sh: what the local cluster runs: nodes and their datacenters, pods per datacenter per
# workload with their IPs, IP pool usage, and the KUBECONFIG line for bin/kubectl.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
k() { kubectl_admin "$@"; }
echo
echo "== nodes"
k get nodes -L topology.kubernetes.io/zone -o wide --no-headers |
  awk '{printf "  %-14s %-9s zone=%-6s ip=%-14s %s\n", $1, $2, $NF, $6, $5}'
zones=$(k get nodes -o go-template='{{range .items}}{{.metadata.name}}={{index .metadata.labels "topology.kubernetes.io/zone"}} {{end}}')
echo "== pods per datacenter (namespace/workload: dc=count ...)"
k get pods -A --field-selector=status.phase=Running -o go-template='{{range .items}}{{.metadata.namespace}} {{with index .metadata.ownerReferences 0}}{{.kind}}/{{.name}}{{end}} {{.spec.nodeName}} {{.metadata.name}} {{.status.podIP}}
{{end}}' 2>/dev/null | awk -v zones="$zones" '
  BEGIN { n = split(zones, z, " "); for (i = 1; i <= n; i++) { split(z[i], kv, "="); zone[kv[1]] = kv[2] } }
  { w = $1 "/" $2; sub(/-[a-z0-9]+$/, "", w) }
  $2 ~ /^ReplicaSet\// { w = $1 "/" substr($2, 12); sub(/-[a-z0-9]+$/, "", w) }
  $2 !~ /^ReplicaSet\// { w = $1 "/" substr($2, index($2, "/") + 1) }
  { c[w, zone[$3]]++; ws[w] = 1; ips[w] = ips[w] " " $4 "=" $5 "@" zone[$3] }
  END { for (w in ws) printf "  %-40s dc-a=%d dc-b=%d\t%s\n", w, c[w, "dc-a"], c[w, "dc-b"], ips[w] }' |
  sort | awk -F'\t' '{print $1; n = split($2, p, " "); for (i = 1; i <= n; i++) print "      " p[i]}'
pending=$(k get pods -A --field-selector=status.phase!=Running --no-headers 2>/dev/null | awk '$4 != "Completed"' | wc -l)
[ "$pending" = 0 ] || echo "  ($pending pod(s) not Running: $BIN/kubectl get pods -A --field-selector=status.phase!=Running)"
if k get crd ippools.network.ecloud.io >/dev/null 2>&1; then
  echo "== IP pools"
  if [ -n "$(k get ippools --no-headers 2>/dev/null)" ]; then k get ippools 2>/dev/null | sed 's/^/  /'; else echo "  (none yet)"; fi
fi
echo
echo "KUBECONFIG=$ADMIN_KUBECONFIG"
echo "  e.g. KUBECONFIG=$ADMIN_KUBECONFIG $BIN/kubectl get pods -A -o wide"
echo "Prometheus: http://127.0.0.1:$PROM_PORT (every ecloud component, alerts of manifests/prometheus)"
