// Package v1alpha1 holds the network.ecloud.io/v1alpha1 API: IPPool (a range of overlay IPs, the
// hosts it reaches and the namespaces that may use it) and IPClaim (one object per allocated IP,
// named after the IP, so the apiserver itself guarantees an IP is held at most once) and
// IPLocationSlice (the ip-controller's compact per-node list of where bound IPs live, which
// every netd follows instead of every IPClaim).
//
// +kubebuilder:object:generate=true
// +groupName=network.ecloud.io
package v1alpha1
