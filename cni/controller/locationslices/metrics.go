package locationslices

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	sliceWrites = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "ecloud_ipam", Name: "location_slice_writes_total",
		Help:           "IPLocationSlice writes by the ip-controller, by operation (create, update, delete) and result.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"op", "result"})
	propagation = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem: "ecloud_ipam", Name: "location_propagation_seconds",
		Help:           "Time from an observed IPClaim (or Node or pool) change to the write of the node's IPLocationSlices that carries it (includes the batch delay).",
		Buckets:        metrics.ExponentialBuckets(0.01, 2, 12),
		StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(sliceWrites, propagation) })
}

func countWrite(op string, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	sliceWrites.WithLabelValues(op, result).Inc()
}
