//go:build tools

// Package cluster pins, in this module's go.mod, the commands the local cluster
// (make up) builds from source: the Kubernetes binaries of the version the module
// is pinned to and the etcd server. The build tag keeps this file out of every
// build; `go mod tidy` still sees the imports and keeps their requirements.
// hack/build-k8s.sh builds them into bin/.
package cluster

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
