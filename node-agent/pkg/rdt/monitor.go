package rdt

import (
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

var (
	llcOccupancy = &collector.Desc{Name: "container_llc_occupancy_bytes", Help: "Last level cache usage statistics for the pod's RDT monitoring group, in bytes.", Kind: collector.Gauge}
	mbmTotal     = &collector.Desc{Name: "container_memory_bandwidth_bytes", Help: "Total memory bandwidth usage statistics for the pod's RDT monitoring group, in bytes.", Kind: collector.Counter}
	mbmLocal     = &collector.Desc{Name: "container_memory_bandwidth_local_bytes", Help: "Local memory bandwidth usage statistics for the pod's RDT monitoring group, in bytes.", Kind: collector.Counter}
)

// Name implements collector.Collector.
func (*Manager) Name() string { return Name }

// Describe implements collector.Collector.
func (*Manager) Describe() []*collector.Desc { return Descs() }

// Descs lists the monitoring metric families (known without a Manager).
func Descs() []*collector.Desc {
	return []*collector.Desc{llcOccupancy, mbmTotal, mbmLocal}
}

// Collect implements collector.Collector: pod-level series summed over cache domains and classes.
func (m *Manager) Collect(_ *collector.Env, t *collector.Target, sink collector.Sink) error {
	if t.Container != "" || !m.available {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var llc, total, local uint64
	found := false
	for k, mg := range m.monGroups {
		if k.uid != t.PodUID {
			continue
		}
		found = true
		for _, leaf := range mg.GetMonData().L3 {
			llc += leaf["llc_occupancy"]
			total += leaf["mbm_total_bytes"]
			local += leaf["mbm_local_bytes"]
		}
	}
	if found {
		sink.Add(llcOccupancy, float64(llc))
		sink.Add(mbmTotal, float64(total))
		sink.Add(mbmLocal, float64(local))
	}
	return nil
}
