package ipam

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const metricsSubsystem = "ecloud_ipam"

var (
	allocations = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "allocations_total",
		Help:           "IPs allocated (new claims created), by pool and claim mode.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"pool", "mode"})
	refusals = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "refusals_total",
		Help:           "Allocations refused, by reason (PoolExhausted, NamespaceNotAllowed, ...).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	conflicts = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "allocation_conflicts_total",
		Help:           "Claim creations that lost a race for an IP (AlreadyExists) and were retried with another IP, by pool.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"pool"})
	allocationLatency = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem:      metricsSubsystem,
		Name:           "allocation_duration_seconds",
		Help:           "Time to serve one Allocate or Bind call, API calls included.",
		Buckets:        metrics.ExponentialBuckets(0.0005, 2, 14),
		StabilityLevel: metrics.ALPHA,
	})
	releases = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "releases_total",
		Help:           "Claims released (deleted), by the reason given to Release.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})

	registerOnce sync.Once
)

// RegisterMetrics registers the allocator's metrics with the legacy registry (served on /metrics
// by component-base). New calls it; it is safe to call more than once.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(allocations, refusals, conflicts, allocationLatency, releases)
	})
}
