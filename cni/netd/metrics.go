package netd

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/ecloud-io/ecloud/cni/ovs"
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
	readyGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      "ecloud_netd",
		Name:           "ready",
		Help:           "1 when netd serves CNI ADDs on its datapath (system or netdev), 0 while it cannot (e.g. the openvswitch module is missing).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"datapath"})
	registerOnce sync.Once
)

// RegisterMetrics registers netd's metrics with the legacy registry (once).
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(cniRequests, datapathSyncs, phases, readyGauge)
	})
}

func setReady(datapath ovs.DatapathType, ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	readyGauge.WithLabelValues(string(datapath)).Set(v)
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
