package ovsnode

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	restarts = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "ecloud_ovs",
		Name:           "vswitchd_restarts_total",
		Help:           "Restarts of ovs-vswitchd by the supervisor, by reason: no_upcall_handlers (it came up without upcall handler threads and would drop every upcall) or exited.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	up = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      "ecloud_ovs",
		Name:           "up",
		Help:           "1 while the daemon (ovsdb-server, ovs-vswitchd) runs under the supervisor.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"daemon"})
	registerOnce sync.Once
)

// RegisterMetrics registers the supervisor's metrics with the legacy registry (once).
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(restarts, up) })
}

func setUp(daemon string, running bool) {
	v := 0.0
	if running {
		v = 1
	}
	up.WithLabelValues(daemon).Set(v)
}
