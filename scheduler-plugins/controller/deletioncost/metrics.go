package deletioncost

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const subsystem = "ecloud_deletion_cost"

var (
	costPatches = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "patches_total", StabilityLevel: metrics.ALPHA,
		Help: "Pods whose controller.kubernetes.io/pod-deletion-cost annotation was updated.",
	})
	evictions = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "evictions_total", StabilityLevel: metrics.ALPHA,
		Help: "Evictions of surplus pods after a datacenter outage, by result (evicted, blocked by a PDB, error).",
	}, []string{"result"})
	syncDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem: subsystem, Name: "sync_duration_seconds", StabilityLevel: metrics.ALPHA,
		Help:    "Time to reconcile one namespace.",
		Buckets: metrics.ExponentialBuckets(0.0005, 2, 14),
	})
	groupPods = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: "ecloud_dualdatacenter", Name: "group_pods", StabilityLevel: metrics.ALPHA,
		Help: "Pods of each DualDatacenter group (kind deployment, statefulset, replicaset, or group for an ecloud.io/group label) per datacenter, " +
			"scheduled and not terminating, as the controller last counted them; 0 for a datacenter without any.",
	}, []string{"namespace", "kind", "group", "datacenter"})
	registerOnce sync.Once
)

// groupSeries remembers the label sets of groupPods set per namespace, so a group that is gone
// loses its series.
type groupSeries struct {
	mu   sync.Mutex
	byNS map[string]map[[4]string]bool
}

// set replaces namespace ns's series with the counts of groups.
func (s *groupSeries) set(ns string, groups map[string]*groupState, datacenters []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := map[[4]string]bool{}
	for _, gs := range groups {
		for _, dc := range datacenters {
			key := [4]string{ns, string(gs.group.Kind), gs.group.Name, dc}
			groupPods.WithLabelValues(key[:]...).Set(float64(gs.counts.Total[dc]))
			now[key] = true
		}
	}
	for key := range s.byNS[ns] {
		if !now[key] {
			groupPods.DeleteLabelValues(key[:]...)
		}
	}
	if s.byNS == nil {
		s.byNS = map[string]map[[4]string]bool{}
	}
	if len(now) == 0 {
		delete(s.byNS, ns)
		return
	}
	s.byNS[ns] = now
}

func registerMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(costPatches, evictions, syncDuration, groupPods) })
}
