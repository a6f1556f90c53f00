package ipam

import (
	"net/netip"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Owner kinds written into IPClaim.spec.owner.kind.
const (
	KindStatefulSet = "StatefulSet"
	KindDeployment  = "Deployment"
	KindReplicaSet  = "ReplicaSet"
	KindDaemonSet   = "DaemonSet"
	KindJob         = "Job"
	KindPod         = "Pod"
	KindStatic      = "Static"
)

// Intent is what a pod asks of IPAM, read from its annotations and owner.
type Intent struct {
	// Owner identifies the pod and its workload; it becomes the claim's spec.owner.
	Owner v1alpha1.ClaimOwner
	// Mode is Sticky (the IP follows namespace + pod name) or Ephemeral (one pod instance).
	Mode v1alpha1.ClaimMode
	// Release is the release policy; always OnDelete for Ephemeral.
	Release v1alpha1.ReleasePolicy
	// Pools are the pools the pod names (ecloud.io/ip-pools), in order of preference; nil if none.
	Pools []string
	// IP is the specific address asked for (ecloud.io/ip-address); invalid if none.
	IP netip.Addr
}

// ParseIntent reads a pod's IPAM intent. Defaults by owner: StatefulSet pods are Sticky with
// OnScaleDown; a pod with ecloud.io/ip-address is Sticky (kind Static unless it has a workload)
// with OnDelete; everything else is Ephemeral with OnDelete. ecloud.io/ip-policy and
// ecloud.io/ip-release override the defaults. A malformed annotation yields an error with
// ReasonMalformedAnnotation that names it.
func ParseIntent(pod *corev1.Pod) (Intent, error) {
	in := Intent{Owner: OwnerOf(pod)}
	ann := pod.Annotations
	if v, ok := ann[v1alpha1.AnnotationIPPools]; ok {
		pools, err := ParsePoolList(v1alpha1.AnnotationIPPools, v)
		if err != nil {
			return Intent{}, err
		}
		in.Pools = pools
	}
	if v, ok := ann[v1alpha1.AnnotationIPAddress]; ok {
		a, err := netip.ParseAddr(strings.TrimSpace(v))
		if err != nil {
			return Intent{}, malformed(v1alpha1.AnnotationIPAddress, v, "not an IP address")
		}
		if a.String() != strings.TrimSpace(v) || a.Zone() != "" {
			return Intent{}, malformed(v1alpha1.AnnotationIPAddress, v, "not in canonical form (want "+a.WithZone("").String()+")")
		}
		in.IP = a
		if in.Owner.Kind == KindPod {
			in.Owner.Kind = KindStatic
		}
	}
	in.Mode = v1alpha1.ModeEphemeral
	if in.Owner.Kind == KindStatefulSet || in.IP.IsValid() {
		in.Mode = v1alpha1.ModeSticky
	}
	if v, ok := ann[v1alpha1.AnnotationIPPolicy]; ok {
		switch w := strings.TrimSpace(v); {
		case equalFoldASCII(w, "sticky"):
			in.Mode = v1alpha1.ModeSticky
		case equalFoldASCII(w, "ephemeral"):
			if in.IP.IsValid() {
				return Intent{}, malformed(v1alpha1.AnnotationIPPolicy, v, "a pod asking for a specific IP ("+v1alpha1.AnnotationIPAddress+") is always sticky")
			}
			in.Mode = v1alpha1.ModeEphemeral
		default:
			return Intent{}, malformed(v1alpha1.AnnotationIPPolicy, v, `must be "sticky" or "ephemeral"`)
		}
	}
	in.Release = v1alpha1.ReleaseOnDelete
	if in.Mode == v1alpha1.ModeSticky && in.Owner.Kind == KindStatefulSet {
		in.Release = v1alpha1.ReleaseOnScaleDown
	}
	if v, ok := ann[v1alpha1.AnnotationIPRelease]; ok {
		var p v1alpha1.ReleasePolicy
		for _, c := range []v1alpha1.ReleasePolicy{v1alpha1.ReleaseOnDelete, v1alpha1.ReleaseOnScaleDown, v1alpha1.ReleaseNever} {
			if equalFoldASCII(strings.TrimSpace(v), string(c)) {
				p = c
			}
		}
		switch {
		case p == "":
			return Intent{}, malformed(v1alpha1.AnnotationIPRelease, v, "must be OnDelete, OnScaleDown or Never")
		case in.Mode == v1alpha1.ModeEphemeral && p != v1alpha1.ReleaseOnDelete:
			return Intent{}, malformed(v1alpha1.AnnotationIPRelease, v, "an ephemeral IP is always released on delete; set "+v1alpha1.AnnotationIPPolicy+": sticky")
		case p == v1alpha1.ReleaseOnScaleDown && in.Owner.Kind != KindStatefulSet:
			return Intent{}, malformed(v1alpha1.AnnotationIPRelease, v, "OnScaleDown applies to StatefulSet pods only")
		}
		in.Release = p
	}
	return in, nil
}

// ParsePoolList parses a comma-separated list of pool names (the value of ecloud.io/ip-pools on a
// pod or a namespace); annotation names it in errors.
func ParsePoolList(annotation, v string) ([]string, error) {
	var pools []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, malformed(annotation, v, "empty pool name")
		}
		if errs := validation.IsDNS1123Subdomain(p); len(errs) > 0 {
			return nil, malformed(annotation, v, "pool name "+strconv.Quote(p)+": "+strings.Join(errs, "; "))
		}
		for _, q := range pools {
			if q == p {
				return nil, malformed(annotation, v, "pool "+strconv.Quote(p)+" named twice")
			}
		}
		pools = append(pools, p)
	}
	return pools, nil
}

// OwnerOf identifies a pod and its workload from its controller reference: StatefulSet (with the
// ordinal), Deployment (a ReplicaSet with the pod-template-hash label), ReplicaSet, DaemonSet,
// Job, or Pod for a bare pod.
func OwnerOf(pod *corev1.Pod) v1alpha1.ClaimOwner {
	o := v1alpha1.ClaimOwner{Namespace: pod.Namespace, PodName: pod.Name, Kind: KindPod}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return o
	}
	o.Name = ref.Name
	switch ref.Kind {
	case KindStatefulSet:
		o.Kind = KindStatefulSet
		o.Ordinal = statefulSetOrdinal(pod, ref.Name)
	case KindReplicaSet:
		o.Kind = KindReplicaSet
		if h := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" && strings.HasSuffix(ref.Name, "-"+h) {
			o.Kind, o.Name = KindDeployment, strings.TrimSuffix(ref.Name, "-"+h)
		}
	case KindDaemonSet, KindJob:
		o.Kind = ref.Kind
	default:
		o.Kind, o.Name = KindPod, ""
	}
	return o
}

func statefulSetOrdinal(pod *corev1.Pod, set string) *int32 {
	s := pod.Labels[appsv1.PodIndexLabel]
	if s == "" && strings.HasPrefix(pod.Name, set+"-") {
		s = strings.TrimPrefix(pod.Name, set+"-")
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return nil
	}
	o := int32(n)
	return &o
}

// equalFoldASCII compares the words of an annotation ignoring the case of ASCII letters only
// (Unicode folding would take "ſ" for "s" and the Kelvin sign for "k").
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
