package ippool

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

const subsystem = "ecloud_ippool"

var (
	failures = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "reservation_failures_total",
		Help:           "Pods the IPPool plugin could not give an IP while scheduling, by reason (PoolExhausted, NamespaceNotAllowed, ...).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	freeDesc = metrics.NewDesc(subsystem+"_free_ips", "Free IPs of each pool as the scheduler sees them (reservations in flight counted as used).",
		[]string{"pool"}, nil, metrics.ALPHA, "")
	inFlightDesc = metrics.NewDesc(subsystem+"_reservations_in_flight", "IPs reserved for pods that are not bound yet.",
		nil, nil, metrics.ALPHA, "")
	registerOnce sync.Once
	current      struct {
		sync.Mutex
		p *IPPool
	}
)

// collector reports the current plugin's free IPs per pool and reservations in flight at scrape time.
type collector struct{ metrics.BaseStableCollector }

func (*collector) DescribeWithStability(ch chan<- *metrics.Desc) {
	ch <- freeDesc
	ch <- inFlightDesc
}

func (*collector) CollectWithStability(ch chan<- metrics.Metric) {
	current.Lock()
	p := current.p
	current.Unlock()
	if p == nil {
		return
	}
	for _, obj := range p.pools.GetStore().List() {
		pool, ok := obj.(*v1alpha1.IPPool)
		if !ok {
			continue
		}
		ch <- metrics.NewLazyConstMetric(freeDesc, metrics.GaugeValue, float64(p.free(pool.Name)), pool.Name)
	}
	ch <- metrics.NewLazyConstMetric(inFlightDesc, metrics.GaugeValue, float64(p.inFlight()))
}

// registerMetrics registers the metrics once per process and points the collector at the newest
// plugin instance (a scheduler with several profiles, or tests starting schedulers one by one).
func registerMetrics(p *IPPool) {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(failures)
		legacyregistry.CustomMustRegister(&collector{})
	})
	current.Lock()
	current.p = p
	current.Unlock()
}
