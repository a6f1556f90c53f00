package locrelay

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	streams = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: "ecloud_location_relay", Name: "streams",
		Help:           "Followers (netds) streaming from this relay now.",
		StabilityLevel: metrics.ALPHA,
	})
	slicesHeld = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: "ecloud_location_relay", Name: "slices",
		Help:           "Slices the relay holds (one per node from the IPClaims, or the IPLocationSlices).",
		StabilityLevel: metrics.ALPHA,
	})
	framesSent = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem: "ecloud_location_relay", Name: "frames_sent_total",
		Help:           "Frames written to followers (snapshots, changes, heartbeats).",
		StabilityLevel: metrics.ALPHA,
	})
	streamsDropped = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem: "ecloud_location_relay", Name: "streams_dropped_total",
		Help:           "Streams dropped because the follower fell a whole buffer behind (it resubscribes and gets a new snapshot).",
		StabilityLevel: metrics.ALPHA,
	})
	refusals = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "ecloud_location_relay", Name: "refused_total",
		Help:           "Stream requests refused, by reason (auth: token or access review, unsynced: the relay has not listed the locations yet, method).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	authorizations = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "ecloud_location_relay", Name: "authorizations_total",
		Help:           "Token decisions not served from the cache, by result (ok, unauthorized, forbidden, service unavailable).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(streams, slicesHeld, framesSent, streamsDropped, refusals, authorizations)
	})
}
