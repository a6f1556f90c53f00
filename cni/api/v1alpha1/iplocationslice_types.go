package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxLocationsPerSlice is the most IPs one IPLocationSlice lists; a node with more IPs has more
// slices. At about 16 bytes an IPv4 entry, a full slice stays near 4 kB.
const MaxLocationsPerSlice = 256

// IPLocationSlice lists IPs bound on one node and the node's tunnel endpoint: the location
// fan-out every netd follows instead of every IPClaim. The ip-controller alone writes slices,
// derived from the IPClaims' status.node (IPClaims stay the record of who holds an IP; a slice
// only says where it is). Every node with a tunnel endpoint has at least one slice (an empty one
// announces the node's tunnel endpoint); a node with more than MaxLocationsPerSlice bound IPs
// has several, named <node>-<n>. Slices of a deleted node are deleted.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ipls,categories=ecloud
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.node`
// +kubebuilder:printcolumn:name="Tunnel-IP",type=string,JSONPath=`.spec.tunnelIP`
// +kubebuilder:printcolumn:name="Written",type=date,JSONPath=`.spec.writeTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.node`
type IPLocationSlice struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPLocationSliceSpec `json:"spec"`
}

// IPLocationSliceSpec is one node's tunnel endpoint and a share of the IPs bound there, grouped
// by network (pool and VLAN) so that each IP costs only its address.
type IPLocationSliceSpec struct {
	// Node is the Node whose IPs these are.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable"
	Node string `json:"node"`
	// TunnelIP is the node's tunnel endpoint (its network.ecloud.io/tunnel-ip annotation or its
	// first InternalIP).
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	TunnelIP string `json:"tunnelIP"`
	// WriteTime is when the ip-controller wrote this version (microseconds): followers measure
	// how long a location took to reach them.
	// +optional
	WriteTime *metav1.MicroTime `json:"writeTime,omitempty"`
	// Networks are the node's bound IPs of this slice by pool.
	// +kubebuilder:validation:MaxItems=256
	// +listType=map
	// +listMapKey=pool
	// +optional
	Networks []LocatedNetwork `json:"networks,omitempty"`
}

// LocatedNetwork is the IPs of one pool bound on the slice's node.
type LocatedNetwork struct {
	// Pool is the IPPool the IPs belong to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Pool string `json:"pool"`
	// VLAN is the pool's VLAN (the tunnel key across hosts).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	VLAN int32 `json:"vlan"`
	// IPs are the bound addresses, canonical, sorted.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=45
	IPs []string `json:"ips"`
}

// Len is the number of IPs the slice lists.
func (s *IPLocationSliceSpec) Len() int {
	n := 0
	for _, nw := range s.Networks {
		n += len(nw.IPs)
	}
	return n
}

// IPLocationSliceList is a list of IPLocationSlices.
//
// +kubebuilder:object:root=true
type IPLocationSliceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPLocationSlice `json:"items"`
}
