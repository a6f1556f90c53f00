package dcrule

import (
	"sort"

	v1 "k8s.io/api/core/v1"
)

// Placed is a running pod of a group, its revision and its datacenter.
type Placed struct {
	Pod        *v1.Pod
	Revision   string
	Datacenter string
}

// DeletionCosts returns the controller.kubernetes.io/pod-deletion-cost each pod should carry. A
// ReplicaSet scale-down removes its lowest-cost pods first, and only compares its own pods, so a
// pod's cost is minus its position in its datacenter counting the group's other revisions there
// first: -(other revisions' pods in the datacenter + rank among its revision's pods there, oldest
// first). Then a scale-down takes pods from the datacenter where the group is fullest, removes
// the last pod of a datacenter only when every datacenter is down to one, and during a rolling
// update the old revision loses its pod in the datacenter the new revision already fills. Costs
// of existing pods do not change when a younger pod of the same revision joins.
func DeletionCosts(pods []Placed) map[*v1.Pod]int32 {
	type key struct{ dc, rev string }
	perDC := map[string]int{}
	own := map[key][]*v1.Pod{}
	for _, p := range pods {
		perDC[p.Datacenter]++
		k := key{p.Datacenter, p.Revision}
		own[k] = append(own[k], p.Pod)
	}
	costs := make(map[*v1.Pod]int32, len(pods))
	for k, list := range own {
		sort.Slice(list, func(i, j int) bool {
			ti, tj := list[i].CreationTimestamp, list[j].CreationTimestamp
			if !ti.Equal(&tj) {
				return ti.Before(&tj)
			}
			return list[i].Name < list[j].Name
		})
		others := perDC[k.dc] - len(list)
		for i, p := range list {
			costs[p] = int32(-(others + i + 1))
		}
	}
	return costs
}
