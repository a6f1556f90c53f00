package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/node-agent/testutil/falcontest"
)

// The guest node of make up (hack/cluster/guest.sh): a QEMU guest under software emulation (TCG)
// on Debian's own kernel, with cgroup v2 and the openvswitch module, joined as a third node. Its
// checks skip when make up ran without it. TCG is 5-10x slower than the namespace hosts: every
// wait here is on a condition, with generous limits.

// guestUnderlayIP is the guest's address on the datacenter network (hack/cluster/lib.sh GUEST_IP).
const guestUnderlayIP = "10.250.0.13"

// guestNodeName is the guest node's name when make up started one (state/guest), else "".
func (c *cluster) guestNodeName() string {
	b, err := os.ReadFile(filepath.Join(c.workdir, "state", "guest"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// requireGuest returns the guest node's name, or skips t saying why there is none.
func requireGuest(t *testing.T, c *cluster) string {
	t.Helper()
	g := c.guestNodeName()
	if g == "" {
		t.Skip("no guest node: make up skipped it (QEMU cannot run here, see make up's output) or ran with ECLOUD_GUEST_NODE=0")
	}
	return g
}

// guestExec runs the shell command cmd in the guest (hack/cluster/guest.sh exec) and returns its
// output; a non-zero exit status is an error carrying the output.
func (c *cluster) guestExec(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	x := exec.CommandContext(ctx, filepath.Join(c.root, "hack", "cluster", "guest.sh"), "exec", cmd)
	x.Env = append(os.Environ(), "PREFIX="+c.prefix, "WORKDIR="+c.workdir)
	out, err := x.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in the guest: %s: %w: %s", cmd, err, out)
	}
	return string(out), nil
}

// guestPod is a test workload pod pinned to the guest node (it tolerates the guest's taint).
func guestPod(name, node string, args ...string) *corev1.Pod {
	p := workloadPod(name, node)
	p.Labels = map[string]string{"dc": name}
	p.Spec.Tolerations = []corev1.Toleration{{Key: guestLabel, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	p.Spec.Containers[0].Args = args
	// Readiness under emulation: the probe's 1 s default timeout is short for a busy guest.
	p.Spec.Containers[0].ReadinessProbe.TimeoutSeconds = 5
	return p
}

// waitPodReady waits until pod ns/name is Ready with an IP, and returns it.
func waitPodReady(t *testing.T, c *cluster, ns, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	poll(t, timeout, "pod "+ns+"/"+name+" Ready", func(ctx context.Context) (bool, error) {
		p, err := c.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !podReady(p) || p.Status.PodIP == "" {
			return false, fmt.Errorf("pod %s on %q: %s %s", name, p.Spec.NodeName, p.Status.Phase, p.Status.Message)
		}
		got = p
		return true, nil
	})
	return got
}

// checkGuestNode: the guest runs Debian's kernel (not this machine's), cgroup v2, containerd 2, and
// its pods reach the namespace hosts' pods and back (the guest's datapath to theirs).
func checkGuestNode(t *testing.T, c *cluster, ns string, hostPods map[string]*corev1.Pod) {
	guest := requireGuest(t, c)
	t.Run("Debian's kernel, cgroup v2, the openvswitch module", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(c.root, "_out", "guest", "kver"))
		if err != nil {
			t.Fatalf("the guest kernel's version (make up writes _out/guest/kver): %v", err)
		}
		out, err := c.guestExec("uname -r; stat -fc %T /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.subtree_control; grep -c '^openvswitch ' /proc/modules")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Split(strings.TrimSpace(out), "\n")
		if len(f) != 4 {
			t.Fatalf("unexpected answer %q", out)
		}
		host, _ := exec.Command("uname", "-r").Output()
		if f[0] != strings.TrimSpace(string(want)) || f[0] == strings.TrimSpace(string(host)) {
			t.Errorf("guest kernel %q, want Debian's %q (this machine runs %q)", f[0], strings.TrimSpace(string(want)), strings.TrimSpace(string(host)))
		}
		if f[1] != "cgroup2fs" {
			t.Errorf("/sys/fs/cgroup is %s, want cgroup2fs", f[1])
		}
		for _, ctl := range []string{"cpu", "memory", "io", "pids"} {
			if !strings.Contains(" "+f[2]+" ", " "+ctl+" ") {
				t.Errorf("controller %s not enabled for the pods (%q)", ctl, f[2])
			}
		}
		if f[3] != "1" {
			t.Errorf("openvswitch module not loaded")
		}
	})
	t.Run("kubelet without a cgroup v1 override", func(t *testing.T) {
		out, err := c.guestExec("cat /mnt/node/kubelet.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "failCgroupV1") {
			t.Errorf("the guest's kubelet configuration sets failCgroupV1:\n%s", out)
		}
		ev, err := c.kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + guest + ",reason=CgroupV1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Items) > 0 {
			t.Errorf("the guest's kubelet reported %s: %s", ev.Items[0].Reason, ev.Items[0].Message)
		}
	})
	t.Run("kernel datapath: br-int in ovs-dpctl show", func(t *testing.T) {
		out, err := c.guestExec("ovs-vsctl get bridge br-int datapath_type")
		if err != nil {
			t.Fatal(err)
		}
		if dp := strings.Trim(strings.TrimSpace(out), `"`); dp != "system" {
			t.Skipf("netd runs br-int on the %q datapath on the guest; the kernel datapath needs netd --datapath=system", dp)
		}
		out, err = c.guestExec("ovs-dpctl show")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "system@ovs-system") || !strings.Contains(out, ": br-int") {
			t.Errorf("br-int is not in the kernel datapath:\n%s", out)
		}
	})

	name := "guest"
	if _, err := c.kube.CoreV1().Pods(ns).Create(context.Background(), guestPod(name, guest), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPodReady(t, c, ns, name, 5*time.Minute)
	if p.Spec.NodeName != guest {
		t.Fatalf("pod %s runs on %s, want the guest %s", name, p.Spec.NodeName, guest)
	}
	t.Run("pod on the guest <-> pods on both namespace hosts", func(t *testing.T) {
		for _, dc := range []string{"dc-a", "dc-b"} {
			to := hostPods[dc]
			poll(t, 2*time.Minute, "guest -> "+dc, func(ctx context.Context) (bool, error) {
				body, err := fetchFrom(ctx, c, ns, name, "http://"+to.Status.PodIP+":8080/")
				if err != nil {
					return false, err
				}
				if !strings.HasPrefix(body, "hello from "+dc+" ") {
					return false, fmt.Errorf("answer %q is not from pod %s", body, dc)
				}
				return true, nil
			})
			poll(t, 2*time.Minute, dc+" -> guest", func(ctx context.Context) (bool, error) {
				body, err := fetchFrom(ctx, c, ns, dc, "http://"+p.Status.PodIP+":8080/")
				if err != nil {
					return false, err
				}
				if !strings.HasPrefix(body, "hello from "+name+" ") {
					return false, fmt.Errorf("answer %q is not from pod %s", body, name)
				}
				return true, nil
			})
		}
	})
}

// checkGuestStickyMove: a sticky pod (a StatefulSet of one on the default scheduler: ecloud's
// admission policy keeps one-replica workloads off ecloud-scheduler; IP from pool-both) runs on the dc-b
// namespace host, is moved onto the guest node (its node selector changes: the StatefulSet
// controller replaces the pod), comes back with the same IP, and is reachable there from pods on
// both namespace hosts: the demo's stateful pods, which stay and share its pool's VLAN (100). The
// demo's stateless pods cannot be the probes: their pools are untagged, and pods of different VLANs
// do not reach each other on the overlay (docs/concepts.md).
func checkGuestStickyMove(t *testing.T, c *cluster, nodes map[string]string) {
	guest := requireGuest(t, c)
	ctx := context.Background()
	const name = "guest-sticky"
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: demoNS},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To[int32](1),
			ServiceName:         "stateful",
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: map[string]string{"app": name},
					Annotations: map[string]string{
						"ecloud.io/ip-pools": "pool-both", "ecloud.io/ip-policy": "sticky", "ecloud.io/ip-release": "OnScaleDown",
					},
				},
				Spec: guestPod(name, nodes["dc-b"]).Spec,
			},
		},
	}
	sets := c.kube.AppsV1().StatefulSets(demoNS)
	if _, err := sets.Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sets.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete StatefulSet %s: %v", name, err)
		}
	}()
	pod := name + "-0"
	before := waitPodReady(t, c, demoNS, pod, 3*time.Minute)
	if before.Spec.NodeName != nodes["dc-b"] {
		t.Fatalf("%s runs on %s, want %s", pod, before.Spec.NodeName, nodes["dc-b"])
	}
	ip := before.Status.PodIP
	t.Logf("%s/%s has IP %s on %s; moving it onto the guest %s", demoNS, pod, ip, before.Spec.NodeName, guest)
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/hostname":%q}}}}}`, guest)
	if _, err := sets.Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var moved *corev1.Pod
	poll(t, 5*time.Minute, pod+" recreated on the guest, Ready", func(ctx context.Context) (bool, error) {
		p, err := c.kube.CoreV1().Pods(demoNS).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.UID == before.UID || p.Spec.NodeName != guest || !podReady(p) {
			return false, fmt.Errorf("uid %s on %q: %s %s", p.UID, p.Spec.NodeName, p.Status.Phase, p.Status.Message)
		}
		moved = p
		return true, nil
	})
	if moved.Status.PodIP != ip {
		t.Fatalf("%s came back on the guest with IP %s, had %s", pod, moved.Status.PodIP, ip)
	}
	probes, err := c.kube.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{LabelSelector: "app=stateful"})
	if err != nil {
		t.Fatal(err)
	}
	for _, dc := range []string{"dc-a", "dc-b"} {
		probe := ""
		for i := range probes.Items {
			if p := &probes.Items[i]; p.Spec.NodeName == nodes[dc] && podReady(p) {
				probe = p.Name
			}
		}
		if probe == "" {
			t.Errorf("no Ready stateful pod on %s to probe from", nodes[dc])
			continue
		}
		poll(t, 2*time.Minute, fmt.Sprintf("%s (on %s) -> %s at %s on the guest", probe, nodes[dc], pod, ip), func(ctx context.Context) (bool, error) {
			body, err := fetchFrom(ctx, c, demoNS, probe, "http://"+ip+":8080/")
			if err != nil {
				return false, err
			}
			if !strings.HasPrefix(body, "hello from "+pod+" ") {
				return false, fmt.Errorf("answer %q is not from %s", body, pod)
			}
			return true, nil
		})
	}
}

// guestLoadPods are the node agent's test pods on the guest: one burns a CPU, one holds 200 MiB.
var guestLoadPods = map[string][]string{
	"guest-burn": {"-burn"},
	"guest-hold": {"-hold-mib=200"},
}

// startGuestLoad creates the node agent's test pods on the guest and waits until they run. The
// burning pod asks for what it uses, one CPU (Guaranteed: requests = limits, cpu.weight 39 directly
// under kubepods). As a BestEffort pod (kubepods/besteffort weighs 1) it got about half a vCPU while
// the guest's kubelet and containerd (system.slice, weight 100) were busy starting pods under
// emulation.
func startGuestLoad(t *testing.T, c *cluster, ns, guest string) {
	t.Helper()
	for name, args := range guestLoadPods {
		p := guestPod(name, guest, args...)
		if name == "guest-burn" {
			r := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("64Mi")}
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: r, Limits: r}
		}
		if _, err := c.kube.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name := range guestLoadPods {
		waitPodReady(t, c, ns, name, 5*time.Minute)
	}
}

// sample is one value of a series at the agent's collection time (seconds, the guest's clock).
type sample struct {
	ts    int64
	value float64
}

// odinSeries returns the samples Odin received of metric for container "workload" of pod ns/pod
// from endpoint, oldest first.
func odinSeries(items []falcontest.Item, endpoint, metric, ns, pod string) []sample {
	var out []sample
	for _, it := range items {
		if it.Endpoint == endpoint && it.Metric == metric && hasTag(it.Tags, "namespace", ns) && hasTag(it.Tags, "pod", pod) &&
			hasTag(it.Tags, "container", "workload") {
			out = append(out, sample{it.Timestamp, it.Value})
		}
	}
	// Pushes arrive in order; equal timestamps (a retried push) keep the first.
	var dedup []sample
	for _, s := range out {
		if len(dedup) == 0 || s.ts > dedup[len(dedup)-1].ts {
			dedup = append(dedup, s)
		}
	}
	return dedup
}

func hasTag(tags, k, v string) bool {
	for _, kv := range strings.Split(tags, ",") {
		if kv == k+"="+v {
			return true
		}
	}
	return false
}

// checkGuestNodeAgent: on real cgroup v2, the burning pod's CPU counter rises at 1 s/s (±20 %,
// over at least 40 s of the agent's own timestamps), the holding pod's working set is ≥ 200 MiB, PSI
// series exist; all of it pushed to Odin and on the guest agent's /metrics.
func checkGuestNodeAgent(t *testing.T, c *cluster, odin *falcontest.Receiver, ns, guest string) {
	t.Run("CPU of a pod burning one CPU rises at 1 s/s", func(t *testing.T) {
		var rate float64
		poll(t, 4*time.Minute, "40 s of container_cpu_usage_seconds_total of guest-burn in Odin", func(context.Context) (bool, error) {
			s := odinSeries(odin.Items(), guest, "container_cpu_usage_seconds_total", ns, "guest-burn")
			if len(s) < 2 || s[len(s)-1].ts-s[0].ts < 40 {
				return false, fmt.Errorf("%d samples", len(s))
			}
			first, last := s[0], s[len(s)-1]
			rate = (last.value - first.value) / float64(last.ts-first.ts)
			t.Logf("guest-burn: %.1f CPU-s over %d s: %.3f s/s", last.value-first.value, last.ts-first.ts, rate)
			return true, nil
		})
		if rate < 0.8 || rate > 1.2 {
			t.Errorf("container_cpu_usage_seconds_total of guest-burn rises at %.3f s/s, want 1 ± 0.2", rate)
		}
	})
	t.Run("working set of a pod holding 200 MiB", func(t *testing.T) {
		poll(t, 3*time.Minute, "container_memory_working_set_bytes of guest-hold >= 200 MiB in Odin", func(context.Context) (bool, error) {
			s := odinSeries(odin.Items(), guest, "container_memory_working_set_bytes", ns, "guest-hold")
			if len(s) == 0 {
				return false, errors.New("no sample yet")
			}
			if v := s[len(s)-1].value; v < 200<<20 {
				return false, fmt.Errorf("working set %.0f MiB", v/(1<<20))
			}
			return true, nil
		})
	})
	t.Run("PSI series", func(t *testing.T) {
		for _, m := range []string{"container_pressure_cpu_waiting_seconds_total", "container_pressure_memory_stalled_seconds_total", "container_pressure_io_stalled_seconds_total"} {
			poll(t, 3*time.Minute, m+" of guest-burn in Odin", func(context.Context) (bool, error) {
				if len(odinSeries(odin.Items(), guest, m, ns, "guest-burn")) == 0 {
					return false, errors.New("no sample yet")
				}
				return true, nil
			})
		}
	})
	t.Run("on the guest agent's /metrics", func(t *testing.T) {
		cpNS, err := os.Open("/run/netns/" + c.prefix + "-cp")
		if err != nil {
			t.Fatal(err)
		}
		defer cpNS.Close()
		poll(t, 2*time.Minute, "guest-hold's working set and guest-burn's CPU and PSI on "+guestUnderlayIP+":"+nodeAgentPort+"/metrics", func(context.Context) (bool, error) {
			body, err := httpGetIn(cpNS, guestUnderlayIP+":"+nodeAgentPort, "/metrics")
			if err != nil {
				return false, err
			}
			var missing []string
			for _, want := range []struct{ metric, pod string }{
				{"container_memory_working_set_bytes", "guest-hold"},
				{"container_cpu_usage_seconds_total", "guest-burn"},
				{"container_pressure_cpu_waiting_seconds_total", "guest-burn"},
			} {
				if v, ok := promValue(body, want.metric, ns, want.pod); !ok {
					missing = append(missing, want.metric+" of "+want.pod)
				} else if want.pod == "guest-hold" && v < 200<<20 {
					missing = append(missing, fmt.Sprintf("%s of %s >= 200 MiB (is %.0f MiB)", want.metric, want.pod, v/(1<<20)))
				}
			}
			if len(missing) > 0 {
				return false, fmt.Errorf("missing: %s", strings.Join(missing, ", "))
			}
			return true, nil
		})
	})
}

// promValue finds metric{...namespace="ns",pod="pod",container="workload"...} in a Prometheus text
// exposition and returns its value.
func promValue(body, metric, ns, pod string) (float64, bool) {
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, metric+"{") || !strings.Contains(l, `namespace="`+ns+`"`) ||
			!strings.Contains(l, `pod="`+pod+`"`) || !strings.Contains(l, `container="workload"`) {
			continue
		}
		f := strings.Fields(l[strings.LastIndex(l, "}")+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		return v, err == nil
	}
	return 0, false
}

// checkCNIStatusCalled: the container runtime calls the plugin's CNI STATUS (cniVersion 1.1.0,
// containerd >= 2.0: the CRI Status the kubelet polls runs it), which reaches netd: netd's request
// metric counts successful status calls on every namespace host.
func checkCNIStatusCalled(t *testing.T, c *cluster) {
	for _, h := range hostKeys {
		f, err := os.Open("/run/netns/" + c.prefix + "-" + h)
		if err != nil {
			t.Fatal(err)
		}
		poll(t, time.Minute, "CNI STATUS calls in netd's metrics on host "+h, func(context.Context) (bool, error) {
			body, err := httpGetIn(f, "127.0.0.1:9462", "/metrics")
			if err != nil {
				return false, err
			}
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, `ecloud_netd_cni_request_duration_seconds_count{code="0",op="status"} `) {
					n, err := strconv.ParseFloat(strings.Fields(l)[1], 64)
					if err == nil && n > 0 {
						t.Logf("host %s: %s", h, l)
						return true, nil
					}
				}
			}
			return false, fmt.Errorf("no successful status request counted in %d bytes of netd metrics", len(body))
		})
		f.Close()
	}
}
