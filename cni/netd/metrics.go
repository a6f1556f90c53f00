package netd

import (
	"strconv"
	"sync"
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
		Help:           "Duration of datapath reconciles (ports, flows, routes) by result.",
		Buckets:        metrics.ExponentialBuckets(0.005, 2, 12),
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	registerOnce sync.Once
)

// RegisterMetrics registers netd's metrics with the legacy registry (once).
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(cniRequests, datapathSyncs)
	})
}

func observeRequest(op string, start time.Time, code uint) {
	cniRequests.WithLabelValues(op, strconv.FormatUint(uint64(code), 10)).Observe(time.Since(start).Seconds())
}

func observeSync(start time.Time, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	datapathSyncs.WithLabelValues(result).Observe(time.Since(start).Seconds())
}
