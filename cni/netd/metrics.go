package netd

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	cniRequests = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      "ecloud_netd",
		Name:           "cni_request_duration_seconds",
		Help:           "Duration of CNI plugin requests to netd by operation and CNI result code (0 = success).",
		Buckets:        metrics.ExponentialBuckets(0.005, 2, 12),
		StabilityLevel: metrics.ALPHA,
	}, []string{"op", "code"})
	datapathSyncs = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      "ecloud_netd",
		Name:           "datapath_sync_duration_seconds",
		Help:           "Duration of datapath syncs by kind (full: ports, flows, routes; flows: flows only) and result.",
		Buckets:        metrics.ExponentialBuckets(0.005, 2, 12),
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind", "result"})
	phases = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      "ecloud_netd",
		Name:           "phase_duration_seconds",
		Help:           "Duration of the phases of CNI requests (op add/attach/del) and datapath syncs (op sync).",
		Buckets:        metrics.ExponentialBuckets(0.001, 2, 14),
		StabilityLevel: metrics.ALPHA,
	}, []string{"op", "phase"})
	// readyGauge reports the readiness of the daemon set with ReportReady (the /readyz answer).
	readyGauge = metrics.NewGaugeFunc(&metrics.GaugeOpts{
		Subsystem:      "ecloud_netd",
		Name:           "ready",
		Help:           "1 when netd is ready (informers synced, br-int and the CNI socket up: what /readyz answers), else 0.",
		StabilityLevel: metrics.ALPHA,
	}, func() float64 {
		if d := readyDaemon.Load(); d != nil && d.Ready() {
			return 1
		}
		return 0
	})
	locationDelay = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem:      "ecloud_netd",
		Name:           "location_delay_seconds",
		Help:           "Time from a location's write (an IPLocationSlice's spec.writeTime, or when a location relay derived the node's slice from the IPClaims) to netd applying it (across hosts: includes clock skew).",
		Buckets:        metrics.ExponentialBuckets(0.005, 2, 12),
		StabilityLevel: metrics.ALPHA,
	})
	locationsGauge = metrics.NewGaugeFunc(&metrics.GaugeOpts{
		Subsystem:      "ecloud_netd",
		Name:           "locations",
		Help:           "IPs in netd's location table (every bound IP of the cluster, from the location relays or the IPLocationSlices).",
		StabilityLevel: metrics.ALPHA,
	}, func() float64 {
		if d := readyDaemon.Load(); d != nil {
			return float64(d.locs.Len())
		}
		return 0
	})
	readyDaemon  atomic.Pointer[Daemon]
	registerOnce sync.Once
)

// ReportReady makes ecloud_netd_ready report d's readiness and ecloud_netd_locations its table.
func ReportReady(d *Daemon) { readyDaemon.Store(d) }

// RegisterMetrics registers netd's metrics with the legacy registry (once).
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(cniRequests, datapathSyncs, phases, locationDelay)
		legacyregistry.RawMustRegister(readyGauge, locationsGauge)
	})
}

func observeRequest(op string, start time.Time, code uint) {
	cniRequests.WithLabelValues(op, strconv.FormatUint(uint64(code), 10)).Observe(time.Since(start).Seconds())
}

func observeSync(kind string, start time.Time, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	datapathSyncs.WithLabelValues(kind, result).Observe(time.Since(start).Seconds())
}

// observePhase records how long a phase took since start.
func (d *Daemon) observePhase(op, phase, containerID string, start time.Time) {
	took := time.Since(start)
	phases.WithLabelValues(op, phase).Observe(took.Seconds())
	if d.observePhaseHook != nil {
		d.observePhaseHook(op, phase, containerID, took)
	}
}
