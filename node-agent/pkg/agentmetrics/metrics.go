// Package agentmetrics holds the node agent's own health metrics (component-base, legacyregistry).
package agentmetrics

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const subsystem = "node_agent"

var (
	// CollectionDuration is the wall time of one collection pass over every target.
	CollectionDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem: subsystem, Name: "collection_duration_seconds",
		Help:           "Wall time of one collection pass over every pod and container cgroup.",
		Buckets:        metrics.ExponentialBuckets(0.001, 2, 14),
		StabilityLevel: metrics.ALPHA,
	})
	// CollectionTargets is the number of cgroups collected in the last pass.
	CollectionTargets = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: subsystem, Name: "collection_targets",
		Help: "Pod and container cgroups collected in the last pass.", StabilityLevel: metrics.ALPHA,
	})
	// LastCollection is the unix time of the last finished pass.
	LastCollection = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: subsystem, Name: "last_collection_timestamp_seconds",
		Help: "Unix time of the last finished collection pass.", StabilityLevel: metrics.ALPHA,
	})
	// CollectErrors counts failed reads per collector.
	CollectErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "collect_errors_total",
		Help: "Targets a collector failed to read (missing or unreadable cgroup files).", StabilityLevel: metrics.ALPHA,
	}, []string{"collector"})
	// DiscoveryErrors counts pods/containers whose cgroup could not be found.
	DiscoveryErrors = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "discovery_errors_total",
		Help: "Running containers whose cgroup directory could not be found.", StabilityLevel: metrics.ALPHA,
	})

	// OdinItems counts items by outcome: sent (accepted), invalid (receiver's Invalid count),
	// rejected (HTTP 400, dropped), spool_dropped (spool bound exceeded, oldest dropped).
	OdinItems = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "odin_items_total",
		Help: "Odin push items by outcome: sent, invalid, rejected, spool_dropped.", StabilityLevel: metrics.ALPHA,
	}, []string{"outcome"})
	// OdinPushErrors counts failed push attempts (retried) by reason.
	OdinPushErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "odin_push_errors_total",
		Help: "Failed Odin push attempts that are retried, by reason (network, status code).", StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	// OdinGzipFallbacks counts receivers that refused a gzip body and took plain JSON instead.
	OdinGzipFallbacks = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "odin_gzip_fallbacks_total",
		Help:           "Times the Odin receiver refused a gzip body (400/415) and took the batch as plain JSON; the push stays plain afterwards.",
		StabilityLevel: metrics.ALPHA,
	})
	// OdinSpoolBytes and OdinSpoolItems describe the on-disk spool.
	OdinSpoolBytes = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: subsystem, Name: "odin_spool_bytes",
		Help: "Bytes of Odin items waiting in the on-disk spool.", StabilityLevel: metrics.ALPHA,
	})
	OdinSpoolItems = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: subsystem, Name: "odin_spool_items",
		Help: "Odin items waiting in the on-disk spool.", StabilityLevel: metrics.ALPHA,
	})

	// RDTAvailable is 1 when resctrl was found and initialized.
	RDTAvailable = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: subsystem, Name: "rdt_available",
		Help: "1 when resctrl is mounted and RDT control works, 0 otherwise.", StabilityLevel: metrics.ALPHA,
	})
	// RDTErrors counts RDT failures by operation.
	RDTErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "rdt_errors_total",
		Help: "RDT failures by operation (config, assign, monitor).", StabilityLevel: metrics.ALPHA,
	}, []string{"operation"})
	// RDTConfigGeneration counts applied RDT configurations.
	RDTConfigApplied = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem: subsystem, Name: "rdt_config_applied_total",
		Help: "RDT class configurations applied (start and every valid reload).", StabilityLevel: metrics.ALPHA,
	})

	// NodeCheckXFSNoFtype is 1 when the runtime root is overlayfs on XFS formatted without ftype=1.
	NodeCheckXFSNoFtype = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: subsystem, Name: "runtime_root_xfs_ftype_missing",
		Help: "1 when the container runtime root is overlayfs on XFS without ftype=1 (d_type), 0 otherwise.", StabilityLevel: metrics.ALPHA,
	})
)

var once sync.Once

// Register registers every metric in legacyregistry (idempotent).
func Register() {
	once.Do(func() {
		legacyregistry.MustRegister(CollectionDuration, CollectionTargets, LastCollection, CollectErrors,
			DiscoveryErrors, OdinItems, OdinPushErrors, OdinGzipFallbacks, OdinSpoolBytes, OdinSpoolItems,
			RDTAvailable, RDTErrors, RDTConfigApplied, NodeCheckXFSNoFtype)
	})
}
