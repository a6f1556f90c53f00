package report

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// IPReport is the answer of `kubectl ecloud ip <IP>`.
type IPReport struct {
	IP string `json:"ip"`
	// Pool is the pool whose allocatable addresses include IP ("" when none does).
	Pool string `json:"pool,omitempty"`
	// Held is whether a claim holds the IP; the fields below describe that claim.
	Held          bool                 `json:"held"`
	Claim         string               `json:"claim,omitempty"`
	Owner         *v1alpha1.ClaimOwner `json:"owner,omitempty"`
	Mode          string               `json:"mode,omitempty"`
	ReleasePolicy string               `json:"releasePolicy,omitempty"`
	Phase         string               `json:"phase,omitempty"`
	Node          string               `json:"node,omitempty"`
	Since         *time.Time           `json:"since,omitempty"`
	// PodState says what became of the owning pod: running on a node, pending, gone, or
	// replaced by another instance.
	PodState string `json:"podState,omitempty"`
	// FreedBy says what gives the IP back under the claim's policy.
	FreedBy string `json:"freedBy"`
	// ReleaseNow is the IP controller's verdict on what it sees now (cni/ipam.Decide): whether
	// it releases the claim, and the rule.
	ReleaseNow    bool   `json:"releaseNow"`
	ReleaseReason string `json:"releaseReason,omitempty"`
}

// IPObservation is what is known around one IP.
type IPObservation struct {
	IP    netip.Addr
	Pools []v1alpha1.IPPool
	// Claim holds the IP (nil when none does); Siblings are the other claims of its owner.
	Claim    *v1alpha1.IPClaim
	Siblings []*v1alpha1.IPClaim
	// Pod is the pod now named like the claim's owner, StatefulSet its StatefulSet (nil when
	// absent); PodNodeGone says whether the pod's node was deleted.
	Pod         *corev1.Pod
	StatefulSet *appsv1.StatefulSet
	PodNodeGone bool
	// Now and ReservationWindow are passed to ipam.Decide.
	Now               time.Time
	ReservationWindow time.Duration
}

// BuildIP explains who holds an IP and what would free it.
func BuildIP(o IPObservation) *IPReport {
	r := &IPReport{IP: o.IP.String()}
	for i := range o.Pools {
		if rg, err := ipam.ParseRanges(&o.Pools[i].Spec); err == nil && rg.Contains(o.IP) {
			r.Pool = o.Pools[i].Name
		}
	}
	c := o.Claim
	if c == nil {
		if r.Pool == "" {
			r.FreedBy = "not allocatable: the IP is in no pool's allocatable range (or it is a pool's network, broadcast, gateway or excluded address)"
		} else {
			r.FreedBy = fmt.Sprintf("nothing to free: the IP is free in pool %s", r.Pool)
		}
		return r
	}
	owner := c.Spec.Owner
	r.Held, r.Claim, r.Owner, r.Pool = true, c.Name, &owner, c.Spec.Pool
	r.Mode, r.ReleasePolicy, r.Phase, r.Node = string(c.Spec.Mode), string(c.Spec.ReleasePolicy), string(c.Status.Phase), c.Status.Node
	if c.Spec.Mode == v1alpha1.ModeEphemeral {
		r.ReleasePolicy = "" // ephemeral claims go with their pod instance
	}
	for _, t := range []*metav1.Time{c.Status.BoundAt, c.Status.ReservedAt} {
		if t != nil && r.Since == nil {
			s := t.Time
			r.Since = &s
		}
	}
	if r.Since == nil {
		s := c.CreationTimestamp.Time
		r.Since = &s
	}
	pod := owner.Namespace + "/" + owner.PodName
	switch p := o.Pod; {
	case p == nil:
		r.PodState = fmt.Sprintf("pod %s does not exist", pod)
	case c.Status.PodUID != "" && p.UID != c.Status.PodUID:
		r.PodState = fmt.Sprintf("pod %s is another instance (uid %s) than the one the claim was made for (uid %s)", pod, p.UID, c.Status.PodUID)
	case p.Spec.NodeName == "":
		r.PodState = fmt.Sprintf("pod %s is pending (not scheduled)", pod)
	case o.PodNodeGone:
		r.PodState = fmt.Sprintf("pod %s is bound to node %s, which no longer exists", pod, p.Spec.NodeName)
	default:
		r.PodState = fmt.Sprintf("pod %s is %s on node %s", pod, p.Status.Phase, p.Spec.NodeName)
	}
	r.FreedBy = freedBy(c)
	v := ipam.Decide(c, ipam.Observation{Pod: o.Pod, PodNodeGone: o.PodNodeGone, StatefulSet: o.StatefulSet, Siblings: o.Siblings,
		Now: o.Now, ReservationWindow: o.ReservationWindow})
	r.ReleaseNow, r.ReleaseReason = v.Release, v.Reason
	return r
}

// freedBy says, per mode and release policy, what gives the IP back (cni/ipam.Decide's rules).
func freedBy(c *v1alpha1.IPClaim) string {
	o := c.Spec.Owner
	pod := o.Namespace + "/" + o.PodName
	switch {
	case c.Spec.Mode == v1alpha1.ModeEphemeral:
		return fmt.Sprintf("pod %s going away: deleted, finished (Succeeded/Failed) or its node deleted; a new pod of that name gets a new IP", pod)
	case c.Spec.ReleasePolicy == v1alpha1.ReleaseOnDelete:
		return fmt.Sprintf("deleting pod %s; a restart or a move of the same pod instance keeps the IP", pod)
	case c.Spec.ReleasePolicy == v1alpha1.ReleaseOnScaleDown:
		set := o.Name
		if set == "" {
			set = "<its statefulset>"
		}
		ord := "its ordinal"
		if o.Ordinal != nil {
			ord = fmt.Sprintf("ordinal %d (replicas %d or fewer)", *o.Ordinal, *o.Ordinal)
		}
		return fmt.Sprintf("pod %s being gone and statefulset %s/%s deleted or scaled below %s; deleting the pod alone keeps the IP for its successor", pod, o.Namespace, set, ord)
	}
	return fmt.Sprintf("only deleting the claim (kubectl delete ipclaim %s) once pod %s is gone: release policy Never", c.Name, pod)
}

// Table implements Renderer.
func (r *IPReport) Table(w io.Writer, wide bool) error {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-15s %s\n", k+":", v)
		}
	}
	line("IP", r.IP)
	line("Pool", orNone(r.Pool))
	if !r.Held {
		line("Held", "no")
		line("Freed by", r.FreedBy)
		_, err := io.WriteString(w, b.String())
		return err
	}
	o := r.Owner
	holder := "pod " + o.Namespace + "/" + o.PodName
	if o.Kind != "" && o.Name != "" {
		holder += fmt.Sprintf(" (%s %s", strings.ToLower(o.Kind), o.Name)
		if o.Ordinal != nil {
			holder += fmt.Sprintf(", ordinal %d", *o.Ordinal)
		}
		holder += ")"
	}
	line("Held by", holder)
	mode := r.Mode
	if r.ReleasePolicy != "" {
		mode += ", release policy " + r.ReleasePolicy
	}
	line("Mode", mode)
	line("Phase", r.Phase)
	line("Node", orNone(r.Node))
	if r.Since != nil {
		line("Since", r.Since.UTC().Format(time.RFC3339))
	}
	line("Pod", r.PodState)
	line("Freed by", r.FreedBy)
	now := "kept (" + r.ReleaseReason + ")"
	if r.ReleaseNow {
		now = "released by the IP controller on its next pass (" + r.ReleaseReason + ")"
	}
	line("Right now", now)
	if wide {
		line("Claim", r.Claim)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
