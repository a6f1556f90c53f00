package dualdatacenter

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/util"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// EventsToRegister lists what can make a pod this plugin rejected schedulable: a pod of its group
// added, relabelled or deleted (counts change), and a node of a configured datacenter added,
// removed, relabelled, cordoned or uncordoned, tainted, or changing readiness (a datacenter goes
// out or returns). The hints keep unrelated events from requeueing the pod.
func (p *DualDatacenter) EventsToRegister(_ context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Add | fwk.Delete | fwk.UpdatePodLabel}, QueueingHintFn: p.isSchedulableAfterPodChange},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.Delete | fwk.UpdateNodeLabel | fwk.UpdateNodeTaint | fwk.UpdateNodeCondition}, QueueingHintFn: p.isSchedulableAfterNodeChange},
	}, nil
}

// isSchedulableAfterPodChange queues the pod when the changed pod is (or was) in its group.
func (p *DualDatacenter) isSchedulableAfterPodChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (fwk.QueueingHint, error) {
	oldPod, newPod, err := util.As[*v1.Pod](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	g, err := p.groupOf(pod)
	if err != nil {
		return fwk.Queue, err
	}
	if g == nil {
		return fwk.QueueSkip, nil
	}
	for _, q := range []*v1.Pod{oldPod, newPod} {
		if q == nil {
			continue
		}
		if _, member := g.Revision(q); member {
			logger.V(5).Info("a pod of the group changed", "pod", klog.KObj(pod), "changed", klog.KObj(q), "group", g.String())
			return fwk.Queue, nil
		}
	}
	return fwk.QueueSkip, nil
}

// isSchedulableAfterNodeChange queues the pod when a configured datacenter's node appears,
// disappears, moves between datacenters, or becomes usable or unusable (under Degrade a
// datacenter going out also frees pods that waited for it).
func (p *DualDatacenter) isSchedulableAfterNodeChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj any) (fwk.QueueingHint, error) {
	oldNode, newNode, err := util.As[*v1.Node](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	h := dcrule.NewHealth(p.args.TopologyKey, p.args.Datacenters)
	oldDC, newDC := h.Datacenter(oldNode), h.Datacenter(newNode)
	if oldDC == "" && newDC == "" {
		return fwk.QueueSkip, nil
	}
	if oldNode == nil || newNode == nil || oldDC != newDC || dcrule.NodeUsable(oldNode) != dcrule.NodeUsable(newNode) {
		logger.V(5).Info("a datacenter node changed", "pod", klog.KObj(pod), "node", klog.KObj(newNode), "datacenter", newDC)
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}
