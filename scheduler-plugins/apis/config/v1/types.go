package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DualDatacenterArgs configures the DualDatacenter plugin (pluginConfig name "DualDatacenter").
type DualDatacenterArgs struct {
	metav1.TypeMeta `json:",inline"`

	// TopologyKey is the node label whose value names a node's datacenter.
	// Default: topology.kubernetes.io/zone.
	TopologyKey *string `json:"topologyKey,omitempty"`
	// Datacenters lists the datacenters (values of TopologyKey) every group must be spread over,
	// at least two. Required: there is no default, because guessing the datacenter names would
	// silently spread over the wrong (or a non-existent) datacenter.
	Datacenters []string `json:"datacenters,omitempty"`
	// MaxSkew is the largest allowed difference between two datacenters' pod counts of a group.
	// Default: 1.
	MaxSkew *int32 `json:"maxSkew,omitempty"`
	// OutagePolicy is Hold (pods stay Pending while a datacenter is out) or Degrade (schedule into
	// the healthy datacenter and emit a Warning Event). Default: Hold, which never breaks the rule.
	OutagePolicy *string `json:"outagePolicy,omitempty"`
}
