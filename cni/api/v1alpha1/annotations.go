package v1alpha1

// Annotations and labels that workload owners write on pods (and namespaces) to steer ecloud.
const (
	// AnnotationIPPools names the pools a pod may draw its IP from, comma separated, in order of
	// preference ("pool-a,pool-b"). On a Namespace it sets the default pools of its pods.
	AnnotationIPPools = "ecloud.io/ip-pools"
	// AnnotationIPAddress asks for one specific IP (static containers); the claim is sticky.
	AnnotationIPAddress = "ecloud.io/ip-address"
	// AnnotationIPPolicy is "sticky" (the IP follows the pod's name across hosts) or "ephemeral".
	// StatefulSet pods and pods with AnnotationIPAddress are sticky by default.
	AnnotationIPPolicy = "ecloud.io/ip-policy"
	// AnnotationIPRelease is the release policy of a sticky IP: OnDelete, OnScaleDown or Never.
	AnnotationIPRelease = "ecloud.io/ip-release"
	// AnnotationDualDC set to "exempt" takes a single-replica static container out of the
	// two-datacenter rule.
	AnnotationDualDC = "ecloud.io/dual-dc"
	// DualDCExempt is the value of AnnotationDualDC that exempts a pod.
	DualDCExempt = "exempt"
	// LabelGroup puts pods into one DualDatacenter group explicitly, whatever their owner.
	LabelGroup = "ecloud.io/group"
	// DefaultDatacenterLabel is the node label that names a node's datacenter unless configured
	// otherwise.
	DefaultDatacenterLabel = "topology.kubernetes.io/zone"
)
