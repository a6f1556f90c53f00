package report

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// Topology is how the cluster is split into datacenters: the DualDatacenter plugin's args.
type Topology struct {
	// Key is the node label naming a node's datacenter.
	Key string `json:"topologyKey"`
	// Datacenters are the datacenters of the two-datacenter rule, in order.
	Datacenters []string `json:"datacenters"`
	// MaxSkew is the rule's maximum skew.
	MaxSkew int32 `json:"maxSkew"`
	// OutagePolicy is Hold or Degrade.
	OutagePolicy string `json:"outagePolicy,omitempty"`
	// Source says where these values come from (scheduler ConfigMap, flags, node labels).
	Source string `json:"source"`
}

// Datacenter is the node's datacenter, or "" when it is outside the configured ones.
func (t Topology) Datacenter(node *corev1.Node) string {
	if node == nil {
		return ""
	}
	if dc := node.Labels[t.Key]; slices.Contains(t.Datacenters, dc) {
		return dc
	}
	return ""
}

// Health is the datacenters' health: which have a usable node.
func (t Topology) Health(nodes []corev1.Node) *dcrule.Health {
	h := dcrule.NewHealth(t.Key, t.Datacenters)
	for i := range nodes {
		h.Observe(&nodes[i])
	}
	return h
}

// nodeIndex maps node names to nodes.
func nodeIndex(nodes []corev1.Node) map[string]*corev1.Node {
	m := make(map[string]*corev1.Node, len(nodes))
	for i := range nodes {
		m[nodes[i].Name] = &nodes[i]
	}
	return m
}
