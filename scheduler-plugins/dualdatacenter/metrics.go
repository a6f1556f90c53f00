package dualdatacenter

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const subsystem = "ecloud_dualdatacenter"

var (
	blockedTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "blocked_total",
		Help:           "Scheduling attempts in which no datacenter could take the pod without breaking the rule, by outage policy.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"outage_policy"})
	degradedTotal = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "degraded_placements_total",
		Help:           "Pods placed against the full rule because a datacenter was out (outagePolicy Degrade).",
		StabilityLevel: metrics.ALPHA,
	})
	inflightGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem:      subsystem,
		Name:           "reservations_in_flight",
		Help:           "Pods reserved in a datacenter that the scheduler snapshot does not hold yet.",
		StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(blockedTotal, degradedTotal, inflightGauge)
	})
}
