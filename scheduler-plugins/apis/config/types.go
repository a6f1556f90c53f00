package config

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OutagePolicy says what DualDatacenter does while a datacenter is out (every node of it is
// unschedulable, NotReady or absent).
type OutagePolicy string

const (
	// OutageHold keeps pods that would break the rule Pending until the datacenter returns.
	OutageHold OutagePolicy = "Hold"
	// OutageDegrade schedules into the healthy datacenter(s) and records a Warning Event on the pod.
	OutageDegrade OutagePolicy = "Degrade"
)

// DualDatacenterArgs configures the DualDatacenter plugin.
type DualDatacenterArgs struct {
	metav1.TypeMeta

	// TopologyKey is the node label whose value names a node's datacenter.
	TopologyKey string
	// Datacenters are the datacenters (values of TopologyKey) every group must be spread over.
	// The list is authoritative: a datacenter without eligible nodes is still a datacenter.
	Datacenters []string
	// MaxSkew is the largest allowed difference between the pod counts of two datacenters.
	MaxSkew int32
	// OutagePolicy is Hold or Degrade.
	OutagePolicy OutagePolicy
}
