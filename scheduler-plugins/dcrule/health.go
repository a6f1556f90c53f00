package dcrule

import (
	v1 "k8s.io/api/core/v1"
)

// NodeUsable reports whether new pods can run on the node: not cordoned, Ready, and without the
// taints the node lifecycle controller puts on unreachable or not-ready nodes.
func NodeUsable(node *v1.Node) bool {
	if node == nil || node.Spec.Unschedulable {
		return false
	}
	for _, t := range node.Spec.Taints {
		switch t.Key {
		case v1.TaintNodeNotReady, v1.TaintNodeUnreachable, v1.TaintNodeUnschedulable:
			if t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute {
				return false
			}
		}
	}
	for _, c := range node.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// Health collects which datacenters have at least one usable node.
type Health struct {
	topologyKey string
	configured  map[string]bool
	up          map[string]bool
}

// NewHealth starts an empty health record for the configured datacenters.
func NewHealth(topologyKey string, datacenters []string) *Health {
	h := &Health{topologyKey: topologyKey, configured: map[string]bool{}, up: map[string]bool{}}
	for _, dc := range datacenters {
		h.configured[dc] = true
	}
	return h
}

// Datacenter returns the node's configured datacenter, or "" when it has none of them.
func (h *Health) Datacenter(node *v1.Node) string {
	if node == nil {
		return ""
	}
	if dc := node.Labels[h.topologyKey]; h.configured[dc] {
		return dc
	}
	return ""
}

// Observe records one node.
func (h *Health) Observe(node *v1.Node) {
	if dc := h.Datacenter(node); dc != "" && NodeUsable(node) {
		h.MarkUp(dc)
	}
}

// MarkUp records that the datacenter has a usable node.
func (h *Health) MarkUp(dc string) { h.up[dc] = true }

// Up reports whether the datacenter has a usable node.
func (h *Health) Up(dc string) bool { return h.up[dc] }
