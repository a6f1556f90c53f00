package agent_test

import (
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/testutil/cgtest"
)

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0: 123456789   1000    2    3    0     0          0         0   987654     900    4    5    0     0       0          0
`

// v2Files are a container's cgroup v2 interface files.
var v2Files = map[string]string{
	"cgroup.procs":        "4242\n",
	"cpu.stat":            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 7\nthrottled_usec 350000\n",
	"memory.current":      "209715200\n",
	"memory.peak":         "314572800\n",
	"memory.stat":         "anon 104857600\nfile 94371840\nfile_mapped 1048576\ninactive_file 52428800\nactive_file 41943040\n",
	"memory.events":       "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n",
	"memory.swap.current": "0\n",
	"pids.current":        "17\n",
	"pids.max":            "max\n",
	"io.stat":             "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
	"cpu.pressure":        "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n",
	"memory.pressure":     "some avg10=0.00 avg60=0.00 avg300=0.00 total=250000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=100000\n",
	"io.pressure":         "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
}

// TestFixtureV2 checks cgroup v2 semantics for both drivers on fixture trees: every collector,
// cAdvisor's names and units, and pod-level network from the pod's netns.
func TestFixtureV2(t *testing.T) {
	procRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(procRoot, "4242", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(procRoot, "4242", "net", "dev"), []byte(netDev), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, driver := range []cgroups.Driver{cgroups.DriverCgroupfs, cgroups.DriverSystemd} {
		t.Run(string(driver), func(t *testing.T) {
			tree := cgtest.NewFixture(t, cgroups.V2, driver)
			if v, err := cgroups.DetectVersion(tree.Hier.Root); err != nil || v != cgroups.V2 {
				t.Fatalf("DetectVersion = %v, %v; want v2", v, err)
			}
			uid := "0f9c3a5e-1d2b-4c3d-8e9f-0a1b2c3d4e5f"
			id := "c0ffee"
			podDir := tree.Hier.PodDir(cgroups.QoSBestEffort, uid)
			tree.WriteFiles("", podDir, v2Files)
			tree.WriteFiles("", filepath.Join(podDir, tree.ContainerName(id)), v2Files)
			if d, err := cgroups.DetectDriver(tree.Hier.Root, cgroups.V2, "/"); err != nil || d != driver {
				t.Fatalf("DetectDriver = %v, %v; want %v", d, err, driver)
			}
			pod := runningPod("team", "api", uid, v1.PodQOSBestEffort, map[string]string{"app": id})
			snap := collect(t, tree.Hier, procRoot, pod)
			for _, tc := range []struct {
				container, metric string
				extra             []string
				want              float64
			}{
				{"app", "container_cpu_usage_seconds_total", nil, 2.5},
				{"app", "container_cpu_user_seconds_total", nil, 2},
				{"app", "container_cpu_system_seconds_total", nil, 0.5},
				{"app", "container_cpu_cfs_periods_total", nil, 40},
				{"app", "container_cpu_cfs_throttled_periods_total", nil, 7},
				{"app", "container_cpu_cfs_throttled_seconds_total", nil, 0.35},
				{"app", "container_memory_usage_bytes", nil, 200 * mib},
				{"app", "container_memory_working_set_bytes", nil, 150 * mib},
				{"app", "container_memory_rss", nil, 100 * mib},
				{"app", "container_memory_cache", nil, 90 * mib},
				{"app", "container_memory_mapped_file", nil, 1 * mib},
				{"app", "container_memory_max_usage_bytes", nil, 300 * mib},
				{"app", "container_memory_failcnt", nil, 12},
				{"app", "container_oom_events_total", nil, 2},
				{"app", "container_threads", nil, 17},
				{"app", "container_threads_max", nil, 0},
				{"app", "container_fs_reads_bytes_total", []string{"device=8:0"}, 4096},
				{"app", "container_fs_writes_bytes_total", []string{"device=8:0"}, 8192},
				{"app", "container_fs_reads_total", []string{"device=8:0"}, 1},
				{"app", "container_fs_writes_total", []string{"device=8:0"}, 2},
				{"app", "container_pressure_cpu_waiting_seconds_total", nil, 1.5},
				{"app", "container_pressure_cpu_stalled_seconds_total", nil, 0.5},
				{"app", "container_pressure_memory_waiting_seconds_total", nil, 0.25},
				{"", "container_cpu_usage_seconds_total", nil, 2.5},
				{"", "container_network_receive_bytes_total", []string{"interface=eth0"}, 123456789},
				{"", "container_network_receive_packets_total", []string{"interface=eth0"}, 1000},
				{"", "container_network_receive_errors_total", []string{"interface=eth0"}, 2},
				{"", "container_network_receive_packets_dropped_total", []string{"interface=eth0"}, 3},
				{"", "container_network_transmit_bytes_total", []string{"interface=eth0"}, 987654},
				{"", "container_network_transmit_packets_total", []string{"interface=eth0"}, 900},
				{"", "container_network_transmit_errors_total", []string{"interface=eth0"}, 4},
				{"", "container_network_transmit_packets_dropped_total", []string{"interface=eth0"}, 5},
			} {
				if got := value(t, snap, "api", tc.container, tc.metric, tc.extra...); got != tc.want {
					t.Errorf("%s{container=%q} = %v, want %v", tc.metric, tc.container, got, tc.want)
				}
			}
			if _, ok := lookup(snap, "api", "", "container_network_receive_bytes_total", "interface=lo"); ok {
				t.Error("loopback exported")
			}
			if _, ok := lookup(snap, "api", "app", "container_network_receive_bytes_total", "interface=eth0"); ok {
				t.Error("network series duplicated on the container")
			}
		})
	}
}

// TestUnreadableCgroup: a container whose files are missing or garbage gives errors for that
// collector only; the other containers and collectors are still collected.
func TestUnreadableCgroup(t *testing.T) {
	tree := cgtest.NewFixture(t, cgroups.V2, cgroups.DriverCgroupfs)
	uid := "11111111-2222-3333-4444-555555555555"
	podDir := tree.Hier.PodDir(cgroups.QoSBurstable, uid)
	tree.WriteFiles("", podDir, v2Files)
	tree.WriteFiles("", filepath.Join(podDir, "good"), v2Files)
	broken := map[string]string{}
	for k, v := range v2Files {
		broken[k] = v
	}
	broken["memory.current"] = "not-a-number\n"
	delete(broken, "cpu.stat")
	tree.WriteFiles("", filepath.Join(podDir, "bad"), broken)
	pod := runningPod("team", "mixed", uid, v1.PodQOSBurstable, map[string]string{"ok": "good", "broken": "bad"})
	snap := collect(t, tree.Hier, t.TempDir(), pod)
	if v := value(t, snap, "mixed", "ok", "container_memory_usage_bytes"); v != 200*mib {
		t.Errorf("healthy container memory = %v", v)
	}
	if _, ok := lookup(snap, "mixed", "broken", "container_memory_usage_bytes"); ok {
		t.Error("garbage memory.current produced a value")
	}
	if _, ok := lookup(snap, "mixed", "broken", "container_cpu_usage_seconds_total"); ok {
		t.Error("missing cpu.stat produced a value")
	}
	if v := value(t, snap, "mixed", "broken", "container_threads"); v != 17 {
		t.Errorf("pids of the broken container = %v, want 17 (other collectors keep working)", v)
	}
}
