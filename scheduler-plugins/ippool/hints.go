package ippool

import (
	"context"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// Cluster events on the custom resources, named as the scheduler names GVK events.
const (
	ipClaimsResource fwk.EventResource = "ipclaims.v1alpha1." + v1alpha1.GroupName
	ipPoolsResource  fwk.EventResource = "ippools.v1alpha1." + v1alpha1.GroupName
)

// EventsToRegister lists what can make a pod this plugin rejected schedulable: an IP freed (a
// claim deleted) in one of its pools, a pool added or changed (new range, wider node selector or
// namespace list), and a node added or relabelled (a pool may now reach it).
func (p *IPPool) EventsToRegister(_ context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: ipClaimsResource, ActionType: fwk.Delete}, QueueingHintFn: isSchedulableAfterClaimDeleted},
		{Event: fwk.ClusterEvent{Resource: ipPoolsResource, ActionType: fwk.Add | fwk.Update}},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel}},
	}, nil
}

// isSchedulableAfterClaimDeleted queues the pod when the freed IP's pool is one it may use: any
// pool if it names none (its namespace or default pools decide), else one of those it names.
func isSchedulableAfterClaimDeleted(logger klog.Logger, pod *v1.Pod, oldObj, _ any) (fwk.QueueingHint, error) {
	pool := claimPool(oldObj)
	in, err := ipam.ParseIntent(pod)
	if err != nil || pool == "" || in.Pools == nil || slices.Contains(in.Pools, pool) {
		logger.V(5).Info("an IP was freed", "pod", klog.KObj(pod), "pool", pool)
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

// claimPool reads spec.pool of a deleted claim as the scheduler hands it over (unstructured, or a
// tombstone of one).
func claimPool(obj any) string {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		pool, _, _ := unstructured.NestedString(o.Object, "spec", "pool")
		return pool
	case *v1alpha1.IPClaim:
		return o.Spec.Pool
	}
	return ""
}
