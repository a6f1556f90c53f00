package ippool

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// Reserve takes the pod's IP for the chosen node: the claim it holds (moved to this node), or a
// new claim in phase Reserved for a free IP of the first candidate pool reaching the node. The
// claim is created under the IP's own name, so two schedulers (or the IP controller) can never
// hand out the same IP: the apiserver decides.
func (p *IPPool) Reserve(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	if !needsIP(pod) {
		return nil
	}
	s, err := readState(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	nodeInfo, err := p.handle.SnapshotSharedLister().NodeInfos().Get(nodeName)
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("%s: node %s: %w", Name, nodeName, err))
	}
	claim, err := p.alloc.Allocate(ctx, ipam.Request{Pod: pod, Node: nodeInfo.Node(), Phase: v1alpha1.PhaseReserved})
	if err != nil {
		if r := ipam.ReasonOf(err); r != "" {
			failures.WithLabelValues(string(r)).Inc()
			return fwk.NewStatus(fwk.Unschedulable, err.Error())
		}
		failures.WithLabelValues("APIError").Inc()
		return fwk.AsStatus(fmt.Errorf("reserving an IP for pod %s/%s on node %s: %w", pod.Namespace, pod.Name, nodeName, err))
	}
	klog.FromContext(ctx).V(2).Info("Reserved IP", "pod", klog.KObj(pod), "node", nodeName, "ip", claim.Spec.IP, "pool", claim.Spec.Pool, "held", s.held != nil)
	if s.held == nil {
		p.mu.Lock()
		p.reserved[pod.UID] = claim
		p.mu.Unlock()
	}
	return nil
}

// Unreserve gives back a claim this plugin created for the pod in this cycle (binding failed or a
// later plugin rejected the pod). A claim the pod held before is kept: it is the pod's identity.
// Idempotent, and a no-op when Reserve did not run.
func (p *IPPool) Unreserve(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, nodeName string) {
	claim := p.take(pod)
	if claim == nil {
		return
	}
	logger := klog.FromContext(ctx)
	if err := p.alloc.Release(ctx, claim, "scheduling of the pod was abandoned"); err != nil {
		// The IP controller's GC frees a Reserved claim of a pod that never bound once its
		// reservation window ends; log and move on.
		logger.Error(err, "Releasing reserved IP failed", "pod", klog.KObj(pod), "node", nodeName, "ip", claim.Spec.IP)
		return
	}
	logger.V(2).Info("Released reserved IP", "pod", klog.KObj(pod), "node", nodeName, "ip", claim.Spec.IP)
}

// PostBind forgets the reservation: the claim now belongs to the bound pod.
func (p *IPPool) PostBind(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) {
	p.take(pod)
}

func (p *IPPool) take(pod *v1.Pod) *v1alpha1.IPClaim {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.reserved[pod.UID]
	delete(p.reserved, pod.UID)
	return c
}

func (p *IPPool) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reserved)
}
