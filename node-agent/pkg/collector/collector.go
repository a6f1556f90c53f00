// Package collector defines what every per-resource collector (cpu, memory, pids, blkio, network, psi)
// implements: it reads one target's cgroup files and emits samples under cAdvisor's metric names.
package collector

import (
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
)

// Kind tells gauges from monotonically increasing counters.
type Kind uint8

const (
	// Gauge is a value that goes up and down.
	Gauge Kind = iota
	// Counter only increases (until the cgroup is recreated).
	Counter
)

// Desc describes one metric family a collector emits.
type Desc struct {
	Name string
	Help string
	Kind Kind
	// Labels are the labels beyond the common ones (namespace, pod, container, node, datacenter).
	Labels []string
}

// Target is one cgroup to collect: a container, or a pod (Container == "") for pod-level series.
type Target struct {
	Namespace string
	Pod       string
	// Container is the container's name; empty for the pod-level cgroup.
	Container string
	PodUID    string
	// Dir is the cgroup relative to the hierarchy (kubepods/burstable/pod<uid>/<id>).
	Dir string
	// Children are the container cgroups of a pod-level target (where its processes live).
	Children []string
	// HostNetwork pods share the host's network namespace: no per-pod network series.
	HostNetwork bool
}

// Sink receives the samples of one target. Extra label values follow Desc.Labels' order.
type Sink interface {
	Add(d *Desc, value float64, labelValues ...string)
}

// Env is what collectors share: the hierarchy, a reader with a reused buffer, and the proc root.
type Env struct {
	Hierarchy cgroups.Hierarchy
	Reader    *cgroups.Reader
	// ProcRoot is /proc (fixture trees in tests).
	ProcRoot string
	// SysRoot is /sys (device names for block IO).
	SysRoot string
}

// Collector reads one kind of statistics for a target.
type Collector interface {
	// Name identifies the collector in logs and in the agent's own metrics.
	Name() string
	// Describe lists every metric family the collector can emit.
	Describe() []*Desc
	// Collect emits the target's samples; an error names the file that failed.
	Collect(env *Env, t *Target, sink Sink) error
}
