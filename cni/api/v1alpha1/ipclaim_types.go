package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// IPClaim records that one IP is held. There is exactly one claim per allocated IP cluster-wide:
// the claim's name is the IP itself (IPv6 with ':' written as '-'), so a second claim for the
// same IP is rejected by the apiserver with AlreadyExists. IPClaim has no status subresource on
// purpose: allocating is a single create call that carries phase, node and pod UID. Claims carry
// no labels: spec.pool, spec.owner.namespace, spec.owner.podName and status.node are selectable
// fields (`kubectl get ipclaims --field-selector spec.owner.namespace=shop,spec.owner.podName=db-0`),
// which keeps the write of every claim smaller.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ipc,categories=ecloud
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.spec.ip`
// +kubebuilder:printcolumn:name="Pool",type=string,JSONPath=`.spec.pool`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.owner.namespace`
// +kubebuilder:printcolumn:name="Pod",type=string,JSONPath=`.spec.owner.podName`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Release",type=string,JSONPath=`.spec.releasePolicy`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.pool`
// +kubebuilder:selectablefield:JSONPath=`.spec.owner.namespace`
// +kubebuilder:selectablefield:JSONPath=`.spec.owner.podName`
// +kubebuilder:selectablefield:JSONPath=`.status.node`
// +kubebuilder:validation:XValidation:rule="!isIP(self.spec.ip) || self.metadata.name == self.spec.ip.replace(':', '-')",message="metadata.name must be spec.ip (with ':' written as '-')"
type IPClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPClaimSpec   `json:"spec"`
	Status IPClaimStatus `json:"status,omitempty"`
}

// IPClaimSpec says which IP of which pool is held, for whom and under which rules.
//
// +kubebuilder:validation:XValidation:rule="self.mode == 'Sticky' || self.releasePolicy == 'OnDelete'",message="an Ephemeral claim must use releasePolicy OnDelete",fieldPath=".releasePolicy"
type IPClaimSpec struct {
	// Pool is the name of the IPPool the IP belongs to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable"
	Pool string `json:"pool"`

	// IP is the claimed address in canonical form.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip.isCanonical(self)",message="must be in canonical form (e.g. fd00::1, not fd00:0::1)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable"
	IP string `json:"ip"`

	// Owner identifies the pod (and its workload) the IP belongs to.
	Owner ClaimOwner `json:"owner"`

	// Mode is Sticky (the IP follows the pod's identity across hosts and restarts) or
	// Ephemeral (freed when the pod is gone).
	// +kubebuilder:validation:Enum=Sticky;Ephemeral
	Mode ClaimMode `json:"mode"`

	// ReleasePolicy says when the IP is given back: OnDelete (when the pod is deleted),
	// OnScaleDown (a StatefulSet's: when the set is deleted or scaled below the ordinal) or
	// Never (only when the claim itself is deleted).
	// +kubebuilder:validation:Enum=OnDelete;OnScaleDown;Never
	ReleasePolicy ReleasePolicy `json:"releasePolicy"`
}

// ClaimOwner identifies the pod an IP belongs to and the workload that pod belongs to.
type ClaimOwner struct {
	// Namespace of the pod.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// PodName is the pod's name; for a sticky claim, namespace + podName is the identity the IP
	// follows.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	PodName string `json:"podName"`
	// Kind of the workload: StatefulSet, Deployment, ReplicaSet, DaemonSet, Job, Pod (bare) or
	// Static (a single-replica static container).
	// +kubebuilder:validation:Enum=StatefulSet;Deployment;ReplicaSet;DaemonSet;Job;Pod;Static
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the workload (empty for bare pods).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`
	// Ordinal of a StatefulSet pod.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Ordinal *int32 `json:"ordinal,omitempty"`
}

// IPClaimStatus is the claim's lifecycle: Reserved by the scheduler for a node, Bound once the
// CNI plumbed it into the pod, Released when given back (about to be deleted).
type IPClaimStatus struct {
	// Phase is Reserved, Bound or Released.
	// +kubebuilder:validation:Enum=Reserved;Bound;Released
	// +optional
	Phase ClaimPhase `json:"phase,omitempty"`
	// Node the IP is reserved for or bound on.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Node string `json:"node,omitempty"`
	// PodUID of the pod instance currently holding the IP.
	// +optional
	PodUID types.UID `json:"podUID,omitempty"`
	// ContainerID is the sandbox the CNI plumbed the IP into.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	ContainerID string `json:"containerID,omitempty"`
	// ReservedAt is when the IP was reserved for the current pod instance.
	// +optional
	ReservedAt *metav1.Time `json:"reservedAt,omitempty"`
	// BoundAt is when the CNI plumbed the IP.
	// +optional
	BoundAt *metav1.Time `json:"boundAt,omitempty"`
	// ReleasedAt is when the IP was given back.
	// +optional
	ReleasedAt *metav1.Time `json:"releasedAt,omitempty"`
}

// ClaimMode says whether an IP follows a pod identity (Sticky) or a pod instance (Ephemeral).
type ClaimMode string

// Claim modes.
const (
	ModeSticky    ClaimMode = "Sticky"
	ModeEphemeral ClaimMode = "Ephemeral"
)

// ReleasePolicy says when a claim's IP is given back.
type ReleasePolicy string

// Release policies.
const (
	ReleaseOnDelete    ReleasePolicy = "OnDelete"
	ReleaseOnScaleDown ReleasePolicy = "OnScaleDown"
	ReleaseNever       ReleasePolicy = "Never"
)

// ClaimPhase is the lifecycle phase of a claim.
type ClaimPhase string

// Claim phases.
const (
	PhaseReserved ClaimPhase = "Reserved"
	PhaseBound    ClaimPhase = "Bound"
	PhaseReleased ClaimPhase = "Released"
)

// ClaimName is the object name of the claim for ip: the canonical address, with ':' written as
// '-' so that IPv6 addresses are valid object names.
func ClaimName(ip string) string { return strings.ReplaceAll(ip, ":", "-") }

// IPClaimList is a list of IPClaims.
//
// +kubebuilder:object:root=true
type IPClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPClaim `json:"items"`
}

// LocatedOn is the node whose pods reach the claim's IP there: status.node of a Bound claim that
// is not being deleted, else "". It is what the location fan-out (IPLocationSlices, relays)
// publishes.
func (c *IPClaim) LocatedOn() string {
	if c == nil || c.Status.Phase != PhaseBound || c.DeletionTimestamp != nil {
		return ""
	}
	return c.Status.Node
}
