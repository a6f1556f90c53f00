// Package promsink exposes the latest snapshot on /metrics through a component-base custom collector.
package promsink

import (
	"context"
	"sync/atomic"

	"k8s.io/component-base/metrics"

	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/scrape"
)

// Exporter serves the last snapshot; it is a scrape.Consumer and a metrics.StableCollector.
type Exporter struct {
	metrics.BaseStableCollector

	descs map[*collector.Desc]*metrics.Desc
	last  atomic.Pointer[scrape.Snapshot]
}

var (
	_ metrics.StableCollector = &Exporter{}
	_ scrape.Consumer         = &Exporter{}
)

// New returns an exporter for the given metric families.
func New(descs []*collector.Desc) *Exporter {
	e := &Exporter{descs: make(map[*collector.Desc]*metrics.Desc, len(descs))}
	for _, d := range descs {
		labels := append(append([]string(nil), scrape.CommonLabels...), d.Labels...)
		e.descs[d] = metrics.NewDesc(d.Name, d.Help, labels, nil, metrics.ALPHA, "")
	}
	return e
}

// Consume implements scrape.Consumer.
func (e *Exporter) Consume(_ context.Context, snap *scrape.Snapshot) { e.last.Store(snap) }

// DescribeWithStability implements metrics.StableCollector.
func (e *Exporter) DescribeWithStability(ch chan<- *metrics.Desc) {
	for _, d := range e.descs {
		ch <- d
	}
}

// CollectWithStability implements metrics.StableCollector.
func (e *Exporter) CollectWithStability(ch chan<- metrics.Metric) {
	snap := e.last.Load()
	if snap == nil {
		return
	}
	for i := range snap.Series {
		s := &snap.Series[i]
		d, ok := e.descs[s.Desc]
		if !ok {
			continue
		}
		vt := metrics.GaugeValue
		if s.Desc.Kind == collector.Counter {
			vt = metrics.CounterValue
		}
		ch <- metrics.NewLazyConstMetric(d, vt, s.Value, snap.LabelValues(s)...)
	}
}
