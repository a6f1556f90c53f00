package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// cluster is the local two-host cluster of make up (hack/cluster), used by the e2e tests.
type cluster struct {
	root, workdir, prefix string
	config                *rest.Config
	kube                  *kubernetes.Clientset
	// startedHere: this test ran make up, so it also runs make down and checks what is left.
	startedHere bool
	// hostBefore: hostState() before make up, when startedHere
	hostBefore map[string]string
	// upErr: make up failed; the tests after the first fail at once
	upErr error
}

// hostState is what make up changes outside its namespaces, cgroups and work directory and make
// down must restore: the kernel-wide sysctls the kubelet sets, and the mountpoint directories of the
// hosts' per-host paths on the root filesystem.
func hostState() map[string]string {
	st := map[string]string{}
	for _, k := range []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"} {
		b, _ := os.ReadFile("/proc/sys/" + k)
		st["sysctl "+k] = strings.TrimSpace(string(b))
	}
	for _, d := range []string{"/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/etc/cni", "/etc/cni/net.d", "/opt/cni", "/opt/cni/bin", "/var/lib/ecloud", "/run/netns"} {
		_, err := os.Stat(d)
		st["dir "+d] = fmt.Sprint(err == nil)
	}
	return st
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// localCluster skips unless the e2e tests may run here, then reuses a running make-up cluster or
// starts one with the same script make up runs.
func localCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Getenv("ECLOUD_E2E") != "1" {
		t.Skip("end-to-end test on a real two-host cluster (make up): runs with ECLOUD_E2E=1, as make test's " +
			"second step (make e2e), after the unit and integration tests")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: make up creates network and mount namespaces, cgroups and runs containerd")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if shared != nil {
		if shared.upErr != nil {
			t.Fatalf("make up failed in an earlier test: %v", shared.upErr)
		}
		return shared
	}
	c := &cluster{root: root, workdir: envOr("WORKDIR", filepath.Join(root, "_work")), prefix: envOr("PREFIX", "eup")}
	kubeconfig := filepath.Join(c.workdir, "kubeconfig")
	if _, err := os.Stat(filepath.Join(c.workdir, "state", "up")); err == nil && c.connect(kubeconfig) == nil && c.ready() == nil {
		t.Logf("reusing the running cluster (%s); it is left running", kubeconfig)
		shared = c
		return c
	}
	c.startedHere = true
	c.hostBefore = hostState()
	// Every test of the run shares the cluster; TestMain ends one it started (tearDown).
	shared = c
	start := time.Now()
	out, err := c.script(45*time.Minute, "up.sh")
	t.Logf("make up (%s):\n%s", time.Since(start).Round(time.Second), tail(out, 40))
	if err != nil {
		c.upErr = err
		t.Fatalf("make up: %v", err)
	}
	if err := c.connect(kubeconfig); err != nil {
		c.upErr = err
		t.Fatal(err)
	}
	return c
}

// shared is the cluster of this test run: the first test that needs it reuses or starts it, the
// others get the same.
var shared *cluster

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil && shared.startedHere && !shared.tearDown() {
		code = 1
	}
	os.Exit(code)
}

// tearDown ends a cluster this run started: make down, nothing may be left behind, and a second
// make down must be harmless. ECLOUD_E2E_KEEP=1 keeps it. It reports whether all went well.
func (c *cluster) tearDown() bool {
	if os.Getenv("ECLOUD_E2E_KEEP") == "1" {
		fmt.Println("ECLOUD_E2E_KEEP=1: cluster left running (make down removes it)")
		return true
	}
	ok := true
	start := time.Now()
	out, err := c.script(5*time.Minute, "down.sh")
	fmt.Printf("make down (%s):\n%s\n", time.Since(start).Round(time.Second), tail(out, 20))
	if err != nil {
		fmt.Printf("FAIL: make down: %v\n", err)
		ok = false
	}
	if left := c.leftovers(); len(left) > 0 {
		fmt.Printf("FAIL: make down left behind:\n  %s\n", strings.Join(left, "\n  "))
		ok = false
	}
	if out, err := c.script(2*time.Minute, "down.sh"); err != nil {
		fmt.Printf("FAIL: second make down: %v\n%s\n", err, out)
		ok = false
	}
	return ok
}

func (c *cluster) connect(kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	// No client timeout (it would end watches); a pod-startup benchmark must not wait on the
	// client's own rate limiter.
	cfg.QPS, cfg.Burst = 200, 400
	c.config = cfg
	c.kube, err = kubernetes.NewForConfig(cfg)
	return err
}

func (c *cluster) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// script runs hack/cluster/NAME with args and returns its combined output.
func (c *cluster) script(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.root, "hack", "cluster", name), args...)
	cmd.Dir = c.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// leftovers lists what of the cluster is still on the machine: network namespaces, cgroups,
// processes, mounts and state.
func (c *cluster) leftovers() []string {
	var left []string
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if name, _, _ := strings.Cut(l, " "); strings.HasPrefix(name, c.prefix+"-") {
				left = append(left, "netns "+name)
			}
		}
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + c.prefix); len(m) > 0 {
		left = append(left, fmt.Sprintf("cgroups %v", m))
	}
	if _, err := os.Stat("/sys/fs/cgroup/" + c.prefix); err == nil {
		left = append(left, "cgroup /sys/fs/cgroup/"+c.prefix)
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], c.workdir+"/") {
				left = append(left, "mount "+f[4])
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(c.workdir+"/")) {
			left = append(left, fmt.Sprintf("process %s: %s", filepath.Base(filepath.Dir(p)), bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	if c.hostBefore != nil {
		after := hostState()
		for k, v := range c.hostBefore {
			if after[k] != v {
				left = append(left, fmt.Sprintf("%s: %s before make up, %s after make down", k, v, after[k]))
			}
		}
	}
	for _, p := range []string{"state", "hosts", "cp", "pki", "kubeconfig"} {
		if _, err := os.Stat(filepath.Join(c.workdir, p)); err == nil {
			left = append(left, "file "+filepath.Join(c.workdir, p))
		}
	}
	return left
}

// poll calls cond every 500 ms until it returns (true, nil); an error means "not yet, because"
// (retried, and reported if the timeout passes), so `return true, check()` waits for check to pass.
func poll(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		// Each attempt has its own deadline: near the end of the overall one, a client would
		// otherwise fail fast ("rate limiter Wait would exceed context deadline") and hide the
		// last real reason.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
