package ippool

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// reservation is the pod's IP between Reserve and PostBind. Reserve only takes a hold on one free
// IP of the pool in memory (the scheduling cycle is serial and must stay fast); writeClaim, in the
// parallel binding cycle, creates the claim through cni/ipam, which turns the hold into the chosen
// IP atomically, so the next pods' Filter and Reserve never count the pod twice.
type reservation struct {
	// hold Reserve took; nil once writeClaim handed it to the allocator, and for a pod that holds
	// its claim already.
	hold *ipam.Hold
	// claim writeClaim created for the pod (nil for a claim the pod held before: that one is kept).
	claim *v1alpha1.IPClaim
}

// Reserve takes a hold on a free IP of the first candidate pool that reaches the node and still
// has one beyond the holds already taken, so that the next pods' Filter counts it. A pod holding
// its claim needs no hold.
func (p *IPPool) Reserve(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	if !needsIP(pod) {
		return nil
	}
	s, err := readState(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if s.held != nil {
		p.put(pod, &reservation{})
		return nil
	}
	nodeInfo, err := p.handle.SnapshotSharedLister().NodeInfos().Get(nodeName)
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("%s: node %s: %w", Name, nodeName, err))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	nodeLabels := labels.Set(nodeInfo.Node().Labels)
	for _, c := range s.pools {
		name := c.pool.Name
		if !c.reach.Matches(nodeLabels) {
			continue
		}
		if h, ok := p.alloc.TakeHold(name); ok {
			p.reserved[pod.UID] = &reservation{hold: h}
			return nil
		}
	}
	failures.WithLabelValues(string(ipam.ReasonPoolExhausted)).Inc()
	return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("IP pool(s) %s exhausted: no free IP", poolNames(s.pools)))
}

// PreBindPreFlight: PreBind has work for every pod that needs an IP, unless IPPool is the
// profile's binder (see Bind: then the claim is written there), and may run in parallel with
// other PreBind plugins.
func (p *IPPool) PreBindPreFlight(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) (*fwk.PreBindPreFlightResult, *fwk.Status) {
	if !needsIP(pod) || p.bindsFirst(ctx) {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	return &fwk.PreBindPreFlightResult{AllowParallel: true}, nil
}

// PreBind writes the reservation when IPPool is not the profile's binder (see writeClaim).
func (p *IPPool) PreBind(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	return p.writeClaim(ctx, pod, nodeName)
}

// writeClaim writes the pod's reservation: the claim the pod holds, moved to this node, or a new
// claim in phase Reserved for a free IP of a candidate pool reaching the node, created under the
// IP's own name, so two schedulers (or the IP controller) can never hand out the same IP: the
// apiserver decides. It runs in the binding cycle before the pod is bound (at PreBind, or at Bind
// right before the binding call), so after bind the CNI finds the claim.
func (p *IPPool) writeClaim(ctx context.Context, pod *v1.Pod, nodeName string) *fwk.Status {
	node, err := p.handle.SharedInformerFactory().Core().V1().Nodes().Lister().Get(nodeName)
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("%s: node %s: %w", Name, nodeName, err))
	}
	p.mu.Lock()
	r := p.reserved[pod.UID]
	var hold *ipam.Hold
	if r != nil {
		hold, r.hold = r.hold, nil
	}
	p.mu.Unlock()
	claim, err := p.alloc.Allocate(ctx, ipam.Request{Pod: pod, Node: node, Phase: v1alpha1.PhaseReserved, Hold: hold})
	p.alloc.ReturnHold(hold) // unless the allocation consumed it
	if hold != nil && err == nil {
		p.mu.Lock()
		r.claim = claim
		p.mu.Unlock()
	}
	if err != nil {
		if reason := ipam.ReasonOf(err); reason != "" {
			failures.WithLabelValues(string(reason)).Inc()
			return fwk.NewStatus(fwk.Unschedulable, err.Error())
		}
		failures.WithLabelValues("APIError").Inc()
		return fwk.AsStatus(fmt.Errorf("reserving an IP for pod %s/%s on node %s: %w", pod.Namespace, pod.Name, nodeName, err))
	}
	klog.FromContext(ctx).V(2).Info("Reserved IP", "pod", klog.KObj(pod), "node", nodeName, "ip", claim.Spec.IP, "pool", claim.Spec.Pool)
	return nil
}

// Unreserve undoes Reserve and writeClaim for a pod whose scheduling was abandoned: the slot is
// given back, and a claim writeClaim created is released. A claim the pod held before is kept: it
// is the pod's identity. Idempotent, and a no-op when Reserve did not run.
func (p *IPPool) Unreserve(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, nodeName string) {
	r := p.take(pod)
	if r == nil || r.claim == nil {
		return
	}
	logger := klog.FromContext(ctx)
	if err := p.alloc.Release(ctx, r.claim, "scheduling of the pod was abandoned"); err != nil {
		// The IP controller's GC frees a Reserved claim of a pod that never bound once its
		// reservation window ends; log and move on.
		logger.Error(err, "Releasing reserved IP failed", "pod", klog.KObj(pod), "node", nodeName, "ip", r.claim.Spec.IP)
		return
	}
	logger.V(2).Info("Released reserved IP", "pod", klog.KObj(pod), "node", nodeName, "ip", r.claim.Spec.IP)
}

// PostBind forgets the reservation: the claim now belongs to the bound pod.
func (p *IPPool) PostBind(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) {
	p.take(pod)
}

func (p *IPPool) put(pod *v1.Pod, r *reservation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reserved[pod.UID] = r
}

// take removes the pod's reservation, giving back a hold it still has.
func (p *IPPool) take(pod *v1.Pod) *reservation {
	p.mu.Lock()
	r := p.reserved[pod.UID]
	delete(p.reserved, pod.UID)
	var hold *ipam.Hold
	if r != nil {
		hold, r.hold = r.hold, nil
	}
	p.mu.Unlock()
	p.alloc.ReturnHold(hold)
	return r
}

// free is the pool's free IPs as the next pod sees them: the allocator's count, which counts the
// holds Reserve took that writeClaim has not turned into claims yet.
func (p *IPPool) free(pool string) int64 {
	return p.alloc.Free(pool)
}

func (p *IPPool) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reserved)
}
