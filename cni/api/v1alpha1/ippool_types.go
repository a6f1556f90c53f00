package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPPool is a range of overlay IPs: the subnet, its gateway and VLAN, the hosts it reaches
// (nodeSelector, usually one datacenter or both) and the namespaces allowed to draw from it.
// Pools may not overlap; the IP controller marks an overlapping pool with the Overlapping
// condition and nothing is allocated from it.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ipp,categories=ecloud
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=`.spec.cidr`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gateway`,priority=1
// +kubebuilder:printcolumn:name="VLAN",type=integer,JSONPath=`.spec.vlan`
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.total`,priority=1
// +kubebuilder:printcolumn:name="Used",type=integer,JSONPath=`.status.allocated`
// +kubebuilder:printcolumn:name="Reserved",type=integer,JSONPath=`.status.reserved`,priority=1
// +kubebuilder:printcolumn:name="Free",type=integer,JSONPath=`.status.free`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPPoolSpec   `json:"spec"`
	Status IPPoolStatus `json:"status,omitempty"`
}

// IPPoolSpec describes the addresses of a pool and who may use them.
//
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || !isIP(self.gateway) || cidr(self.cidr).containsIP(self.gateway)",message="gateway must be an address inside cidr",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || !has(self.excludeIPs) || self.excludeIPs.all(x, !isIP(x) || cidr(self.cidr).containsIP(x))",message="every excluded IP must be inside cidr",fieldPath=".excludeIPs"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || !has(self.includeRanges) || self.includeRanges.all(r, !isIP(r.start) || !isIP(r.end) || (cidr(self.cidr).containsIP(r.start) && cidr(self.cidr).containsIP(r.end)))",message="every include range must lie inside cidr",fieldPath=".includeRanges"
type IPPoolSpec struct {
	// CIDR is the pool's subnet in canonical form, e.g. 10.16.0.0/24 or fd00:10:16::/64.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.16.0.0/24"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).masked() == cidr(self)",message="must be the network address of the subnet (host bits zero), e.g. 10.16.0.0/24 rather than 10.16.0.7/24"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable: create a new pool instead of moving live IPs"
	CIDR string `json:"cidr"`

	// Gateway is the default route of pods in this pool; it must be inside CIDR and is never
	// handed to a pod.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	Gateway string `json:"gateway"`

	// VLAN is the 802.1Q tag of the pool's ports on br-int; 0 means untagged.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	// +optional
	VLAN int32 `json:"vlan,omitempty"`

	// IncludeRanges restricts allocation to these ranges of CIDR; empty means the whole CIDR
	// (minus network, broadcast, gateway and excluded IPs).
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	IncludeRanges []IPRange `json:"includeRanges,omitempty"`

	// ExcludeIPs are addresses of CIDR that are never allocated.
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self.all(x, isIP(x))",message="every excluded IP must be an IP address"
	// +listType=set
	// +optional
	ExcludeIPs []string `json:"excludeIPs,omitempty"`

	// NodeSelector selects the hosts the pool reaches (for example one datacenter). Empty or
	// absent means every node.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// Namespaces lists the namespaces that may use this pool. A namespace may use the pool if it
	// is listed here or matched by NamespaceSelector; with both empty, every namespace may.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelector selects namespaces, by their labels, that may use this pool.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Default makes this pool a candidate for pods that name no pool (annotation
	// ecloud.io/ip-pools) and whose namespace names none either.
	// +optional
	Default bool `json:"default,omitempty"`
}

// IPRange is an inclusive range of addresses.
//
// +kubebuilder:validation:XValidation:rule="!isIP(self.start) || !isIP(self.end) || ip(self.start).family() == ip(self.end).family()",message="start and end must be of the same IP family"
type IPRange struct {
	// Start is the first address of the range.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	Start string `json:"start"`
	// End is the last address of the range, not before Start.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	End string `json:"end"`
}

// IPPoolStatus is kept by the IP controller.
type IPPoolStatus struct {
	// Total is the number of allocatable addresses (CIDR within include ranges, minus network,
	// broadcast, gateway and excluded addresses).
	// +optional
	Total int64 `json:"total"`
	// Allocated is the number of addresses held by claims (Reserved or Bound).
	// +optional
	Allocated int64 `json:"allocated"`
	// Reserved is the part of Allocated that is still Reserved (scheduled, not yet plumbed).
	// +optional
	Reserved int64 `json:"reserved"`
	// Free is Total minus Allocated.
	// +optional
	Free int64 `json:"free"`
	// ObservedGeneration is the spec generation these counts were computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Overlapping, LowOnIPs.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types of an IPPool.
const (
	// PoolReady is True when the pool is valid, does not overlap another and allocates.
	PoolReady = "Ready"
	// PoolOverlapping is True when the pool's CIDR overlaps another pool's; nothing is
	// allocated from an overlapping pool.
	PoolOverlapping = "Overlapping"
	// PoolLowOnIPs is True when fewer than 10% of the pool's addresses are free.
	PoolLowOnIPs = "LowOnIPs"
)

// IPPoolList is a list of IPPools.
//
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPPool `json:"items"`
}
