// Package scrape runs every collector over every target once per step and hands the resulting
// snapshot to the outputs (Prometheus, Odin).
package scrape

import (
	"time"

	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// CommonLabels are the labels every series carries, in this order.
var CommonLabels = []string{"namespace", "pod", "container", "node", "datacenter"}

// Series is one sample of a snapshot.
type Series struct {
	Desc   *collector.Desc
	Target *collector.Target
	// LabelValues are the values of Desc.Labels.
	LabelValues []string
	Value       float64
}

// Snapshot is the result of one collection pass.
type Snapshot struct {
	Time       time.Time
	Node       string
	Datacenter string
	Series     []Series
}

// LabelValues returns the common label values of s followed by its own.
func (snap *Snapshot) LabelValues(s *Series) []string {
	out := make([]string, 0, len(CommonLabels)+len(s.LabelValues))
	out = append(out, s.Target.Namespace, s.Target.Pod, s.Target.Container, snap.Node, snap.Datacenter)
	return append(out, s.LabelValues...)
}

// sink appends a target's samples to a snapshot.
type sink struct {
	snap   *Snapshot
	target *collector.Target
}

func (s *sink) Add(d *collector.Desc, v float64, labelValues ...string) {
	var lv []string
	if len(labelValues) > 0 {
		lv = append([]string(nil), labelValues...)
	}
	s.snap.Series = append(s.snap.Series, Series{Desc: d, Target: s.target, LabelValues: lv, Value: v})
}
