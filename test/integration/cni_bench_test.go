package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/ecloud-io/ecloud/cni/netd"
	"github.com/ecloud-io/ecloud/cni/plugin"
	"github.com/ecloud-io/ecloud/test/benchstat"
)

// TestCNIBench measures CNI ADD and DEL latency through the real plugin binary, netd, the
// apiserver and the OVS userspace datapath: after a discarded warm-up wave, batches of 60 pods
// one after another (seq) and in waves of 20 in parallel (par20), in the order seq par20 par20
// seq, each part's two batches pooled (n=120). It runs only under `make bench-cni`
// (ECLOUD_BENCH=cni) and prints where the time goes (`cni phase` lines: n, p50, p99 per phase,
// from the plugin's timings and netd's phase hook; nearest-rank percentiles), then RESULT lines
// with their n, `RESULT cni_add_p99_ms=<n>` (20-parallel ADD p99) last.
func TestCNIBench(t *testing.T) {
	if os.Getenv("ECLOUD_BENCH") != "cni" {
		t.Skip("benchmark: run with make bench-cni (ECLOUD_BENCH=cni)")
	}
	netd.RegisterMetrics()
	ph := &benchPhases{d: map[string]map[string][]time.Duration{}}
	e := newCNIEnv(t, 1, "", func(e *cniEnv) {
		e.observePhase = func(op, phase, _ string, d time.Duration) { ph.add(op+".netd."+phase, d) }
		e.pluginEnv = map[string]string{plugin.TimingsEnv: "1"}
	})
	h := e.hosts[0]
	e.createPool("ecni-bench", "10.81.0.0/22", "10.81.0.1", 100, true)

	// Every part runs twice, in mirrored order after a discarded warm-up wave (seq par20 par20
	// seq), so neither always runs first or after the other heated netd, OVS and the apiserver;
	// each part's two batches are pooled.
	const batch, parallel = 60, 20
	newPods := func(prefix string, n int) []*pod {
		pods := make([]*pod, n)
		for i := range pods {
			pods[i] = e.newPod(h, fmt.Sprintf("%s-%d", prefix, i), map[string]string{}) // with a Pod object, as under a kubelet
		}
		return pods
	}
	// timed runs one plugin command and records its wall time, the plugin's own phases and
	// the rest (fork/exec of nsenter and the plugin, Go start-up) as op.exec.
	timed := func(op string, fn func() cniResult) time.Duration {
		start := time.Now()
		r := fn()
		wall := time.Since(start)
		ph.add(op+".wall", wall)
		pt := plugin.ParseTimings(r.Stderr)
		for k, ms := range pt {
			if k != "total" {
				ph.add(op+".plugin."+k, time.Duration(ms*float64(time.Millisecond)))
			}
		}
		if tot, ok := pt["total"]; ok {
			ph.add(op+".exec", wall-time.Duration(tot*float64(time.Millisecond)))
		}
		return wall
	}

	// CPU time per pod, by process, measures the cost independently of the machine's load.
	cpuUsed := map[string]map[string]time.Duration{} // part -> process -> CPU
	var cpuParts []string
	cpuPart := func(part string, fn func()) {
		before := benchCPU(h)
		fn()
		after := benchCPU(h)
		if cpuUsed[part] == nil {
			cpuUsed[part] = map[string]time.Duration{}
			cpuParts = append(cpuParts, part)
		}
		for who, v := range after {
			cpuUsed[part][who] += v - before[who]
		}
	}

	var mu sync.Mutex
	wave := func(ps []*pod, op string, fn func(*pod) cniResult, out *[]time.Duration) {
		var wg sync.WaitGroup
		for _, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := timed(op, func() cniResult { return fn(p) })
				mu.Lock()
				*out = append(*out, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	var seqAdd, seqDel, parAdd, parDel, warmAdd, warmDel []time.Duration
	seq := func(prefix string) {
		ph.setMode("seq")
		pods := newPods(prefix, batch)
		cpuPart("seq_add", func() {
			for _, p := range pods {
				seqAdd = append(seqAdd, timed("add", func() cniResult { return p.add(t) }))
			}
		})
		cpuPart("seq_del", func() {
			for _, p := range pods {
				seqDel = append(seqDel, timed("del", func() cniResult { return p.del(t, true) }))
			}
		})
	}
	par := func(prefix string) {
		ph.setMode("par20")
		pods := newPods(prefix, batch)
		cpuPart("par20_add", func() {
			for i := 0; i < batch; i += parallel {
				wave(pods[i:i+parallel], "add", func(p *pod) cniResult { return p.add(t) }, &parAdd)
			}
		})
		cpuPart("par20_del", func() {
			for i := 0; i < batch; i += parallel {
				wave(pods[i:i+parallel], "del", func(p *pod) cniResult { return p.del(t, true) }, &parDel)
			}
		})
	}
	ph.setMode("warmup")
	warm := newPods("warm", parallel)
	wave(warm, "add", func(p *pod) cniResult { return p.add(t) }, &warmAdd)
	wave(warm, "del", func(p *pod) cniResult { return p.del(t, true) }, &warmDel)
	fmt.Printf("cni order warm-up (%d ADD+DEL in parallel, discarded), then seq par20 par20 seq, %d pods per batch\n", len(warmAdd), batch)
	seq("seq1")
	par("par1")
	par("par2")
	seq("seq2")
	if len(h.podPorts()) != 0 {
		t.Errorf("ports left after the benchmark: %v", h.podPorts())
	}

	logNetdTimes(t)
	ph.print()
	for _, part := range cpuParts {
		pods := float64(2 * batch)
		for _, who := range []string{"test", "children", "ovs-vswitchd", "ovsdb-server"} {
			fmt.Printf("cni cpu   %-12s %-13s %6.1fms per pod (n=%d)\n", part, who, float64(cpuUsed[part][who].Microseconds())/1000/pods, 2*batch)
		}
		fmt.Printf("cni cpu   %-12s %-13s %6.1f per pod (n=%d)\n", part, "reconfigures", float64(cpuUsed[part]["reconfigures"])/pods, 2*batch)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{{"seq_add", seqAdd}, {"seq_del", seqDel}, {"par20_add", parAdd}, {"par20_del", parDel}} {
		fmt.Printf("RESULT cni_%s_p50_ms=%s n=%d\nRESULT cni_%s_p99_ms=%s n=%d\n", r.name, ms(benchstat.Percentile(r.d, 50)), len(r.d), r.name, ms(benchstat.Percentile(r.d, 99)), len(r.d))
	}
	fmt.Printf("RESULT cni_add_p99_ms=%s n=%d\n", ms(benchstat.Percentile(parAdd, 99)), len(parAdd))
}

// benchPhases collects phase durations per benchmark part (seq, par20).
type benchPhases struct {
	mu   sync.Mutex
	mode string
	d    map[string]map[string][]time.Duration // mode → phase → durations
}

func (b *benchPhases) setMode(m string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode = m
}

func (b *benchPhases) add(phase string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.d[b.mode] == nil {
		b.d[b.mode] = map[string][]time.Duration{}
	}
	b.d[b.mode][phase] = append(b.d[b.mode][phase], d)
}

// print writes one "cni phase" line per part and phase: count, p50, p99 (ms). ADD is
// add.exec + add.plugin.setup + add.plugin.lease (holding add.netd.ipam) + add.plugin.veth +
// add.plugin.attach (holding attach.netd.port and attach.netd.flows, which run in parallel).
func (b *benchPhases) print() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, mode := range []string{"seq", "par20"} {
		names := make([]string, 0, len(b.d[mode]))
		for n := range b.d[mode] {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Printf("cni phase %-5s %-22s %s\n", mode, n, benchstat.Millis(b.d[mode][n]))
		}
	}
}

// benchCPU is the CPU time used so far by the test process (apiserver, netd, the bench), its
// exited children (plugin runs, ovs-vsctl/ovs-ofctl runs by netd) and the host's OVS daemons.
func benchCPU(h *cniHost) map[string]time.Duration {
	out := map[string]time.Duration{}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out["test"] = tv(ru.Utime) + tv(ru.Stime)
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) == nil {
		out["children"] = tv(ru.Utime) + tv(ru.Stime)
	}
	// How often ovs-vswitchd reconfigured all its ports (OVSDB changes and every link change
	// in its netns trigger one), as a count in the same map.
	if rc, err := exec.Command("ovs-appctl", "-t", filepath.Join(h.OVS.Dir, "ovs-vswitchd.ctl"), "coverage/read-counter", "bridge_reconfigure").Output(); err == nil {
		n, _ := strconv.Atoi(strings.TrimSpace(string(rc)))
		out["reconfigures"] = time.Duration(n)
	}
	for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
		pid, _ := os.ReadFile(filepath.Join(h.OVS.Dir, d+".pid"))
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%s/stat", strings.TrimSpace(string(pid))))
		if err != nil {
			continue
		}
		// Fields after the ")" that ends the command name: utime and stime are the 12th and
		// 13th, in clock ticks (100 per second).
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.Atoi(f[11])
			s, _ := strconv.Atoi(f[12])
			out[d] = time.Duration(u+s) * 10 * time.Millisecond
		}
	}
	return out
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
