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
)

// TestCNIBench measures CNI ADD and DEL latency through the real plugin binary, netd, the
// apiserver and the OVS userspace datapath: 100 pods one after another, then 100 pods in
// waves of 20 in parallel. It runs only under `make bench-cni` (ECLOUD_BENCH=cni) and prints
// where the time goes (`cni phase` lines: p50/p99 per phase, from the plugin's timings and
// netd's phase hook), then RESULT lines, `RESULT cni_add_p99_ms=<n>` (20-parallel ADD p99) last.
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

	const total, parallel = 100, 20
	newPods := func(prefix string) []*pod {
		pods := make([]*pod, total)
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
	var cpu []string
	cpuPart := func(part string, fn func()) {
		before := benchCPU(h)
		fn()
		after := benchCPU(h)
		for _, who := range []string{"test", "children", "ovs-vswitchd", "ovsdb-server"} {
			cpu = append(cpu, fmt.Sprintf("cni cpu   %-12s %-13s %6.1fms per pod", part, who, float64((after[who]-before[who]).Microseconds())/1000/total))
		}
		cpu = append(cpu, fmt.Sprintf("cni cpu   %-12s %-13s %6.1f per pod", part, "reconfigures", float64(after["reconfigures"]-before["reconfigures"])/total))
	}

	// Sequential.
	ph.setMode("seq")
	var seqAdd, seqDel []time.Duration
	pods := newPods("seq")
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

	// 20 in parallel.
	var mu sync.Mutex
	var parAdd, parDel []time.Duration
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
	pods = newPods("par")
	ph.setMode("par20")
	cpuPart("par20_add", func() {
		for i := 0; i < total; i += parallel {
			wave(pods[i:i+parallel], "add", func(p *pod) cniResult { return p.add(t) }, &parAdd)
		}
	})
	cpuPart("par20_del", func() {
		for i := 0; i < total; i += parallel {
			wave(pods[i:i+parallel], "del", func(p *pod) cniResult { return p.del(t, true) }, &parDel)
		}
	})
	if len(h.podPorts()) != 0 {
		t.Errorf("ports left after the benchmark: %v", h.podPorts())
	}

	logNetdTimes(t)
	ph.print()
	for _, l := range cpu {
		fmt.Println(l)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{{"seq_add", seqAdd}, {"seq_del", seqDel}, {"par20_add", parAdd}, {"par20_del", parDel}} {
		fmt.Printf("RESULT cni_%s_p50_ms=%s\nRESULT cni_%s_p99_ms=%s\n", r.name, ms(percentile(r.d, 50)), r.name, ms(percentile(r.d, 99)))
	}
	fmt.Printf("RESULT cni_add_p99_ms=%s\n", ms(percentile(parAdd, 99)))
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
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, mode := range []string{"seq", "par20"} {
		names := make([]string, 0, len(b.d[mode]))
		for n := range b.d[mode] {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			ds := b.d[mode][n]
			fmt.Printf("cni phase %-5s %-22s n=%-4d p50=%7.1fms p99=%7.1fms\n", mode, n, len(ds), ms(percentile(ds, 50)), ms(percentile(ds, 99)))
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
