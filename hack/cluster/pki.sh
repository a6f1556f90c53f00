#!/usr/bin/env bash
# pki.sh DIR SERVER_URL NODE...: a throwaway PKI for the local cluster (openssl): a CA, the
# apiserver's serving certificate (SANs: 127.0.0.1, the control-plane address, the kubernetes
# Service IP and names), its kubelet-client certificate, the service-account key pair, static bearer
# tokens (admin in system:masters, one system:node:<name> per node, controller-manager, scheduler,
# kube-proxy) and one token kubeconfig per identity. Authorization is Node,RBAC.
set -euo pipefail
DIR=$1 SERVER=$2; shift 2
: "${CP_IP:?} ${KUBERNETES_SVC_IP:?}"
mkdir -p "$DIR"; cd "$DIR"
ssl() { openssl "$@" 2>/dev/null; }
ssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=ecloud-local-ca"
cert() { # name subject extfile-content
  printf '%s\n' "$3" >"$1.ext"
  ssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
  ssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
cert apiserver /CN=kube-apiserver "subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$CP_IP,IP:$KUBERNETES_SVC_IP
extendedKeyUsage=serverAuth"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
ssl genrsa -out sa.key 2048
ssl rsa -in sa.key -pubout -out sa.pub
rnd() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
kubeconfig() { # file user token server
  cat >"$1.kubeconfig" <<EOT
apiVersion: v1
kind: Config
clusters:
- name: ecloud-local
  cluster: {server: "$4", certificate-authority: "$DIR/ca.crt"}
users:
- name: "$2"
  user: {token: "$3"}
contexts:
- name: ecloud-local
  context: {cluster: ecloud-local, user: "$2"}
current-context: ecloud-local
EOT
}
: >tokens.csv
identity() { # file user uid groups
  local t; t=$(rnd)
  echo "$t,$2,$3,\"$4\"" >>tokens.csv
  kubeconfig "$1" "$2" "$t" "$SERVER"
}
identity admin admin admin system:masters
identity controller-manager system:kube-controller-manager kcm ""
identity scheduler system:kube-scheduler scheduler ""
identity kube-proxy system:kube-proxy kube-proxy ""
for n in "$@"; do identity "node-$n" "system:node:$n" "node-$n" system:nodes; done
chmod 600 tokens.csv ./*.key ./*.kubeconfig
