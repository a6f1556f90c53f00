package dcrule

import (
	"sort"

	v1 "k8s.io/api/core/v1"
)

// Placed is a running pod of a group and its datacenter.
type Placed struct {
	Pod        *v1.Pod
	Datacenter string
}

// DeletionCosts returns the controller.kubernetes.io/pod-deletion-cost each pod should carry so
// that a ReplicaSet scale-down (which removes the lowest cost first) takes pods from the fuller
// datacenter first and the last pod of a datacenter only when every datacenter is down to one.
// Within a datacenter the newest pod is kept longest (cost -1), the next -2, and so on, so during
// a rolling update the old revision's pod in the fuller datacenter goes first.
func DeletionCosts(pods []Placed) map[*v1.Pod]int32 {
	byDC := map[string][]*v1.Pod{}
	for _, p := range pods {
		byDC[p.Datacenter] = append(byDC[p.Datacenter], p.Pod)
	}
	costs := make(map[*v1.Pod]int32, len(pods))
	for _, list := range byDC {
		sort.Slice(list, func(i, j int) bool {
			ti, tj := list[i].CreationTimestamp, list[j].CreationTimestamp
			if !ti.Equal(&tj) {
				return tj.Before(&ti)
			}
			return list[i].Name < list[j].Name
		})
		for i, p := range list {
			costs[p] = int32(-(i + 1))
		}
	}
	return costs
}
