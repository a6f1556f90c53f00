package integration

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecloud-io/ecloud/test/harness"
)

// startIPController runs the ip-controller binary against the apiserver (no leader election,
// the leak collector idle: the benchmark's claims have no pods) until the test ends; it returns
// the process's pid.
func (e *scaleEnv) startIPController(args ...string) int {
	tb := e.tb
	logPath := filepath.Join(e.dir, "ip-controller.log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	e.ipControllerMetrics = freeLoopbackAddr(tb)
	args = append([]string{"--kubeconfig=" + e.cp.Kubeconfig, "--leader-elect=false",
		"--bind-address=" + e.ipControllerMetrics, "--gc-interval=1h"}, args...)
	cmd := exec.Command(e.cfg.ipController, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start ip-controller: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	// Running once it has listed every claim: its log says so, or it has exited.
	harness.Eventually(tb, 5*time.Minute, func() (bool, error) {
		select {
		case <-exited:
			tb.Fatalf("ip-controller exited; log tail:\n%s", tail(logPath, 30))
		default:
		}
		return rssMiB(cmd.Process.Pid) > 0, nil
	}, "ip-controller running")
	e.ipControllerPID = cmd.Process.Pid
	return cmd.Process.Pid
}

// report prints every figure line again, then the RESULT lines: the per-claim design's with its
// name in them, the location-slice design's, the IPAM and scheduler ratios, and the goals last.
func (e *scaleEnv) report(low, high ipamFigures) {
	fmt.Println("scale summary:")
	for _, l := range e.lines {
		fmt.Println("  " + l)
	}
	r := func(format string, args ...any) { fmt.Printf("RESULT "+format+"\n", args...) }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var head *designFigures
	for _, f := range e.designs {
		suffix := "_" + strings.ReplaceAll(f.name, "-", "_")
		if f.failed != "" {
			r("scale_netd_failed%s=1 claims=%d meshed_nodes=%d", suffix, f.claims, f.mesh)
			continue
		}
		r("scale_propagation_p99_ms%s=%.0f n=%d missing=%d", suffix, ms(f.netdP99), f.netdN, f.netdMissing)
		r("scale_sim_propagation_p99_ms%s=%.0f n=%d missing=%d sim_nodes=%d", suffix, ms(f.simP99), f.simN, f.simMissing, f.simNodes)
		r("scale_netd_rss_mib%s=%.0f peak=%.0f claims=%d", suffix, f.netdRSS, f.netdHWM, f.claims)
		r("scale_ovs_vswitchd_rss_mib%s=%.0f flows=%d", suffix, f.vswitchRSS, f.flows)
		r("scale_objects_watched_per_node%s=%d", suffix, f.heldPerNode)
		r("scale_location_watchers%s=%d nodes=%d", suffix, f.locationWatchers, f.simNodes+1)
		if f.relayCPUPer1kPerNode > 0 {
			r("scale_relay_cpu_s_per_1k_changes_per_node%s=%.4f", suffix, f.relayCPUPer1kPerNode)
		}
		r("scale_apiserver_cpu_s_per_1k_changes_per_node%s=%.4f", suffix, f.apiserverCPUPer1kPerNode)
		r("scale_node_join_port_txns%s=%d meshed_nodes=%d", suffix, f.joinPortChanges, f.mesh)
		r("scale_cold_sync_s%s=%.1f", suffix, f.coldSync.Seconds())
		if f.name != todayDesignName {
			head = f
		}
	}
	if e.ipControllerPID > 0 {
		r("scale_ip_controller_rss_mib=%.0f claims=%d", rssMiB(e.ipControllerPID), len(e.claims))
	}
	r("scale_ipam_alloc_p99_ms=%.1f claims=%d n=%d", ms(high.allocP99), high.claims, high.allocN)
	r("scale_ipam_alloc_p99_ms_low=%.1f claims=%d n=%d", ms(low.allocP99), low.claims, low.allocN)
	r("scale_sched_pods_per_sec=%.1f claims=%d n=%d", high.podsPerSec, high.claims, high.pods)
	r("scale_sched_pods_per_sec_low=%.1f claims=%d n=%d", low.podsPerSec, low.claims, low.pods)
	r("scale_ipam_alloc_p99_ratio=%.2f goal<=1.2", ms(high.allocP99)/max(ms(low.allocP99), 0.001))
	r("scale_sched_slowdown_ratio=%.2f goal<=1.2", low.podsPerSec/max(high.podsPerSec, 0.001))
	if head == nil {
		return
	}
	r("scale_propagation_p99_ms=%.0f goal<=2000", ms(max(head.netdP99, head.simP99)))
	r("scale_netd_rss_mib=%.0f goal<=200", head.netdRSS)
	r("scale_objects_watched_per_node=%d goal<=10000", head.heldPerNode)
	if perRelay := (head.simNodes + 1) / max(head.locationWatchers, 1); head.locationWatchers < head.simNodes {
		// One relay per perRelay nodes, as in this run: the apiserver's location watchers at 5000 nodes.
		r("scale_location_watchers_at_5000_nodes=%d nodes_per_relay=%d goal<=50", (5000+perRelay-1)/perRelay, perRelay)
	}
	r("scale_node_join_port_txns=%d goal=0", head.joinPortChanges)
	r("scale_cold_sync_s=%.1f goal<=30", head.coldSync.Seconds())
}

// ipControllerMetrics is what the ip-controller's /metrics says about its location slices:
// the writes by operation and result, and the p50/p99 (bucket upper bounds) of its
// propagation (claim change seen to slice written), of the slice queue's wait and of a sync.
func (e *scaleEnv) ipControllerSliceMetrics() string {
	resp, err := http.Get("http://" + e.ipControllerMetrics + "/metrics")
	if err != nil {
		return fmt.Sprintf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Sprintf("metrics: %v", err)
	}
	text := string(body)
	var writes []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "ecloud_ipam_location_slice_writes_total{") {
			f := strings.Fields(line)
			writes = append(writes, strings.TrimPrefix(f[0], "ecloud_ipam_location_slice_writes_total")+"="+f[1])
		}
	}
	q := func(family, selector string) string {
		return fmt.Sprintf("p50 %s p99 %s", histogramQuantile(text, family, selector, 0.5), histogramQuantile(text, family, selector, 0.99))
	}
	return fmt.Sprintf("slice writes %s; propagation %s; queue wait %s; sync %s; API PUT %s; client rate limiter %s",
		strings.Join(writes, " "), q("ecloud_ipam_location_propagation_seconds", ""),
		q("workqueue_queue_duration_seconds", `name="iplocation-slices"`), q("workqueue_work_duration_seconds", `name="iplocation-slices"`),
		q("rest_client_request_duration_seconds", `verb="PUT"`), q("rest_client_rate_limiter_duration_seconds", ""))
}

var bucketRE = regexp.MustCompile(`^(\w+)_bucket\{(.*)\} (\S+)$`)

// histogramQuantile is the upper bound of the bucket that holds quantile q of a histogram in
// Prometheus text (the series whose labels contain selector).
func histogramQuantile(text, family, selector string, q float64) string {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for _, line := range strings.Split(text, "\n") {
		m := bucketRE.FindStringSubmatch(line)
		if m == nil || m[1] != family || !strings.Contains(m[2], selector) {
			continue
		}
		le := regexp.MustCompile(`le="([^"]+)"`).FindStringSubmatch(m[2])
		if le == nil {
			continue
		}
		bound, _ := strconv.ParseFloat(le[1], 64)
		if le[1] == "+Inf" {
			bound = math.Inf(1)
		}
		n, _ := strconv.ParseFloat(m[3], 64)
		bs = append(bs, bucket{bound, n})
	}
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return "-"
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	total := bs[len(bs)-1].n
	for _, b := range bs {
		if b.n >= q*total {
			return fmt.Sprintf("<=%gs", b.le)
		}
	}
	return "-"
}
