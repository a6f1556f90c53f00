package agent_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/scrape"
	"github.com/ecloud-io/ecloud/node-agent/testutil/cgtest"
)

const mib = 1 << 20

// TestRealCgroupsV1 builds a kubepods hierarchy for each driver on the host's writable cgroup v1,
// runs processes that burn CPU (under a CFS quota), allocate memory and get OOM-killed, and checks
// the agent's values against what the processes did.
func TestRealCgroupsV1(t *testing.T) {
	for _, driver := range []cgroups.Driver{cgroups.DriverCgroupfs, cgroups.DriverSystemd} {
		t.Run(string(driver), func(t *testing.T) {
			tree := cgtest.NewV1(t, driver)
			testRealCgroups(t, tree, func(dirs map[string]string) {
				// 10% of a CPU in 10ms periods: the burner is throttled even on a busy machine.
				must(t, tree.Set("cpu", dirs["burn"], "cpu.cfs_period_us", "10000"))
				must(t, tree.Set("cpu", dirs["burn"], "cpu.cfs_quota_us", "1000"))
				must(t, tree.Set("memory", dirs["oom"], "memory.limit_in_bytes", strconv.Itoa(64*mib)))
			})
		})
	}
}

// TestRealCgroupsV2 is TestRealCgroupsV1 on a host with cgroup v2 (cpu.max, memory.max,
// memory.events), which also has PSI: it skips on a cgroup v1 host.
func TestRealCgroupsV2(t *testing.T) {
	for _, driver := range []cgroups.Driver{cgroups.DriverCgroupfs, cgroups.DriverSystemd} {
		t.Run(string(driver), func(t *testing.T) {
			tree := cgtest.NewV2(t, driver)
			snap := testRealCgroups(t, tree, func(dirs map[string]string) {
				must(t, tree.Set("", dirs["burn"], "cpu.max", "1000 10000"))
				must(t, tree.Set("", dirs["oom"], "memory.max", strconv.Itoa(64*mib)))
			})
			// PSI exists on v2 only.
			for _, res := range []string{"cpu", "memory", "io"} {
				if _, ok := lookup(snap, "web", "burn", "container_pressure_"+res+"_stalled_seconds_total"); !ok {
					t.Errorf("no container_pressure_%s_stalled_seconds_total for web/burn on cgroup v2", res)
				}
			}
			if w := value(t, snap, "web", "burn", "container_pressure_cpu_waiting_seconds_total"); w <= 0 {
				t.Errorf("cpu pressure waiting = %v s, want > 0 for a burner throttled to 10%% of a CPU", w)
			}
		})
	}
}

// testRealCgroups runs the workers in tree (limits sets the burner's CPU quota of 10 % in 10 ms
// periods and the OOM container's 64 MiB memory limit), checks the agent's values and returns
// the snapshot for the version-specific checks.
func testRealCgroups(t *testing.T, tree *cgtest.Tree, limits func(dirs map[string]string)) *scrape.Snapshot {
	t.Helper()
	uidA, uidB := "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "6fa459ea-ee8a-3ca4-894e-db77e160355e"
	podA := tree.AddPod(cgroups.QoSBurstable, uidA)
	podB := tree.AddPod(cgroups.QoSGuaranteed, uidB)
	ids := map[string]string{"burn": "b1" + strings.Repeat("0", 62), "mem": "m1" + strings.Repeat("0", 62), "oom": "o1" + strings.Repeat("0", 62)}
	dirs := map[string]string{
		"burn": tree.AddContainer(podA, ids["burn"]),
		"mem":  tree.AddContainer(podA, ids["mem"]),
		"oom":  tree.AddContainer(podB, ids["oom"]),
	}
	limits(dirs)

	workers := map[string]*cgtest.Worker{}
	for name, dir := range dirs {
		w, err := cgtest.StartWorker()
		must(t, err)
		t.Cleanup(w.Stop)
		must(t, tree.Move(w.Pid(), dir))
		workers[name] = w
	}
	must(t, workers["burn"].Do("burn 0.15"))
	must(t, workers["mem"].Do("alloc 100"))
	if err := workers["oom"].Do("alloc 200"); err == nil {
		t.Fatal("worker allocating 200MiB under a 64MiB limit was not OOM-killed")
	}
	_ = workers["oom"].Cmd.Wait()

	pods := []*v1.Pod{
		runningPod("shop", "web", uidA, v1.PodQOSBurstable, map[string]string{"burn": ids["burn"], "mem": ids["mem"]}),
		runningPod("shop", "db", uidB, v1.PodQOSGuaranteed, map[string]string{"oom": ids["oom"]}),
	}
	snap := collect(t, tree.Hier, "/proc", pods...)

	// CPU: the cgroup's usage is the burner's own CPU time (since it was moved in).
	procCPU, err := cgtest.ProcCPUSeconds(workers["burn"].Pid())
	must(t, err)
	usage := value(t, snap, "web", "burn", "container_cpu_usage_seconds_total")
	if usage < 0.15 || usage > procCPU+0.05 || usage < procCPU-0.15 {
		t.Errorf("burn cpu usage = %.3fs, want >= 0.15s and within [-0.15,+0.05]s of the process's %.3fs", usage, procCPU)
	}
	user := value(t, snap, "web", "burn", "container_cpu_user_seconds_total")
	sys := value(t, snap, "web", "burn", "container_cpu_system_seconds_total")
	if user+sys < usage-0.1 || user+sys > usage+0.1 {
		t.Errorf("user %.2f + system %.2f far from usage %.3f", user, sys, usage)
	}
	if p := value(t, snap, "web", "burn", "container_cpu_cfs_periods_total"); p < 100 {
		t.Errorf("cfs periods = %v, want >= 100 for 0.15s at a 10%% quota in 10ms periods", p)
	}
	if thr := value(t, snap, "web", "burn", "container_cpu_cfs_throttled_periods_total"); thr < 1 {
		t.Errorf("throttled periods = %v, want > 0 for a burner under a 10%% quota", thr)
	}
	if podUsage := value(t, snap, "web", "", "container_cpu_usage_seconds_total"); podUsage < usage {
		t.Errorf("pod-level cpu usage %.3f < its container's %.3f", podUsage, usage)
	}

	// Memory: 100MiB touched by the allocator is RSS and working set.
	rss := value(t, snap, "web", "mem", "container_memory_rss")
	ws := value(t, snap, "web", "mem", "container_memory_working_set_bytes")
	mu := value(t, snap, "web", "mem", "container_memory_usage_bytes")
	if rss < 100*mib || rss > 160*mib {
		t.Errorf("rss = %.1fMiB, want 100..160MiB", rss/mib)
	}
	if ws < rss || ws > mu {
		t.Errorf("working set %.1fMiB not within [rss %.1f, usage %.1f]MiB", ws/mib, rss/mib, mu/mib)
	}
	threads := value(t, snap, "web", "mem", "container_threads")
	if want := procThreads(t, workers["mem"].Pid()); threads != want {
		t.Errorf("container_threads = %v, want %v (from /proc)", threads, want)
	}

	// OOM: the kill is counted and limit hits recorded.
	if oom := value(t, snap, "db", "oom", "container_oom_events_total"); oom != 1 {
		t.Errorf("container_oom_events_total = %v, want 1", oom)
	}
	if fc := value(t, snap, "db", "oom", "container_memory_failcnt"); fc < 1 {
		t.Errorf("container_memory_failcnt = %v, want > 0", fc)
	}
	// Host-namespace workers: network series exist at pod level only.
	if _, ok := lookup(snap, "web", "burn", "container_network_receive_bytes_total", "interface=lo"); ok {
		t.Error("network series on a container; they belong to the pod")
	}
	if _, ok := lookup(snap, "web", "", "container_network_receive_bytes_total", "interface=lo"); ok {
		t.Error("loopback exported")
	}
	return snap
}

func procThreads(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return float64(n)
		}
	}
	t.Fatalf("no Threads in /proc/%d/status", pid)
	return 0
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
