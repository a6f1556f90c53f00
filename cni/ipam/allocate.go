package ipam

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Request asks for the IP of one pod.
type Request struct {
	// Pod is the pod (identity, UID, annotations, owner). Required.
	Pod *corev1.Pod
	// Node is where the pod runs or is being scheduled; the pool must reach it. Nil: no node yet
	// (the claim records no node and reach is not checked).
	Node *corev1.Node
	// Phase is the phase the claim ends in: Reserved (the scheduler, while binding) or Bound (the
	// CNI daemon, once plumbed). Empty means Reserved.
	Phase v1alpha1.ClaimPhase
	// ContainerID is the sandbox the IP is plumbed into (with Phase Bound).
	ContainerID string
	// Hold, if set, is the hold taken for this pod (TakeHold); a new IP from its pool consumes it.
	// The caller gives back an unconsumed hold (ReturnHold) after Allocate returns.
	Hold *Hold
}

// Allocate returns the pod's IP claim, in this order: the claim the pod already has (its sticky
// claim, or the ephemeral claim of this pod instance), updated to this node, pod UID and phase;
// else a claim for the IP the pod asks for (ecloud.io/ip-address); else a claim for a free IP of
// the first candidate pool reaching the node that has one. A new claim costs one create call; an
// IP lost to a concurrent allocator (AlreadyExists) is skipped and another taken.
//
// Refusals are *Error values (ReasonOf); if a Recorder is configured each is also recorded as a
// Warning Event on the pod.
func (a *Allocator) Allocate(ctx context.Context, req Request) (*v1alpha1.IPClaim, error) {
	start := a.now()
	if req.Phase == "" {
		req.Phase = v1alpha1.PhaseReserved
	}
	c, err := a.allocate(ctx, req, false)
	allocationLatency.Observe(a.now().Sub(start).Seconds())
	a.refused(req.Pod, err)
	if err == nil && a.cfg.RecordAllocations && a.cfg.Recorder != nil && c.Status.PodUID == req.Pod.UID {
		a.cfg.Recorder.Eventf(req.Pod, corev1.EventTypeNormal, "IPAllocated", "IP %s of pool %s (%s, release %s), %s on %s",
			c.Spec.IP, c.Spec.Pool, c.Spec.Mode, c.Spec.ReleasePolicy, c.Status.Phase, c.Status.Node)
	}
	return c, err
}

// Bind marks the pod's existing claim Bound on node with the sandbox containerID (the CNI
// daemon's ADD after the scheduler reserved). It fails with ReasonNotReserved when the pod has no
// claim; the caller may then Allocate with Phase Bound.
func (a *Allocator) Bind(ctx context.Context, pod *corev1.Pod, node *corev1.Node, containerID string) (*v1alpha1.IPClaim, error) {
	start := a.now()
	c, err := a.allocate(ctx, Request{Pod: pod, Node: node, Phase: v1alpha1.PhaseBound, ContainerID: containerID}, true)
	allocationLatency.Observe(a.now().Sub(start).Seconds())
	a.refused(pod, err)
	return c, err
}

// Check answers from the caches alone (no API call) whether Allocate for pod on node would
// succeed, and returns the refusal it would give: the scheduler plugin's Filter. The answer can
// be stale by the informers' lag; Allocate stays the authority.
func (a *Allocator) Check(pod *corev1.Pod, node *corev1.Node) error {
	in, err := ParseIntent(pod)
	if err != nil {
		return err
	}
	if c := pickClaim(a.claimsOf(pod.Namespace, pod.Name), pod, in); c != nil {
		return a.checkExisting(c, pod, in, node)
	}
	if in.IP.IsValid() {
		_, err := a.checkStatic(pod.Namespace, in, node)
		return err
	}
	pools, err := a.Candidates(pod.Namespace, in)
	if err != nil {
		return err
	}
	if pools, err = PoolsForNode(pools, node); err != nil {
		return err
	}
	names := make([]string, 0, len(pools))
	for _, p := range pools {
		if a.Free(p.Name) > 0 {
			return nil
		}
		names = append(names, p.Name)
	}
	return poolExhausted(names)
}

func (a *Allocator) refused(pod *corev1.Pod, err error) {
	r := ReasonOf(err)
	if r == "" {
		return
	}
	refusals.WithLabelValues(string(r)).Inc()
	if a.cfg.Recorder != nil && pod != nil {
		a.cfg.Recorder.Event(pod, corev1.EventTypeWarning, string(r), err.Error())
	}
}

func (a *Allocator) allocate(ctx context.Context, req Request, mustExist bool) (*v1alpha1.IPClaim, error) {
	pod := req.Pod
	in, err := ParseIntent(pod)
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod))
	unlock := a.lockPod(pod.Namespace, pod.Name)
	defer unlock()

	existing, err := a.existingClaim(ctx, pod, in, mustExist || req.Phase == v1alpha1.PhaseBound)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		c, err := a.adopt(ctx, existing, req, in)
		if !apierrors.IsNotFound(err) {
			return c, err
		}
		// Released under our feet: allocate afresh.
	}
	if mustExist {
		return nil, &Error{Reason: ReasonNotReserved, Namespace: pod.Namespace,
			Detail: fmt.Sprintf("pod %s/%s has no IP claim to bind", pod.Namespace, pod.Name)}
	}
	status := a.initialStatus(req)
	if in.IP.IsValid() {
		return a.allocateStatic(ctx, req, in, status)
	}
	pools, err := a.Candidates(pod.Namespace, in)
	if err != nil {
		return nil, err
	}
	if pools, err = PoolsForNode(pools, req.Node); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(pools))
	for _, p := range pools {
		names = append(names, p.Name)
		c, err := a.allocateFrom(ctx, p.Name, in, status, req.Hold)
		if err != nil || c != nil {
			if c != nil {
				logger.V(4).Info("Allocated IP", "ip", c.Spec.IP, "pool", p.Name, "mode", in.Mode)
			}
			return c, err
		}
	}
	return nil, poolExhausted(names)
}

func (a *Allocator) initialStatus(req Request) v1alpha1.IPClaimStatus {
	now := metav1.NewTime(a.now())
	st := v1alpha1.IPClaimStatus{Phase: req.Phase, PodUID: req.Pod.UID, ReservedAt: &now}
	if req.Node != nil {
		st.Node = req.Node.Name
	}
	if req.Phase == v1alpha1.PhaseBound {
		st.BoundAt, st.ContainerID = &now, req.ContainerID
	}
	return st
}

// allocateFrom creates a claim for a free IP of pool; (nil, nil) when the pool has none left.
func (a *Allocator) allocateFrom(ctx context.Context, pool string, in Intent, st v1alpha1.IPClaimStatus, h *Hold) (*v1alpha1.IPClaim, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ip, ok := a.reserve(pool, h)
		if !ok {
			return nil, nil
		}
		created, err := a.create(ctx, newClaim(ip.String(), pool, in, st))
		switch {
		case err == nil:
			return created, nil
		case apierrors.IsAlreadyExists(err):
			conflicts.WithLabelValues(pool).Inc()
			a.markTaken(ip, pool)
		default:
			if definite(err) {
				a.unreserve(ip)
			} else {
				// The claim may exist: keep the IP off the free set and look the pod's claims up
				// on the apiserver next time.
				a.setUncertain(OwnerKey(in.Owner.Namespace, in.Owner.PodName), true)
			}
			return nil, fmt.Errorf("ipam: create claim for %s of pool %s for pod %s/%s: %w", ip, pool, in.Owner.Namespace, in.Owner.PodName, err)
		}
	}
}

// create makes a claim and notes it (before the informer does) and counts it.
func (a *Allocator) create(ctx context.Context, c *v1alpha1.IPClaim) (*v1alpha1.IPClaim, error) {
	created, err := a.cfg.Claims.Create(ctx, c, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	a.remember(created.Name, created)
	allocations.WithLabelValues(created.Spec.Pool, string(created.Spec.Mode)).Inc()
	return created, nil
}

// checkStatic checks, from the caches, that the pod may take the IP it asks for on node, and
// returns the IP's pool.
func (a *Allocator) checkStatic(ns string, in Intent, node *corev1.Node) (string, error) {
	ip := in.IP.String()
	pool := a.poolOf(in.IP)
	if pool == "" {
		return "", &Error{Reason: ReasonIPOutsidePool, IP: ip, Annotation: v1alpha1.AnnotationIPAddress,
			Detail: fmt.Sprintf("IP %s asked for by annotation %s is not an allocatable address of any usable IP pool", ip, v1alpha1.AnnotationIPAddress)}
	}
	if in.Pools != nil && !containsString(in.Pools, pool) {
		return "", &Error{Reason: ReasonIPOutsidePool, IP: ip, Pool: pool, Annotation: v1alpha1.AnnotationIPAddress,
			Detail: fmt.Sprintf("IP %s asked for by annotation %s is outside the pools %v named by annotation %s (it belongs to pool %q)",
				ip, v1alpha1.AnnotationIPAddress, in.Pools, v1alpha1.AnnotationIPPools, pool)}
	}
	pin := in
	pin.Pools = []string{pool}
	pools, err := a.Candidates(ns, pin)
	if err != nil {
		return "", err
	}
	if _, err := PoolsForNode(pools, node); err != nil {
		return "", err
	}
	if h := a.heldClaim(in.IP); h != nil && !sameOwner(h, in) {
		return "", ipHeld(ip, h)
	}
	return pool, nil
}

// allocateStatic creates the claim for the IP the pod asks for.
func (a *Allocator) allocateStatic(ctx context.Context, req Request, in Intent, st v1alpha1.IPClaimStatus) (*v1alpha1.IPClaim, error) {
	ip, ns := in.IP.String(), req.Pod.Namespace
	pool, err := a.checkStatic(ns, in, req.Node)
	if err != nil {
		return nil, err
	}
	created, err := a.create(ctx, newClaim(ip, pool, in, st))
	switch {
	case err == nil:
		return created, nil
	case apierrors.IsAlreadyExists(err):
		h, gerr := a.cfg.Claims.Get(ctx, v1alpha1.ClaimName(ip), metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("ipam: claim for %s exists but cannot be read: %w", ip, gerr)
		}
		if sameOwner(h, in) {
			return a.adopt(ctx, h, req, in)
		}
		return nil, ipHeld(ip, h)
	default:
		return nil, fmt.Errorf("ipam: create claim for %s of pool %s for pod %s/%s: %w", ip, pool, ns, req.Pod.Name, err)
	}
}

// definite reports whether a failed write certainly did not happen: the apiserver answered with a
// client error. A lost connection, a timeout or a server error leave the outcome unknown.
func definite(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	code := st.Status().Code
	return code >= 400 && code < 500 && !apierrors.IsTimeout(err)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sameOwner(c *v1alpha1.IPClaim, in Intent) bool {
	return c.Spec.Mode == v1alpha1.ModeSticky && in.Mode == v1alpha1.ModeSticky &&
		c.Spec.Owner.Namespace == in.Owner.Namespace && c.Spec.Owner.PodName == in.Owner.PodName
}

// existingClaim finds the claim the pod already has: for a sticky pod its identity's sticky claim,
// for an ephemeral pod the claim of this pod instance (UID). With live set, for a sticky pod the
// informer does not show a claim for, or after a create of unknown outcome for this pod, the
// apiserver is asked (a list by owner fields), so a claim made a moment ago by another process (or
// by a create whose answer was lost) is not missed.
func (a *Allocator) existingClaim(ctx context.Context, pod *corev1.Pod, in Intent, live bool) (*v1alpha1.IPClaim, error) {
	owner := OwnerKey(pod.Namespace, pod.Name)
	if c := pickClaim(a.claimsOf(pod.Namespace, pod.Name), pod, in); c != nil {
		return c, nil
	}
	if !live && in.Mode != v1alpha1.ModeSticky && !a.isUncertain(owner) {
		return nil, nil
	}
	list, err := a.cfg.Claims.List(ctx, metav1.ListOptions{FieldSelector: OwnerSelector(pod.Namespace, pod.Name)})
	if err != nil {
		return nil, fmt.Errorf("ipam: list claims of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	a.setUncertain(owner, false)
	var cs []*v1alpha1.IPClaim
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp == nil {
			cs = append(cs, &list.Items[i])
		}
	}
	return pickClaim(cs, pod, in), nil
}

func pickClaim(cs []*v1alpha1.IPClaim, pod *corev1.Pod, in Intent) *v1alpha1.IPClaim {
	for _, c := range cs {
		if c.Spec.Owner.Namespace != pod.Namespace || c.Spec.Owner.PodName != pod.Name || c.Status.Phase == v1alpha1.PhaseReleased {
			continue
		}
		if in.Mode == v1alpha1.ModeSticky && c.Spec.Mode == v1alpha1.ModeSticky {
			return c
		}
		if in.Mode == v1alpha1.ModeEphemeral && c.Spec.Mode == v1alpha1.ModeEphemeral && c.Status.PodUID == pod.UID {
			return c
		}
	}
	return nil
}

// adopt brings the pod's existing claim up to date for this request (node, pod UID, phase).
func (a *Allocator) adopt(ctx context.Context, c *v1alpha1.IPClaim, req Request, in Intent) (*v1alpha1.IPClaim, error) {
	if err := a.checkExisting(c, req.Pod, in, req.Node); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		want, changed := a.adoptedStatus(c, req)
		if !changed {
			return c, nil
		}
		u := c.DeepCopy()
		u.Status = want
		updated, err := a.cfg.Claims.Update(ctx, u, metav1.UpdateOptions{})
		if err == nil {
			a.remember(updated.Name, updated)
			return updated, nil
		}
		if !apierrors.IsConflict(err) || attempt >= 5 {
			return nil, fmt.Errorf("ipam: update claim %s for pod %s/%s: %w", c.Name, req.Pod.Namespace, req.Pod.Name, err)
		}
		if c, err = a.cfg.Claims.Get(ctx, c.Name, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("ipam: re-read claim %s: %w", u.Name, err)
		}
		if pickClaim([]*v1alpha1.IPClaim{c}, req.Pod, in) == nil {
			return nil, apierrors.NewNotFound(v1alpha1.Resource("ipclaims"), c.Name) // no longer ours
		}
	}
}

// checkExisting checks that the pod may keep using its claim c on node: the IP it asks for (if
// any) is c's, and c's pool reaches node.
func (a *Allocator) checkExisting(c *v1alpha1.IPClaim, pod *corev1.Pod, in Intent, node *corev1.Node) error {
	if in.IP.IsValid() && c.Spec.IP != in.IP.String() {
		return &Error{Reason: ReasonIPHeld, IP: in.IP.String(), Pool: c.Spec.Pool, Annotation: v1alpha1.AnnotationIPAddress,
			Detail: fmt.Sprintf("pod %s/%s asks for IP %s (annotation %s) but holds the sticky IP %s; delete claim %s first",
				pod.Namespace, pod.Name, in.IP, v1alpha1.AnnotationIPAddress, c.Spec.IP, c.Name)}
	}
	if node == nil {
		return nil
	}
	pool, err := a.Pool(c.Spec.Pool)
	if pool == nil {
		return err
	}
	if ok, err := PoolReachesNode(pool, node); err != nil || !ok {
		return &Error{Reason: ReasonNodeNotReached, Pool: pool.Name, IP: c.Spec.IP,
			Detail: fmt.Sprintf("pool %q of the pod's IP %s does not reach node %s", pool.Name, c.Spec.IP, node.Name)}
	}
	return nil
}

// adoptedStatus is the status claim c should have for req, and whether it differs.
func (a *Allocator) adoptedStatus(c *v1alpha1.IPClaim, req Request) (v1alpha1.IPClaimStatus, bool) {
	st := *c.Status.DeepCopy()
	if st.PodUID != req.Pod.UID {
		st = a.initialStatus(req) // a new instance of a sticky identity
		return st, true
	}
	changed := false
	if req.Node != nil && st.Node != req.Node.Name {
		st.Node, changed = req.Node.Name, true
	}
	if req.Phase == v1alpha1.PhaseBound && (st.Phase != v1alpha1.PhaseBound || st.ContainerID != req.ContainerID) {
		now := metav1.NewTime(a.now())
		st.Phase, st.BoundAt, st.ContainerID, changed = v1alpha1.PhaseBound, &now, req.ContainerID, true
	}
	return st, changed
}
