package integration

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/ecloud-io/ecloud/cni/netd"
)

// TestCNIBench measures CNI ADD and DEL latency through the real plugin binary, netd, the
// apiserver and the OVS userspace datapath: 100 pods one after another, then 100 pods in
// waves of 20 in parallel. It runs only under `make bench-cni` (ECLOUD_BENCH=cni) and prints
// RESULT lines, `RESULT cni_add_p99_ms=<n>` (20-parallel ADD p99) last.
func TestCNIBench(t *testing.T) {
	if os.Getenv("ECLOUD_BENCH") != "cni" {
		t.Skip("benchmark: run with make bench-cni (ECLOUD_BENCH=cni)")
	}
	netd.RegisterMetrics()
	e := newCNIEnv(t, 1, "")
	h := e.hosts[0]
	e.createPool("ecni-bench", "10.81.0.0/22", "10.81.0.1", 100, true)

	const total, parallel = 100, 20
	newPods := func(prefix string) []*pod {
		pods := make([]*pod, total)
		for i := range pods {
			pods[i] = e.newPod(h, fmt.Sprintf("%s-%d", prefix, i), map[string]string{}) // with a Pod object, as under a kubelet
		}
		return pods
	}
	timed := func(fn func()) time.Duration {
		start := time.Now()
		fn()
		return time.Since(start)
	}

	// Sequential.
	var seqAdd, seqDel []time.Duration
	pods := newPods("seq")
	for _, p := range pods {
		seqAdd = append(seqAdd, timed(func() { p.add(t) }))
	}
	for _, p := range pods {
		seqDel = append(seqDel, timed(func() { p.del(t, true) }))
	}

	// 20 in parallel.
	var mu sync.Mutex
	var parAdd, parDel []time.Duration
	wave := func(ps []*pod, op func(*pod), out *[]time.Duration) {
		var wg sync.WaitGroup
		for _, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := timed(func() { op(p) })
				mu.Lock()
				*out = append(*out, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	pods = newPods("par")
	for i := 0; i < total; i += parallel {
		wave(pods[i:i+parallel], func(p *pod) { p.add(t) }, &parAdd)
	}
	for i := 0; i < total; i += parallel {
		wave(pods[i:i+parallel], func(p *pod) { p.del(t, true) }, &parDel)
	}
	if len(h.podPorts()) != 0 {
		t.Errorf("ports left after the benchmark: %v", h.podPorts())
	}

	logNetdTimes(t)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{{"seq_add", seqAdd}, {"seq_del", seqDel}, {"par20_add", parAdd}, {"par20_del", parDel}} {
		fmt.Printf("RESULT cni_%s_p50_ms=%s\nRESULT cni_%s_p99_ms=%s\n", r.name, ms(percentile(r.d, 50)), r.name, ms(percentile(r.d, 99)))
	}
	fmt.Printf("RESULT cni_add_p99_ms=%s\n", ms(percentile(parAdd, 99)))
}

// percentile is the nearest-rank percentile of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

// logNetdTimes logs the mean netd-side time per request kind and per datapath sync, to show
// where ADD/DEL time goes.
func logNetdTimes(t *testing.T) {
	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Logf("gather metrics: %v", err)
		return
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "ecloud_netd_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			h := m.GetHistogram()
			if h.GetSampleCount() > 0 {
				t.Logf("%s{%s}: n=%d mean=%.1fms", mf.GetName(), strings.Join(labels, ","), h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount()))
			}
		}
	}
}
