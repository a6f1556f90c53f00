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
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(costPatches, evictions, syncDuration) })
}
