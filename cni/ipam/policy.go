package ipam

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Observation is what is known about a claim's owner when deciding whether to release it.
type Observation struct {
	// Pod is the pod now named namespace/podName by the claim owner; nil if there is none.
	Pod *corev1.Pod
	// PodNodeGone is true when Pod is bound to a node that no longer exists.
	PodNodeGone bool
	// StatefulSet is the owner's StatefulSet (for OnScaleDown claims); nil if it does not exist.
	StatefulSet *appsv1.StatefulSet
	// Siblings are the other claims of the same owner (namespace + pod name), to find duplicates.
	Siblings []*v1alpha1.IPClaim
	// Now and ReservationWindow: a Reserved claim younger than the window is never released (the
	// scheduler is still binding its pod).
	Now               time.Time
	ReservationWindow time.Duration
}

// Verdict is the outcome of Decide.
type Verdict struct {
	// Release is true when the claim's policy says its IP is to be given back.
	Release bool
	// Reason names the rule (for logs, Events and the releases metric).
	Reason string
}

// Release reasons.
const (
	ReasonPodGone        = "PodGone"
	ReasonPodFinished    = "PodFinished"
	ReasonNodeGone       = "NodeGone"
	ReasonScaledDown     = "ScaledDown"
	ReasonSetDeleted     = "StatefulSetDeleted"
	ReasonDuplicate      = "Duplicate"
	keepReserved         = "ReservationWindow"
	keepLive             = "PodLive"
	keepNever            = "PolicyNever"
	keepScaleDownPodLive = "PodStillExists"
	keepInSet            = "OrdinalInSet"
)

// Decide applies a claim's mode and release policy to what is observed of its owner:
//   - Ephemeral (and sticky OnDelete): released when the pod instance is gone: no pod of that
//     name, a pod with another UID, a pod that finished (ephemeral only) or whose node was
//     deleted (ephemeral only);
//   - Sticky OnScaleDown: released when no pod of that name exists and the StatefulSet is gone or
//     its ordinal is outside the set's range;
//   - Sticky Never: never.
//
// A claim that duplicates another claim of the same identity (both sticky for one pod name, or both
// ephemeral for one pod UID, which only a lost race between two allocators can produce) is
// released unless it is Bound or the one to keep (Bound first, then the oldest).
//
// A Reserved claim inside its reservation window is always kept. Decide is pure: callers confirm a
// release verdict reached from a cache with fresh reads before acting on it.
func Decide(c *v1alpha1.IPClaim, o Observation) Verdict {
	if c.Status.Phase == v1alpha1.PhaseReserved && c.Status.ReservedAt != nil &&
		o.Now.Sub(c.Status.ReservedAt.Time) < o.ReservationWindow {
		return Verdict{Reason: keepReserved}
	}
	if Duplicate(c, o.Siblings) {
		return Verdict{true, ReasonDuplicate}
	}
	pod := o.Pod
	otherInstance := pod != nil && c.Status.PodUID != "" && pod.UID != c.Status.PodUID
	switch {
	case c.Spec.Mode == v1alpha1.ModeEphemeral:
		switch {
		case pod == nil || otherInstance:
			return Verdict{true, ReasonPodGone}
		case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
			return Verdict{true, ReasonPodFinished}
		case o.PodNodeGone:
			return Verdict{true, ReasonNodeGone}
		}
		return Verdict{Reason: keepLive}
	case c.Spec.ReleasePolicy == v1alpha1.ReleaseOnDelete:
		if pod == nil || otherInstance {
			return Verdict{true, ReasonPodGone}
		}
		return Verdict{Reason: keepLive}
	case c.Spec.ReleasePolicy == v1alpha1.ReleaseOnScaleDown:
		if pod != nil {
			return Verdict{Reason: keepScaleDownPodLive}
		}
		set := o.StatefulSet
		if set == nil || set.DeletionTimestamp != nil {
			return Verdict{true, ReasonSetDeleted}
		}
		if ord := c.Spec.Owner.Ordinal; ord != nil && !ordinalInSet(*ord, set) {
			return Verdict{true, ReasonScaledDown}
		}
		return Verdict{Reason: keepInSet}
	}
	return Verdict{Reason: keepNever}
}

func ordinalInSet(ord int32, set *appsv1.StatefulSet) bool {
	replicas, start := int32(1), int32(0)
	if set.Spec.Replicas != nil {
		replicas = *set.Spec.Replicas
	}
	if set.Spec.Ordinals != nil {
		start = set.Spec.Ordinals.Start
	}
	return ord >= start && ord < start+replicas
}

// Duplicate reports whether c is a redundant, unbound copy of another claim of the same identity.
func Duplicate(c *v1alpha1.IPClaim, siblings []*v1alpha1.IPClaim) bool {
	if c.Status.Phase == v1alpha1.PhaseBound {
		return false
	}
	for _, s := range siblings {
		if s.Name == c.Name || s.Spec.Mode != c.Spec.Mode || s.Spec.Owner.Namespace != c.Spec.Owner.Namespace ||
			s.Spec.Owner.PodName != c.Spec.Owner.PodName || s.DeletionTimestamp != nil {
			continue
		}
		if c.Spec.Mode == v1alpha1.ModeEphemeral && s.Status.PodUID != c.Status.PodUID {
			continue
		}
		if s.Status.Phase == v1alpha1.PhaseBound || preferred(s, c) {
			return true
		}
	}
	return false
}

// preferred orders two unbound claims of one identity: the older, then the lower name.
func preferred(a, b *v1alpha1.IPClaim) bool {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c < 0
	}
	return a.Name < b.Name
}
