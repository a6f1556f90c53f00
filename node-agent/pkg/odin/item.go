// Package odin pushes snapshots to Odin (Open-Falcon lineage) as falcon JSON items, through a bounded
// on-disk spool, with retries and backoff.
package odin

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/scrape"
)

// Counter types of falcon.
const (
	CounterTypeGauge   = "GAUGE"
	CounterTypeCounter = "COUNTER"
)

// MaxMetricTagsLen is falcon transfer's limit on len(metric)+len(tags).
const MaxMetricTagsLen = 510

// Item is one falcon metric value.
type Item struct {
	Endpoint    string  `json:"endpoint"`
	Metric      string  `json:"metric"`
	Timestamp   int64   `json:"timestamp"`
	Step        int64   `json:"step"`
	Value       float64 `json:"value"`
	CounterType string  `json:"counterType"`
	Tags        string  `json:"tags"`
}

// tagEscaper keeps falcon's tag syntax intact: ',' separates tags and '=' key from value.
var tagEscaper = strings.NewReplacer(",", "_", "=", "_")

// Tags renders labels as falcon tags "k=v,k2=v2", sorted by key, skipping empty values.
func Tags(names, values []string) string {
	idx := make([]int, 0, len(names))
	for i := range names {
		if values[i] != "" {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool { return names[idx[a]] < names[idx[b]] })
	var sb strings.Builder
	for n, i := range idx {
		if n > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(names[i])
		sb.WriteByte('=')
		sb.WriteString(tagEscaper.Replace(values[i]))
	}
	return sb.String()
}

// Items converts a snapshot into falcon items; items falcon would reject as too long are returned
// separately.
func Items(snap *scrape.Snapshot, stepSeconds int64) (items []Item, tooLong []Item) {
	return appendItems(nil, snap, snap.Series, stepSeconds)
}

// appendItems converts series of snap, appending to items.
func appendItems(items []Item, snap *scrape.Snapshot, series []scrape.Series, stepSeconds int64) ([]Item, []Item) {
	var tooLong []Item
	ts := snap.Time.Unix()
	names := make([]string, 0, len(scrape.CommonLabels)+2)
	for i := range series {
		s := &series[i]
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue // not representable in JSON; falcon would reject it anyway
		}
		names = append(append(names[:0], scrape.CommonLabels...), s.Desc.Labels...)
		ct := CounterTypeGauge
		if s.Desc.Kind == collector.Counter {
			ct = CounterTypeCounter
		}
		it := Item{Endpoint: snap.Node, Metric: s.Desc.Name, Timestamp: ts, Step: stepSeconds, Value: s.Value,
			CounterType: ct, Tags: Tags(names, snap.LabelValues(s))}
		if len(it.Metric)+len(it.Tags) > MaxMetricTagsLen {
			tooLong = append(tooLong, it)
			continue
		}
		items = append(items, it)
	}
	return items, tooLong
}

// encoder gzips JSON batches, reusing its buffers between batches.
type encoder struct {
	buf bytes.Buffer
	zw  *gzip.Writer
}

// encode returns the gzip-compressed JSON array of items (the spool's storage format; sent as-is
// when gzip is on). The slice is valid until the next call.
func (e *encoder) encode(items []Item) ([]byte, error) {
	e.buf.Reset()
	if e.zw == nil {
		e.zw, _ = gzip.NewWriterLevel(&e.buf, gzip.BestSpeed)
	} else {
		e.zw.Reset(&e.buf)
	}
	if err := json.NewEncoder(e.zw).Encode(items); err != nil {
		return nil, fmt.Errorf("encode %d falcon items: %w", len(items), err)
	}
	if err := e.zw.Close(); err != nil {
		return nil, fmt.Errorf("compress %d falcon items: %w", len(items), err)
	}
	return e.buf.Bytes(), nil
}
