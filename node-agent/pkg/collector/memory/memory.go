// Package memory collects memory usage, working set, RSS, page cache and OOM kills with cAdvisor's
// semantics (working set = usage − inactive_file).
package memory

import (
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// Name of the collector.
const Name = "memory"

var (
	usage      = &collector.Desc{Name: "container_memory_usage_bytes", Help: "Current memory usage in bytes, including all memory regardless of when it was accessed.", Kind: collector.Gauge}
	workingSet = &collector.Desc{Name: "container_memory_working_set_bytes", Help: "Current working set in bytes.", Kind: collector.Gauge}
	rss        = &collector.Desc{Name: "container_memory_rss", Help: "Size of RSS in bytes.", Kind: collector.Gauge}
	cache      = &collector.Desc{Name: "container_memory_cache", Help: "Number of bytes of page cache memory.", Kind: collector.Gauge}
	mapped     = &collector.Desc{Name: "container_memory_mapped_file", Help: "Size of memory mapped files in bytes.", Kind: collector.Gauge}
	swap       = &collector.Desc{Name: "container_memory_swap", Help: "Container swap usage in bytes.", Kind: collector.Gauge}
	maxUsage   = &collector.Desc{Name: "container_memory_max_usage_bytes", Help: "Maximum memory usage recorded in bytes.", Kind: collector.Gauge}
	failcnt    = &collector.Desc{Name: "container_memory_failcnt", Help: "Number of memory usage hits limits.", Kind: collector.Counter}
	oomEvents  = &collector.Desc{Name: "container_oom_events_total", Help: "Count of out of memory events observed for the container.", Kind: collector.Counter}
)

// Collector reads memory statistics.
type Collector struct{}

var _ collector.Collector = &Collector{}

// New returns the memory collector.
func New() *Collector { return &Collector{} }

// Name implements collector.Collector.
func (*Collector) Name() string { return Name }

// Describe implements collector.Collector.
func (*Collector) Describe() []*collector.Desc {
	return []*collector.Desc{usage, workingSet, rss, cache, mapped, swap, maxUsage, failcnt, oomEvents}
}

// stat holds the memory.stat keys we use; names differ between versions.
type stat struct {
	rss, cache, inactiveFile, mapped, swap uint64
}

// Collect implements collector.Collector.
func (*Collector) Collect(env *collector.Env, t *collector.Target, sink collector.Sink) error {
	dir := env.Hierarchy.Path("memory", t.Dir)
	v2 := env.Hierarchy.Version == cgroups.V2
	usageFile, peakFile := "/memory.usage_in_bytes", "/memory.max_usage_in_bytes"
	if v2 {
		usageFile, peakFile = "/memory.current", "/memory.peak"
	}
	u, _, err := env.Reader.ReadUint(dir + usageFile)
	if err != nil {
		return err
	}
	b, err := env.Reader.ReadFile(dir + "/memory.stat")
	if err != nil {
		return err
	}
	var s stat
	cgroups.ForEachKeyUint(b, func(k []byte, v uint64) {
		if v2 {
			switch string(k) {
			case "anon":
				s.rss = v
			case "file":
				s.cache = v
			case "inactive_file":
				s.inactiveFile = v
			case "file_mapped":
				s.mapped = v
			}
			return
		}
		switch string(k) {
		case "total_rss":
			s.rss = v
		case "total_cache":
			s.cache = v
		case "total_inactive_file":
			s.inactiveFile = v
		case "total_mapped_file":
			s.mapped = v
		case "total_swap":
			s.swap = v
		}
	})
	ws := uint64(0)
	if u > s.inactiveFile {
		ws = u - s.inactiveFile
	}
	sink.Add(usage, float64(u))
	sink.Add(workingSet, float64(ws))
	sink.Add(rss, float64(s.rss))
	sink.Add(cache, float64(s.cache))
	sink.Add(mapped, float64(s.mapped))
	if v2 {
		if sw, ok, err := env.Reader.ReadUint(dir + "/memory.swap.current"); err == nil && ok {
			sink.Add(swap, float64(sw))
		}
	} else {
		sink.Add(swap, float64(s.swap))
	}
	// The peak file is missing on kernels before 5.19 (v2); that is not an error.
	if p, ok, err := env.Reader.ReadUint(dir + peakFile); err == nil && ok {
		sink.Add(maxUsage, float64(p))
	}
	return collectEvents(env, dir, v2, sink)
}

// collectEvents reads OOM kills and limit hits: memory.oom_control + memory.failcnt on v1,
// memory.events on v2.
func collectEvents(env *collector.Env, dir string, v2 bool, sink collector.Sink) error {
	if v2 {
		b, err := env.Reader.ReadFile(dir + "/memory.events")
		if err != nil {
			return err
		}
		cgroups.ForEachKeyUint(b, func(k []byte, v uint64) {
			switch string(k) {
			case "oom_kill":
				sink.Add(oomEvents, float64(v))
			case "max":
				sink.Add(failcnt, float64(v))
			}
		})
		return nil
	}
	f, _, err := env.Reader.ReadUint(dir + "/memory.failcnt")
	if err != nil {
		return err
	}
	sink.Add(failcnt, float64(f))
	b, err := env.Reader.ReadFile(dir + "/memory.oom_control")
	if err != nil {
		return err
	}
	cgroups.ForEachKeyUint(b, func(k []byte, v uint64) {
		if string(k) == "oom_kill" {
			sink.Add(oomEvents, float64(v))
		}
	})
	return nil
}
