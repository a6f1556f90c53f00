// Package e2e runs the end-to-end checks on the local two-datacenter cluster of make up: real
// kubelets, containerd and kube-proxy on two simulated hosts (hack/cluster).
//
//	ECLOUD_E2E=1 go test -count=1 -v ./test/e2e     (or: make e2e)
//
// Without ECLOUD_E2E=1, or not as root, every test skips with the reason. A running make-up cluster
// is reused and left running; otherwise the test runs make up itself (cold: builds the Kubernetes
// binaries first) and ends with make down and a check that nothing is left behind.
// ECLOUD_E2E_KEEP=1 keeps a cluster the test started.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/test/netns"
)

const (
	zoneLabel = "topology.kubernetes.io/zone"
	// guestLabel marks make up's guest node (hack/cluster/guest.sh); its taint has the same key.
	guestLabel = "ecloud.io/kernel"
)

func TestLocalCluster(t *testing.T) {
	c := localCluster(t)
	ctx := context.Background()

	// host key -> node name of the namespace hosts, from the zone labels; the guest node (make up's
	// QEMU guest on a real kernel, labelled ecloud.io/kernel=guest) apart
	nodes := map[string]string{}
	guest := c.guestNodeName()
	t.Run("nodes Ready in both datacenters", func(t *testing.T) {
		want := 2
		if guest != "" {
			want = 3
		}
		poll(t, 5*time.Minute, fmt.Sprintf("%d Ready nodes: one namespace host in dc-a, one in dc-b, and the guest node %q", want, guest), func(ctx context.Context) (bool, error) {
			list, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			clear(nodes)
			guestReady := false
			for _, n := range list.Items {
				for _, cond := range n.Status.Conditions {
					if cond.Type != corev1.NodeReady || cond.Status != corev1.ConditionTrue {
						continue
					}
					if n.Labels[guestLabel] != "" {
						guestReady = n.Name == guest
					} else {
						nodes[n.Labels[zoneLabel]] = n.Name
					}
				}
			}
			return len(list.Items) == want && nodes["dc-a"] != "" && nodes["dc-b"] != "" && (guest == "" || guestReady), nil
		})
	})
	if t.Failed() {
		return
	}
	t.Run("containerd 2 on every node", func(t *testing.T) {
		list, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range list.Items {
			if v := n.Status.NodeInfo.ContainerRuntimeVersion; !strings.HasPrefix(v, "containerd://2.") {
				t.Errorf("node %s runs %q, want containerd://2.x", n.Name, v)
			}
		}
	})

	ns := fmt.Sprintf("e2e-%d", time.Now().Unix())
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = c.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	}()
	// One workload pod per datacenter.
	pods := map[string]*corev1.Pod{}
	t.Run("a pod runs on each host", func(t *testing.T) {
		for _, dc := range []string{"dc-a", "dc-b"} {
			if _, err := c.kube.CoreV1().Pods(ns).Create(ctx, workloadPod(dc, nodes[dc]), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, dc := range []string{"dc-a", "dc-b"} {
			poll(t, 2*time.Minute, "pod "+dc+" Ready", func(ctx context.Context) (bool, error) {
				p, err := c.kube.CoreV1().Pods(ns).Get(ctx, dc, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				pods[dc] = p
				if podReady(p) {
					return p.Status.PodIP != "", nil
				}
				return false, fmt.Errorf("pod %s: %s %s", dc, p.Status.Phase, p.Status.Message)
			})
			if pods[dc].Spec.NodeName != nodes[dc] {
				t.Errorf("pod %s runs on %s, want %s", dc, pods[dc].Spec.NodeName, nodes[dc])
			}
		}
	})
	if t.Failed() {
		return
	}

	// fetch asks pod `from` (through the apiserver's pod proxy) to GET url, and returns the body.
	fetch := func(ctx context.Context, from, url string) (string, error) { return fetchFrom(ctx, c, ns, from, url) }
	expectHello := func(body, dc string) error {
		if !strings.HasPrefix(body, "hello from "+dc+" ") {
			return fmt.Errorf("answer %q is not from pod %s", body, dc)
		}
		return nil
	}
	t.Run("pod to pod across the two hosts", func(t *testing.T) {
		for from, to := range map[string]string{"dc-a": "dc-b", "dc-b": "dc-a"} {
			poll(t, 30*time.Second, from+" -> "+to, func(ctx context.Context) (bool, error) {
				body, err := fetch(ctx, from, "http://"+pods[to].Status.PodIP+":8080/")
				if err != nil {
					return false, err
				}
				return true, expectHello(body, to)
			})
		}
	})
	t.Run("pod to pod ping across the two hosts", func(t *testing.T) {
		for from, to := range map[string]string{"dc-a": "dc-b", "dc-b": "dc-a"} {
			poll(t, 30*time.Second, "ping "+from+" -> "+to, func(ctx context.Context) (bool, error) {
				b, err := c.kube.CoreV1().Pods(ns).ProxyGet("http", from, "8080", "/ping", map[string]string{"ip": pods[to].Status.PodIP}).DoRaw(ctx)
				if err != nil {
					return false, fmt.Errorf("%v: %s", err, b)
				}
				if !strings.HasPrefix(string(b), "ok ") {
					return false, fmt.Errorf("answer %q", b)
				}
				return true, nil
			})
		}
	})
	t.Run("ClusterIP Service with its only endpoint on the other host", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "only-b"},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"dc": "dc-b"},
				Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		svc, err := c.kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, 30*time.Second, "dc-a -> Service "+svc.Spec.ClusterIP, func(ctx context.Context) (bool, error) {
			body, err := fetch(ctx, "dc-a", "http://"+svc.Spec.ClusterIP+":80/")
			if err != nil {
				return false, err
			}
			return true, expectHello(body, "dc-b")
		})
	})
	t.Run("host to pod", func(t *testing.T) {
		f, err := os.Open("/run/netns/" + c.prefix + "-a")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, dc := range []string{"dc-a", "dc-b"} {
			poll(t, 30*time.Second, "host dc-a -> pod "+dc, func(ctx context.Context) (bool, error) {
				body, err := httpGetIn(f, pods[dc].Status.PodIP+":8080", "/")
				if err != nil {
					return false, err
				}
				return true, expectHello(body, dc)
			})
		}
	})
	t.Run("anti-spoofing", func(t *testing.T) { checkAntiSpoofing(t, c) })
	t.Run("the runtime calls CNI STATUS", func(t *testing.T) { checkCNIStatusCalled(t, c) })
	t.Run("guest node", func(t *testing.T) { checkGuestNode(t, c, ns, pods) })
	t.Run("ecloud components available", func(t *testing.T) { checkComponents(t, c) })
	if t.Failed() {
		return
	}
	t.Run("kubectl ecloud", func(t *testing.T) { checkKubectlEcloud(t, c, ns, pods, nodes) })
	t.Run("ecloud examples", func(t *testing.T) { checkExamples(t, c) })
	t.Run("node agent", func(t *testing.T) { checkNodeAgentSamples(t, c, ns) })
	t.Run("Prometheus", func(t *testing.T) {
		count := len(nodes)
		if guest != "" {
			count++
		}
		checkPrometheus(t, c, count)
	})
	t.Run("sticky IP follows its pod", func(t *testing.T) { checkStickyMove(t, c, nodes) })
	t.Run("sticky IP follows its pod onto the guest node", func(t *testing.T) { checkGuestStickyMove(t, c, nodes) })
	t.Run("deleting everything leaves nothing behind", func(t *testing.T) { checkNothingLeftBehind(t, c, demoNS, ns) })
	if t.Failed() {
		return
	}
	// Last, as it removes ecloud: uninstall and install again with the commands of
	// docs/install.md, which end with the demo applied again (a reused cluster keeps its demo).
	t.Run("uninstall and install as docs/install.md says", func(t *testing.T) { checkInstallFromDocs(t, c) })
}

// fetchFrom asks the test workload in pod ns/from (through the apiserver's pod proxy) to GET url,
// and returns the body.
func fetchFrom(ctx context.Context, c *cluster, ns, from, url string) (string, error) {
	b, err := c.kube.CoreV1().Pods(ns).ProxyGet("http", from, "8080", "/fetch", map[string]string{"url": url}).DoRaw(ctx)
	return string(b), err
}

func workloadPod(dc, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: dc, Labels: map[string]string{"dc": dc}},
		Spec: corev1.PodSpec{
			Hostname:                      dc,
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": node},
			Containers: []corev1.Container{{
				Name:            "workload",
				Image:           "ecloud/workload:dev",
				ImagePullPolicy: corev1.PullIfNotPresent,
				Ports:           []corev1.ContainerPort{{ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
}

// httpGetIn sends GET path to addr from inside the network namespace ns and returns the body.
func httpGetIn(ns *os.File, addr, path string) (string, error) {
	conn, err := netns.Dial(ns, addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, err = bufio.NewReader(resp.Body).WriteTo(&b)
	return b.String(), err
}
