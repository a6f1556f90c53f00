package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/clock"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agent"
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
	"github.com/ecloud-io/ecloud/node-agent/pkg/nodecheck"
	"github.com/ecloud-io/ecloud/node-agent/testutil/cgtest"
	"github.com/ecloud-io/ecloud/node-agent/testutil/falcontest"
	"github.com/ecloud-io/ecloud/test/harness"
)

// startNodeAgent runs the agent against the control plane until the test ends and returns the base
// URL of its /metrics and /healthz.
func startNodeAgent(t *testing.T, cp *harness.ControlPlane, cfg config.Config) (*agent.Agent, string) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	a, err := agent.New(ctx, cfg, cp.Kube, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node agent: %v", err)
		}
	})
	return a, "http://" + addr.String()
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// createRunningPod creates a pod bound to node and reports its containers running with the given
// containerd IDs, as the kubelet would.
func createRunningPod(t *testing.T, cp *harness.ControlPlane, ns, name, node string, containers map[string]string) *v1.Pod {
	t.Helper()
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.PodSpec{NodeName: node}}
	for c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: c, Image: "busybox"})
	}
	pod, err := cp.Kube.CoreV1().Pods(ns).Create(cp.Ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	pod.Status.Phase, pod.Status.QOSClass = v1.PodRunning, v1.PodQOSBestEffort
	for c, id := range containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, v1.ContainerStatus{Name: c, Image: "busybox",
			ContainerID: "containerd://" + id, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}})
	}
	pod, err = cp.Kube.CoreV1().Pods(ns).UpdateStatus(cp.Ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("set pod %s/%s running: %v", ns, name, err)
	}
	return pod
}

// TestNodeAgentEndToEnd: the agent discovers this node's pods through its informer, reads the real
// cgroups a shell process burns CPU in, and serves the values on /metrics and to Odin; pods of other
// nodes are ignored and deleted pods disappear.
func TestNodeAgentEndToEnd(t *testing.T) {
	tree := cgtest.NewV1(t, cgroups.DriverCgroupfs)
	cp := harness.Start(t)
	cp.CreateNodes(t, harness.TwoDatacenters(1))
	node := "dc-a-node-0"

	const id = "e2e0000000000000000000000000000000000000000000000000000000000001"
	pod := createRunningPod(t, cp, "default", "web", node, map[string]string{"app": id})
	createRunningPod(t, cp, "default", "elsewhere", "dc-b-node-0", map[string]string{"app": "other"})
	podDir := tree.AddPod(cgroups.QoSBestEffort, string(pod.UID))
	dir := tree.AddContainer(podDir, id)

	// A shell waits on stdin until it is in the container's cgroup, then burns CPU and sleeps.
	sh := exec.Command("sh", "-c", `read x; i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; exec sleep 300`)
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Process.Kill(); _ = sh.Wait() })
	if err := tree.Move(sh.Process.Pid, dir); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "go")

	recv := falcontest.New()
	defer recv.Close()
	cfg := config.Default()
	cfg.NodeName, cfg.Step, cfg.ListenAddress = node, time.Second, "127.0.0.1:0"
	cfg.Cgroup.Parent = tree.Hier.Parent
	cfg.Odin.URL, cfg.Odin.SpoolDir = recv.URL(), filepath.Join(t.TempDir(), "spool")
	_, base := startNodeAgent(t, cp, cfg)

	series := `container_cpu_usage_seconds_total{container="app",datacenter="dc-a",namespace="default",node="dc-a-node-0",pod="web"}`
	harness.Eventually(t, 60*time.Second, func() (bool, error) {
		_, body, err := httpGet(base + "/metrics")
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				var f float64
				_, _ = fmt.Sscan(v, &f)
				return f >= 0.05, nil // the shell's loop is done burning
			}
		}
		return false, nil
	}, "cpu usage of the burning shell on /metrics")
	_, body, _ := httpGet(base + "/metrics")
	for _, want := range []string{
		`container_memory_working_set_bytes{container="app",datacenter="dc-a",namespace="default",node="dc-a-node-0",pod="web"}`,
		`container_cpu_usage_seconds_total{container="",datacenter="dc-a",namespace="default",node="dc-a-node-0",pod="web"}`,
		"node_agent_collection_targets 2",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `pod="elsewhere"`) {
		t.Error("/metrics has a pod of another node")
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "container_") && (strings.Contains(line, `id="`) || strings.Contains(line, `name="`)) {
			t.Errorf("/metrics carries high-cardinality id/name labels: %s", line)
		}
	}
	if code, _, err := httpGet(base + "/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz = %d, %v", code, err)
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		for _, it := range recv.Items() {
			if it.Metric == "container_cpu_usage_seconds_total" && it.Endpoint == node &&
				it.Tags == "container=app,datacenter=dc-a,namespace=default,node=dc-a-node-0,pod=web" && it.CounterType == "COUNTER" {
				return true, nil
			}
		}
		return false, nil
	}, "Odin receiving the container's cpu usage")

	if err := cp.Kube.CoreV1().Pods("default").Delete(cp.Ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		_, body, err := httpGet(base + "/metrics")
		return err == nil && !strings.Contains(body, `pod="web"`), err
	}, "deleted pod gone from /metrics")
}

// TestNodeAgentBadInput: a malformed Odin URL only disables the push (logged); a directory that is
// no cgroup hierarchy, and a real cgroup hierarchy whose kubelet cgroup root holds no kubepods, are
// clear start errors.
func TestNodeAgentBadInput(t *testing.T) {
	cp := harness.Start(t)
	cp.CreateNodes(t, harness.TwoDatacenters(1))
	fixture := cgtest.NewFixture(t, cgroups.V2, cgroups.DriverCgroupfs)
	fixture.Mkdir("/kubepods")

	cfg := config.Default()
	cfg.NodeName, cfg.Step, cfg.ListenAddress = "dc-a-node-0", time.Second, "127.0.0.1:0"
	cfg.Cgroup.Root = fixture.Hier.Root
	cfg.Odin.URL, cfg.Odin.SpoolDir = "ftp//not a url", t.TempDir()
	a, base := startNodeAgent(t, cp, cfg)
	if a.Pusher() != nil {
		t.Error("a malformed Odin URL did not disable the push")
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		code, _, err := httpGet(base + "/healthz")
		return code == http.StatusOK, err
	}, "agent healthy without Odin")

	// The node check's Warning Event reaches the Node through the agent's recorder.
	_, ctx := ktesting.NewTestContext(t)
	rec, stop := agent.NewRecorder(ctx, cp.Kube, "dc-a-node-0")
	defer stop()
	nodecheck.Report(ctx, nodecheck.Facts{FSType: nodecheck.XFSMagic}, "/var/lib/containerd", "dc-a-node-0", rec)
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		evs, err := cp.Kube.CoreV1().Events("default").List(cp.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == "dc-a-node-0" && e.Reason == nodecheck.ReasonXFSNoFtype && e.Type == v1.EventTypeWarning {
				return true, nil
			}
		}
		return false, nil
	}, "XFSWithoutFtype Warning Event on the Node")

	cfg.Cgroup.Root = t.TempDir()
	if _, err := agent.New(ctx, cfg, cp.Kube, clock.RealClock{}); err == nil || !strings.Contains(err.Error(), "detect cgroup version") {
		t.Errorf("agent.New on an empty directory as cgroup root = %v, want a cgroup version detection error", err)
	}

	t.Run("a real cgroup root without kubepods", func(t *testing.T) {
		// The host's cgroup hierarchy, and as the kubelet's cgroup root a real cgroup with a
		// child that is not kubepods: the driver cannot be detected.
		tree := cgtest.NewReal(t, cgroups.DriverCgroupfs)
		root := filepath.Join(tree.Hier.Parent, "not-a-kubelet")
		tree.Mkdir(root)
		tree.Mkdir(filepath.Join(root, "system.slice"))
		cfg := cfg
		cfg.Cgroup.Root, cfg.Cgroup.Parent, cfg.Cgroup.Driver = tree.Hier.Root, root, "auto"
		_, err := agent.New(ctx, cfg, cp.Kube, clock.RealClock{})
		if !errors.Is(err, cgroups.ErrNoKubepods) || !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), "--cgroup-driver") {
			t.Errorf("agent.New with kubelet cgroup root %s (no kubepods below) = %v, want %v naming the root and --cgroup-driver", root, err, cgroups.ErrNoKubepods)
		}
	})
}
