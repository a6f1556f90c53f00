// Package psi collects pressure stall information of cgroup v2 (cpu, memory, io) as cAdvisor's
// container_pressure_*_{waiting,stalled}_seconds_total. On v1 it emits nothing.
package psi

import (
	"errors"
	"io/fs"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// Name of the collector.
const Name = "psi"

type resource struct {
	file            string
	waiting, stalld *collector.Desc
}

func newResource(name string) resource {
	return resource{
		file:    "/" + name + ".pressure",
		waiting: &collector.Desc{Name: "container_pressure_" + name + "_waiting_seconds_total", Help: "Total time duration tasks in the container have waited due to " + name + " congestion.", Kind: collector.Counter},
		stalld:  &collector.Desc{Name: "container_pressure_" + name + "_stalled_seconds_total", Help: "Total time duration no tasks in the container could make progress due to " + name + " congestion.", Kind: collector.Counter},
	}
}

var resources = []resource{newResource("cpu"), newResource("memory"), newResource("io")}

// Collector reads *.pressure files.
type Collector struct{}

var _ collector.Collector = &Collector{}

// New returns the PSI collector.
func New() *Collector { return &Collector{} }

// Name implements collector.Collector.
func (*Collector) Name() string { return Name }

// Describe implements collector.Collector.
func (*Collector) Describe() []*collector.Desc {
	var out []*collector.Desc
	for _, r := range resources {
		out = append(out, r.waiting, r.stalld)
	}
	return out
}

// Collect implements collector.Collector.
func (*Collector) Collect(env *collector.Env, t *collector.Target, sink collector.Sink) error {
	if env.Hierarchy.Version != cgroups.V2 {
		return nil
	}
	dir := env.Hierarchy.Path("", t.Dir)
	var fields [5][]byte
	for _, r := range resources {
		b, err := env.Reader.ReadFile(dir + r.file)
		if errors.Is(err, fs.ErrNotExist) {
			continue // PSI disabled in the kernel (psi=0)
		}
		if err != nil {
			return err
		}
		cgroups.ForEachLine(b, fields[:], func(f [][]byte) {
			if len(f) < 5 || len(f[4]) < 6 || string(f[4][:6]) != "total=" {
				return
			}
			us, err := cgroups.ParseUint(f[4][6:])
			if err != nil {
				return
			}
			switch string(f[0]) {
			case "some":
				sink.Add(r.waiting, float64(us)/1e6)
			case "full":
				sink.Add(r.stalld, float64(us)/1e6)
			}
		})
	}
	return nil
}
