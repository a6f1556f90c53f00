// Package pids collects the task count and limit of the pids controller.
package pids

import (
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// Name of the collector.
const Name = "pids"

var (
	threads    = &collector.Desc{Name: "container_threads", Help: "Number of threads running inside the container.", Kind: collector.Gauge}
	threadsMax = &collector.Desc{Name: "container_threads_max", Help: "Maximum number of threads allowed inside the container, infinity if value is zero.", Kind: collector.Gauge}
)

// Collector reads pids.current and pids.max.
type Collector struct{}

var _ collector.Collector = &Collector{}

// New returns the pids collector.
func New() *Collector { return &Collector{} }

// Name implements collector.Collector.
func (*Collector) Name() string { return Name }

// Describe implements collector.Collector.
func (*Collector) Describe() []*collector.Desc { return []*collector.Desc{threads, threadsMax} }

// Collect implements collector.Collector.
func (*Collector) Collect(env *collector.Env, t *collector.Target, sink collector.Sink) error {
	dir := env.Hierarchy.Path("pids", t.Dir)
	cur, _, err := env.Reader.ReadUint(dir + "/pids.current")
	if err != nil {
		return err
	}
	sink.Add(threads, float64(cur))
	// "max" reads as 0 (unlimited), cAdvisor's convention.
	limit, _, err := env.Reader.ReadUint(dir + "/pids.max")
	if err != nil {
		return err
	}
	sink.Add(threadsMax, float64(limit))
	return nil
}
