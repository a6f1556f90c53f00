package rdt_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
	"github.com/ecloud-io/ecloud/node-agent/pkg/rdt"
	"github.com/ecloud-io/ecloud/node-agent/testutil/cgtest"
	"github.com/ecloud-io/ecloud/node-agent/testutil/poll"
	"github.com/ecloud-io/ecloud/test/prereq"
)

const prefix = "ecloud-"

const goodConfig = `
partitions:
  shared:
    l3Allocation: "100%"
    mbAllocation: ["100%"]
    classes:
      gold:
        l3Allocation: "60%"
        mbAllocation: ["80%"]
      bronze:
        l3Allocation: "20%"
        mbAllocation: ["30%"]
`

// writeTree writes a fake resctrl filesystem as the kernel mounts it: a 12-bit L3 on two cache
// domains, MBA, L3 monitoring, no group yet.
func writeTree(t *testing.T, root string) {
	files := map[string]string{
		"schemata":                         "L3:0=fff;1=fff\nMB:0=100;1=100\n",
		"tasks":                            "",
		"info/L3/cbm_mask":                 "fff\n",
		"info/L3/min_cbm_bits":             "1\n",
		"info/L3/num_closids":              "16\n",
		"info/L3/shareable_bits":           "0\n",
		"info/MB/bandwidth_gran":           "10\n",
		"info/MB/delay_linear":             "1\n",
		"info/MB/min_bandwidth":            "10\n",
		"info/MB/num_closids":              "8\n",
		"info/L3_MON/mon_features":         "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n",
		"info/L3_MON/num_rmids":            "176\n",
		"mon_data/mon_L3_00/llc_occupancy": "0\n",
	}
	// No class or monitoring group: the agent creates them (fakeKernel fills them as resctrl does).
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRDTFakeResctrl re-runs this package's TestRDTInNamespace in a new mount namespace where a fake
// resctrl tree is mounted (see TestMain).
func TestRDTFakeResctrl(t *testing.T) {
	prereq.Root(t, "creates a mount namespace for a fake resctrl mount")
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "resctrl"))
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestRDTInNamespace$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("child output:\n%s", out)
	if err != nil {
		t.Fatalf("RDT scenario in the mount namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestRDTInNamespace") {
		t.Fatal("child did not run TestRDTInNamespace")
	}
}

type pods []*v1.Pod

func (p pods) Pods() []*v1.Pod { return p }

func TestRDTInNamespace(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("runs inside TestRDTFakeResctrl's mount namespace")
	}
	root := filepath.Join(dir, "resctrl")
	_, ctx := ktesting.NewTestContext(t)

	// Pods: web opts in with the pod annotation (container "side" overrides to bronze); bad asks for
	// a class that does not exist.
	tree := cgtest.NewFixture(t, cgroups.V2, cgroups.DriverCgroupfs)
	web := pod("web", "aaaaaaaa-0000-0000-0000-000000000001", map[string]string{
		"rdt.resources.beta.kubernetes.io/pod":            "gold",
		"rdt.resources.beta.kubernetes.io/container.side": "bronze",
	}, "app", "side")
	bad := pod("bad", "bbbbbbbb-0000-0000-0000-000000000002", map[string]string{
		"rdt.resources.beta.kubernetes.io/pod": "platinum",
	}, "app")
	plain := pod("plain", "cccccccc-0000-0000-0000-000000000003", nil, "app")
	threads := map[string]string{"web/app": "100\n101\n", "web/side": "200\n", "bad/app": "300\n", "plain/app": "400\n"}
	for _, p := range []*v1.Pod{web, bad, plain} {
		podDir := tree.Hier.PodDir(cgroups.QoSBurstable, string(p.UID))
		for _, c := range p.Status.ContainerStatuses {
			tree.WriteFiles("", filepath.Join(podDir, c.Name+"-id"), map[string]string{"cgroup.threads": threads[p.Name+"/"+c.Name]})
		}
	}

	events := &eventLog{}
	bc := record.NewBroadcaster()
	defer bc.Shutdown()
	bc.StartEventWatcher(events.add)
	recorder := bc.NewRecorder(scheme.Scheme, v1.EventSource{Component: "ecloud-node-agent"})

	cfgFile := filepath.Join(dir, "rdt.yaml")
	if err := os.WriteFile(cfgFile, []byte(goodConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().RDT
	cfg.Enabled, cfg.ConfigFile, cfg.ReconcileInterval = true, cfgFile, 20*time.Millisecond
	kernel := startFakeKernel(t, root)
	for _, class := range []string{"gold", "bronze"} {
		if _, err := os.Stat(filepath.Join(root, prefix+class)); !os.IsNotExist(err) {
			t.Fatalf("class group %s exists before the agent started (%v)", prefix+class, err)
		}
	}
	m := rdt.New(cfg, tree.Hier, pods{web, bad, plain}, recorder)
	if err := m.Start(ctx); err != nil || !m.Available() {
		t.Fatalf("Start = %v, available %v", err, m.Available())
	}

	// Classes' schemata as configured: gold 60% of 0xfff = 0xff (lowest bits, exclusive per partition
	// is not requested so classes share from bit 0), MB 80%.
	if got := read(t, root, prefix+"gold/schemata"); !strings.Contains(got, "L3:0=ff;1=ff") || !strings.Contains(got, "MB:0=80;1=80") {
		t.Errorf("gold schemata = %q, want L3 0xff and MB 80 on both domains", got)
	}
	if got := read(t, root, prefix+"bronze/schemata"); !strings.Contains(got, "L3:0=7;1=7") || !strings.Contains(got, "MB:0=30;1=30") {
		t.Errorf("bronze schemata = %q, want L3 0x7 and MB 30", got)
	}

	// The reconcile loop moves every thread into its class and the pod's monitoring group, which
	// the agent creates (the fake kernel fills what the agent made, a moment after the mkdir).
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); m.Run(runCtx) }()
	waitFor(t, "web/app's threads 100 101 in gold", func() bool { return slices.Equal(tasksOrNone(root, prefix+"gold"), []string{"100", "101"}) })
	waitFor(t, "web/side's thread 200 in bronze", func() bool { return slices.Equal(tasksOrNone(root, prefix+"bronze"), []string{"200"}) })
	waitFor(t, "web's monitoring group in gold with 100 101", func() bool {
		return slices.Equal(tasksOrNone(root, prefix+"gold/mon_groups/"+prefix+string(web.UID)), []string{"100", "101"})
	})
	waitFor(t, "web's monitoring group in bronze", func() bool {
		return slices.Equal(tasksOrNone(root, prefix+"bronze/mon_groups/"+prefix+string(web.UID)), []string{"200"})
	})
	filled := kernel.filled()
	for _, g := range []string{prefix + "gold", prefix + "bronze", prefix + "gold/mon_groups/" + prefix + string(web.UID), prefix + "bronze/mon_groups/" + prefix + string(web.UID)} {
		if !slices.Contains(filled, g) {
			t.Errorf("group %s was not created by the agent (made by mkdir and filled: %v)", g, filled)
		}
	}

	// A new thread is picked up by the reconcile loop.
	tree.WriteFiles("", filepath.Join(tree.Hier.PodDir(cgroups.QoSBurstable, string(web.UID)), "app-id"), map[string]string{"cgroup.threads": "100\n101\n102\n"})
	waitFor(t, "new thread 102 in gold", func() bool { return slices.Contains(tasks(t, root, prefix+"gold"), "102") })

	// Unknown class: a Warning Event on the pod, nothing moved.
	waitFor(t, "unknown class event", func() bool { return events.has(bad.UID, rdt.ReasonUnknownClass, "platinum") })
	for _, class := range []string{"gold", "bronze"} {
		if slices.Contains(tasks(t, root, prefix+class), "300") {
			t.Errorf("thread of the pod with an unknown class landed in %s", class)
		}
	}
	if slices.Contains(tasks(t, root, prefix+"gold"), "400") {
		t.Error("thread of a pod without annotation moved")
	}

	// Monitoring data: pod-level series summed over cache domains.
	snap := &sinkLog{}
	if err := m.Collect(nil, &collector.Target{Namespace: "default", Pod: "web", PodUID: string(web.UID)}, snap); err != nil {
		t.Fatal(err)
	}
	if snap.values["container_llc_occupancy_bytes"] != 4*1048576 || snap.values["container_memory_bandwidth_bytes"] != 10000 ||
		snap.values["container_memory_bandwidth_local_bytes"] != 8000 {
		t.Errorf("monitoring series = %v", snap.values)
	}

	// Invalid configs are rejected with goresctrl's message; the previous schemata stay.
	before := read(t, root, prefix+"gold/schemata")
	for bad, msg := range map[string]string{
		"partitions:\n  p:\n    l3Allocation: \"0x5\"\n    classes:\n      gold: {}\n":                                                                  "more than one",
		"partitions:\n  a:\n    l3Allocation: \"70%\"\n    classes:\n      gold: {}\n  b:\n    l3Allocation: \"50%\"\n    classes:\n      bronze: {}\n": "exceeds 100%",
	} {
		err := m.ApplyConfig(ctx, []byte(bad))
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("invalid config accepted or wrong message: %v (want %q)", err, msg)
		}
	}
	if after := read(t, root, prefix+"gold/schemata"); after != before {
		t.Errorf("rejected config changed gold schemata: %q -> %q", before, after)
	}

	// Reload on change: a new file content is applied by the loop.
	writeFile(t, cfgFile, strings.Replace(goodConfig, `l3Allocation: "60%"`, `l3Allocation: "50%"`, 1))
	waitFor(t, "reloaded gold schemata", func() bool { return strings.Contains(read(t, root, prefix+"gold/schemata"), "L3:0=3f;1=3f") })
	cancel()
	<-done
}

func pod(name, uid string, ann map[string]string, containers ...string) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid), Annotations: ann},
		Status:     v1.PodStatus{Phase: v1.PodRunning, QOSClass: v1.PodQOSBurstable},
	}
	for _, c := range containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, v1.ContainerStatus{Name: c,
			ContainerID: "containerd://" + c + "-id", State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}})
	}
	return p
}

func read(t *testing.T, root, rel string) string {
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tasks(t *testing.T, root, group string) []string {
	f := strings.Fields(read(t, root, group+"/tasks"))
	slices.Sort(f)
	return f
}

// tasksOrNone is tasks, or nil while the group or its tasks file does not exist.
func tasksOrNone(root, group string) []string {
	b, err := os.ReadFile(filepath.Join(root, group, "tasks"))
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	slices.Sort(f)
	return f
}

func writeFile(t *testing.T, p, content string) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, cond)
}

type eventLog struct {
	mu     sync.Mutex
	events []*v1.Event
}

func (l *eventLog) add(e *v1.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) has(uid types.UID, reason, substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.InvolvedObject.UID == uid && e.Reason == reason && e.Type == v1.EventTypeWarning && strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

type sinkLog struct{ values map[string]float64 }

func (s *sinkLog) Add(d *collector.Desc, v float64, _ ...string) {
	if s.values == nil {
		s.values = map[string]float64{}
	}
	s.values[d.Name] = v
}
