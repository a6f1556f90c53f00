#!/usr/bin/env bash
# prom-targets.sh DIR KUBECTL KUBECONFIG: Prometheus' service discovery for the local cluster (started by up.sh, in the
# control plane's cgroup). Debian's prometheus has no Kubernetes discovery, so this writes the
# kube-system pods annotated prometheus.io/scrape: "true" into DIR/http.json and DIR/https.json
# (file_sd_configs, by prometheus.io/scheme) every few seconds: address = pod IP (the node's for
# host-network pods) and prometheus.io/port, job = app.kubernetes.io/name, plus
# kubernetes_pod_name and kubernetes_node. Files are replaced whole (rename), so Prometheus never
# reads half a file.
set -uo pipefail
DIR=${1:?usage: prom-targets.sh DIR KUBECTL KUBECONFIG} KUBECTL=${2:?} KUBECONFIG=${3:?}
mkdir -p "$DIR"
tmpl='{{range .items}}{{if and .status.podIP (eq .status.phase "Running")}}{{$ip := .status.podIP}}{{$node := .spec.nodeName}}{{$pod := .metadata.name}}{{$job := ""}}{{with .metadata.labels}}{{$job = index . "app.kubernetes.io/name"}}{{end}}{{with .metadata.annotations}}{{if eq (index . "prometheus.io/scrape") "true"}}{{or (index . "prometheus.io/scheme") "http"}} {{$ip}}:{{index . "prometheus.io/port"}} {{$job}} {{$pod}} {{$node}}
{{end}}{{end}}{{end}}{{end}}'
while :; do
  if list=$("$KUBECTL" --kubeconfig "$KUBECONFIG" -n kube-system get pods -o go-template="$tmpl" 2>/dev/null); then
    for scheme in http https; do
      awk -v s="$scheme" '$1 == s {
          printf "%s{\"targets\":[\"%s\"],\"labels\":{\"job\":\"%s\",\"kubernetes_pod_name\":\"%s\",\"kubernetes_node\":\"%s\"}}", n++ ? "," : "[", $2, $3, $4, $5
        } END { print n ? "]" : "[]" }' <<<"$list" >"$DIR/.$scheme.json"
      cmp -s "$DIR/.$scheme.json" "$DIR/$scheme.json" || mv "$DIR/.$scheme.json" "$DIR/$scheme.json"
    done
  fi
  sleep 5
done
