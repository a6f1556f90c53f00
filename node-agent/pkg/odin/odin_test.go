package odin_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
	"github.com/ecloud-io/ecloud/node-agent/pkg/odin"
	"github.com/ecloud-io/ecloud/node-agent/pkg/scrape"
	"github.com/ecloud-io/ecloud/node-agent/testutil/falcontest"
	"github.com/ecloud-io/ecloud/node-agent/testutil/poll"
)

const step = 10 * time.Second

var (
	cpuDesc = &collector.Desc{Name: "container_cpu_usage_seconds_total", Kind: collector.Counter}
	memDesc = &collector.Desc{Name: "container_memory_working_set_bytes", Kind: collector.Gauge}
	netDesc = &collector.Desc{Name: "container_network_receive_bytes_total", Kind: collector.Counter, Labels: []string{"interface"}}
)

var targets = []*collector.Target{
	{Namespace: "shop", Pod: "web-0", Container: "app"},
	{Namespace: "shop", Pod: "web-0", Container: "sidecar"},
	{Namespace: "shop", Pod: "web-0"},
}

// snapshot builds the n-th step's snapshot: every series' value is n, so order is checkable.
func snapshot(start time.Time, n int) *scrape.Snapshot {
	snap := &scrape.Snapshot{Time: start.Add(time.Duration(n) * step), Node: "node-1", Datacenter: "dc-a"}
	for _, t := range targets {
		snap.Series = append(snap.Series,
			scrape.Series{Desc: cpuDesc, Target: t, Value: float64(n)},
			scrape.Series{Desc: memDesc, Target: t, Value: float64(n)})
		if t.Container == "" {
			snap.Series = append(snap.Series, scrape.Series{Desc: netDesc, Target: t, LabelValues: []string{"eth0"}, Value: float64(n)})
		}
	}
	return snap
}

const seriesPerStep = 7

func testConfig(url, spoolDir string) config.Odin {
	c := config.Default().Odin
	c.URL, c.SpoolDir, c.BatchSize = url, spoolDir, 3
	c.MinBackoff, c.MaxBackoff, c.Timeout = 2*time.Millisecond, 20*time.Millisecond, 2*time.Second
	return c
}

// startPusher runs a pusher until the returned stop function is called (an agent "restart").
func startPusher(t *testing.T, cfg config.Odin) (*odin.Pusher, func()) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	p, err := odin.New(cfg, step, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	return p, func() { cancel(); <-done }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, cond)
}

// TestOutageAndRestart: Odin is down for 10 simulated minutes (connections dropped, then 503, then
// 499) and the agent restarts in the middle; after recovery every sample arrives exactly once, in
// order per series.
func TestOutageAndRestart(t *testing.T) {
	agentmetrics.Register()
	recv := falcontest.New()
	defer recv.Close()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(recv.URL(), filepath.Join(dir, "spool"))
	cfg.Username, cfg.PasswordFile = "agent", pwFile
	ctx := context.Background()
	start := time.Now().Add(-20 * time.Minute).Truncate(time.Second)

	p, stop := startPusher(t, cfg)
	n := 0
	for ; n < 6; n++ { // one healthy minute
		p.Consume(ctx, snapshot(start, n))
	}
	waitFor(t, "the first minute delivered", func() bool { return len(recv.Items()) == 6*seriesPerStep })
	if u, pw, ok := (&http.Request{Header: recv.LastHeader()}).BasicAuth(); !ok || u != "agent" || pw != "s3cret" {
		t.Errorf("push carried basic auth %q/%q (%v), want agent/s3cret from the password file", u, pw, ok)
	}

	// Ten minutes of outage = 60 steps; the agent restarts after 30 of them.
	for i, mode := range []struct {
		m      falcontest.Mode
		status int
	}{{falcontest.Drop, 0}, {falcontest.Status, http.StatusServiceUnavailable}, {falcontest.Status, 499}} {
		recv.SetMode(mode.m, mode.status)
		before := recv.Requests()
		for end := n + 20; n < end; n++ {
			p.Consume(ctx, snapshot(start, n))
		}
		waitFor(t, fmt.Sprintf("retries in outage phase %d", i), func() bool { return recv.Requests() > before+2 })
		if i == 1 {
			stop()
			if _, items, _ := p.Spool().Stats(); items == 0 {
				t.Fatal("spool empty at restart although Odin was down")
			}
			p, stop = startPusher(t, cfg)
		}
	}
	defer stop()
	if got := len(recv.Items()); got != 6*seriesPerStep {
		t.Fatalf("receiver stored %d items during the outage", got-6*seriesPerStep)
	}
	recv.SetMode(falcontest.Accept, 0)
	for end := n + 3; n < end; n++ {
		p.Consume(ctx, snapshot(start, n))
	}
	waitFor(t, "everything delivered", func() bool { return len(recv.Items()) >= n*seriesPerStep })
	waitFor(t, "spool drained", func() bool { _, items, _ := p.Spool().Stats(); return items == 0 })

	items := recv.Items()
	if len(items) != n*seriesPerStep {
		t.Fatalf("received %d items, want exactly %d", len(items), n*seriesPerStep)
	}
	if recv.Invalid() != 0 {
		t.Errorf("receiver found %d invalid items", recv.Invalid())
	}
	perSeries := map[string][]falcontest.Item{}
	for _, it := range items {
		k := it.Metric + "|" + it.Tags
		perSeries[k] = append(perSeries[k], it)
	}
	if len(perSeries) != seriesPerStep {
		t.Fatalf("got %d series, want %d: %v", len(perSeries), seriesPerStep, keys(perSeries))
	}
	for k, its := range perSeries {
		for i, it := range its {
			wantTS := start.Add(time.Duration(i) * step).Unix()
			if it.Value != float64(i) || it.Timestamp != wantTS {
				t.Fatalf("series %s item %d: value %v ts %d, want %d at %d (duplicate, loss or reorder)", k, i, it.Value, it.Timestamp, i, wantTS)
			}
			if it.Endpoint != "node-1" || it.Step != 10 {
				t.Fatalf("series %s: endpoint %q step %d", k, it.Endpoint, it.Step)
			}
		}
	}
	wantTags := "container=app,datacenter=dc-a,namespace=shop,node=node-1,pod=web-0"
	if _, ok := perSeries["container_cpu_usage_seconds_total|"+wantTags]; !ok {
		t.Errorf("no series with tags %q: %v", wantTags, keys(perSeries))
	}
	if _, ok := perSeries["container_network_receive_bytes_total|datacenter=dc-a,interface=eth0,namespace=shop,node=node-1,pod=web-0"]; !ok {
		t.Errorf("pod-level network series missing: %v", keys(perSeries))
	}
	for _, it := range items {
		if it.Metric == "container_cpu_usage_seconds_total" && it.CounterType != "COUNTER" ||
			it.Metric == "container_memory_working_set_bytes" && it.CounterType != "GAUGE" {
			t.Fatalf("%s has counterType %s", it.Metric, it.CounterType)
		}
	}
}

func keys(m map[string][]falcontest.Item) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSpoolBoundDuringOutage: with a spool bound smaller than the outage, the oldest batches are
// dropped (and counted), the spool never exceeds its bound, and what survives is delivered in order.
func TestSpoolBoundDuringOutage(t *testing.T) {
	agentmetrics.Register()
	recv := falcontest.New()
	defer recv.Close()
	recv.SetMode(falcontest.Status, http.StatusBadGateway)
	cfg := testConfig(recv.URL(), filepath.Join(t.TempDir(), "spool"))
	cfg.SpoolMaxSize = 4 << 10
	droppedBefore := counter(t, "spool_dropped")
	p, stop := startPusher(t, cfg)
	defer stop()
	ctx := context.Background()
	start := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	const steps = 60
	for n := 0; n < steps; n++ {
		p.Consume(ctx, snapshot(start, n))
		if b, _, _ := p.Spool().Stats(); b > cfg.SpoolMaxSize {
			t.Fatalf("spool holds %d bytes, bound %d", b, cfg.SpoolMaxSize)
		}
	}
	_, kept, _ := p.Spool().Stats()
	dropped := int(counter(t, "spool_dropped") - droppedBefore)
	if dropped == 0 || dropped+kept != steps*seriesPerStep {
		t.Fatalf("dropped %d + kept %d != produced %d", dropped, kept, steps*seriesPerStep)
	}
	recv.SetMode(falcontest.Accept, 0)
	waitFor(t, "the kept items delivered", func() bool { return len(recv.Items()) == kept })
	// What survived is the newest data: the last step is complete.
	last := recv.Items()[len(recv.Items())-1]
	if last.Value != steps-1 {
		t.Errorf("last delivered value %v, want %d", last.Value, steps-1)
	}
}

// TestRejectAndInvalid: 400 drops the batch and counts it; a 200 with Invalid > 0 is counted.
func TestRejectAndInvalid(t *testing.T) {
	agentmetrics.Register()
	recv := falcontest.New()
	defer recv.Close()
	cfg := testConfig(recv.URL(), filepath.Join(t.TempDir(), "spool"))
	p, stop := startPusher(t, cfg)
	defer stop()
	rejected, invalid := counter(t, "rejected"), counter(t, "invalid")

	recv.SetMode(falcontest.Status, http.StatusBadRequest)
	if err := p.Enqueue(time.Now(), []odin.Item{{Endpoint: "n", Metric: "m", Timestamp: 1, Step: 10, CounterType: "GAUGE"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "400 counted as rejected", func() bool { return counter(t, "rejected") == rejected+1 })

	recv.SetMode(falcontest.Accept, 0)
	bad := []odin.Item{
		{Endpoint: "n", Metric: "ok", Timestamp: 1, Step: 10, CounterType: "GAUGE", Value: 1},
		{Endpoint: "n", Metric: "bad-type", Timestamp: 1, Step: 10, CounterType: "gauge", Value: 1},
		{Endpoint: "n", Metric: "bad-step", Timestamp: 1, Step: 0, CounterType: "GAUGE", Value: 1},
	}
	if err := p.Enqueue(time.Now(), bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Invalid counted", func() bool { return counter(t, "invalid") == invalid+2 })
	if got := len(recv.Items()); got != 1 {
		t.Errorf("receiver kept %d items, want 1", got)
	}
}

// TestUnreachableURL: a push URL nobody listens on gives retried, counted network errors; the data
// stays spooled.
func TestUnreachableURL(t *testing.T) {
	agentmetrics.Register()
	cfg := testConfig("http://127.0.0.1:1/api/push", filepath.Join(t.TempDir(), "spool"))
	before := pushErrors(t, "network")
	p, stop := startPusher(t, cfg)
	defer stop()
	p.Consume(context.Background(), snapshot(time.Now(), 0))
	waitFor(t, "network errors counted", func() bool { return pushErrors(t, "network") >= before+3 })
	if _, items, _ := p.Spool().Stats(); items != seriesPerStep {
		t.Errorf("spool holds %d items, want %d kept for retry", items, seriesPerStep)
	}
}

func counter(t *testing.T, outcome string) float64 {
	v, err := testutil.GetCounterMetricValue(agentmetrics.OdinItems.WithLabelValues(outcome))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func pushErrors(t *testing.T, reason string) float64 {
	v, err := testutil.GetCounterMetricValue(agentmetrics.OdinPushErrors.WithLabelValues(reason))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSpoolAgeBound uses a simulated clock: batches older than the max age are dropped.
func TestSpoolAgeBound(t *testing.T) {
	agentmetrics.Register()
	clk := testingclock.NewFakeClock(time.Now())
	cfg := testConfig("http://127.0.0.1:1/api/push", filepath.Join(t.TempDir(), "spool"))
	cfg.BatchSize = 100
	p, err := odin.New(cfg, step, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := clk.Now()
	for n := 0; n < 360+60; n++ { // 70 simulated minutes, nothing sent (Run not started)
		p.Consume(ctx, snapshot(start, n))
		clk.Step(step)
	}
	seg, ok := p.Spool().Oldest()
	if !ok {
		t.Fatal("spool empty")
	}
	if age := clk.Now().Sub(seg.Time); age > time.Hour {
		t.Errorf("oldest spooled batch is %v old, bound 1h", age)
	}
	if _, items, _ := p.Spool().Stats(); items > 361*seriesPerStep || items < 359*seriesPerStep {
		t.Errorf("spool keeps %d items, want about one hour (%d)", items, 360*seriesPerStep)
	}
}

// TestDefaultEncodingIsTransfers: with the default configuration the pusher sends plain JSON, which
// falcon transfer decodes, and everything arrives.
func TestDefaultEncodingIsTransfers(t *testing.T) {
	agentmetrics.Register()
	recv := falcontest.New()
	defer recv.Close()
	p, stop := startPusher(t, testConfig(recv.URL(), filepath.Join(t.TempDir(), "spool")))
	defer stop()
	rejected := counter(t, "rejected")
	for n := 0; n < 3; n++ {
		p.Consume(context.Background(), snapshot(time.Now(), n))
	}
	waitFor(t, "three steps delivered", func() bool { return len(recv.Items()) == 3*seriesPerStep })
	if enc := recv.LastHeader().Get("Content-Encoding"); enc != "" {
		t.Errorf("default push used Content-Encoding %q, want none", enc)
	}
	if got := counter(t, "rejected"); got != rejected {
		t.Errorf("%v items rejected", got-rejected)
	}
}

// TestGzipFallback: with --odin-gzip against a receiver that decodes plain JSON only (transfer's
// 400 "decode error"), no batch is lost: each is resent plain at once, the fallback is counted once
// and the pusher stays plain.
func TestGzipFallback(t *testing.T) {
	agentmetrics.Register()
	recv := falcontest.New()
	defer recv.Close()
	cfg := testConfig(recv.URL(), filepath.Join(t.TempDir(), "spool"))
	cfg.Gzip = true
	fallbacks := fallbackCount(t)
	rejected := counter(t, "rejected")
	p, stop := startPusher(t, cfg)
	defer stop()
	const steps = 4
	for n := 0; n < steps; n++ {
		p.Consume(context.Background(), snapshot(time.Now(), n))
	}
	waitFor(t, "every step delivered", func() bool { return len(recv.Items()) == steps*seriesPerStep })
	waitFor(t, "spool drained", func() bool { _, items, _ := p.Spool().Stats(); return items == 0 })
	if got := counter(t, "rejected"); got != rejected {
		t.Errorf("%v items rejected because of the encoding", got-rejected)
	}
	if got := fallbackCount(t) - fallbacks; got != 1 {
		t.Errorf("fallback counted %v times, want 1", got)
	}
	if p.Gzip() {
		t.Error("pusher still sends gzip after the receiver refused it")
	}
	// Each step is split into batches of BatchSize items: one refused gzip attempt, then one plain
	// request per batch.
	batches := steps * ((seriesPerStep + cfg.BatchSize - 1) / cfg.BatchSize)
	if got := recv.Requests(); got != batches+1 {
		t.Errorf("%d requests for %d batches, want %d (one refused gzip, then plain)", got, batches, batches+1)
	}
}

// TestGzipRejectedBothWays: a batch refused as gzip and as plain JSON is rejected (counted), not an
// encoding fallback.
func TestGzipRejectedBothWays(t *testing.T) {
	agentmetrics.Register()
	recv := falcontest.New()
	defer recv.Close()
	recv.SetMode(falcontest.Status, http.StatusBadRequest)
	cfg := testConfig(recv.URL(), filepath.Join(t.TempDir(), "spool"))
	cfg.Gzip = true
	fallbacks, rejected := fallbackCount(t), counter(t, "rejected")
	p, stop := startPusher(t, cfg)
	defer stop()
	if err := p.Enqueue(time.Now(), []odin.Item{{Endpoint: "n", Metric: "m", Timestamp: 1, Step: 10, CounterType: "GAUGE"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "400 to gzip and to plain counted as rejected", func() bool { return counter(t, "rejected") == rejected+1 })
	if recv.Requests() != 2 {
		t.Errorf("%d requests, want 2 (gzip, then plain)", recv.Requests())
	}
	if got := fallbackCount(t) - fallbacks; got != 0 || !p.Gzip() {
		t.Errorf("fallback counted %v times, gzip %v: a body refused in both encodings is no encoding problem", got, p.Gzip())
	}
}

func fallbackCount(t *testing.T) float64 {
	v, err := testutil.GetCounterMetricValue(agentmetrics.OdinGzipFallbacks)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
