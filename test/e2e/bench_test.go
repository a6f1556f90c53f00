package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/test/benchstat"
)

// TestBenchPodStartup (make bench-e2e) creates ECLOUD_E2E_BENCH_PODS pods (default 100) at once,
// spread over the two namespace hosts, and measures per pod, as seen by a watch, the time from the
// moment the test decides to create it (all n at once; the client then sends at most 20 creates at
// a time) to each stage: scheduled, sandbox ready (the pod network is set up:
// PodReadyToStartContainers), running (every container started: the Kubernetes pod-startup SLO's
// end point) and Ready (the kubelet's HTTP readiness probe reached the pod). Three networks on the
// same nodes:
//   - hostnet: host networking, the baseline of everything but the pod network;
//   - ecloud: the ecloud pod network (netd, ecloud-cni, pool-default);
//   - reference: the containernetworking reference plugins, bridge + host-local, what simple
//     clusters use (refcni_test.go switches the nodes to it and back).
//
// A warm-up batch on the ecloud network (a fifth of n, at least 10 pods) runs first and is
// discarded; then the batches run in mirrored order, hostnet ecloud reference reference ecloud
// hostnet, so no network always runs first or on a cluster the others warmed. Each network's
// samples of its two batches are pooled. It prints every stage's percentiles per network with
// their n (nearest rank: the p99 of fewer than 100 samples is the maximum), then the RESULT lines,
// RESULT pod_start_p99_vs_reference_cni (ecloud's create -> running p99 over the reference's)
// last. A benchmark, not a test: it fails only when pods do not start, or start on the wrong
// network.
func TestBenchPodStartup(t *testing.T) {
	if os.Getenv("ECLOUD_E2E_BENCH") != "1" {
		t.Skip("pod-startup benchmark: run it with make bench-e2e (sets ECLOUD_E2E=1 ECLOUD_E2E_BENCH=1)")
	}
	c := localCluster(t)
	n := 100
	if v, err := strconv.Atoi(os.Getenv("ECLOUD_E2E_BENCH_PODS")); err == nil && v > 0 {
		n = v
	}
	ref := newReferenceCNI(t, c)
	onNodes := func(pod *corev1.Pod) {
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: ref.nodeNames()}},
			}}},
		}}
	}
	type network struct {
		name   string
		mutate func(pod *corev1.Pod, i int)
		check  func(p *corev1.Pod) error
	}
	hostnet := &network{name: "hostnet", mutate: func(pod *corev1.Pod, i int) {
		// Host network: each pod its own port on the host.
		port := int32(20000 + i)
		pod.Spec.HostNetwork = true
		pod.Spec.Containers[0].Args = []string{fmt.Sprintf("-listen=:%d", port)}
		pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port}}
		pod.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromInt32(port)
	}, check: func(p *corev1.Pod) error {
		if p.Status.PodIP != p.Status.HostIP {
			return fmt.Errorf("host-network pod has IP %s, its node %s", p.Status.PodIP, p.Status.HostIP)
		}
		return nil
	}}
	ecloud := &network{name: "ecloud", mutate: func(*corev1.Pod, int) {}, check: func(p *corev1.Pod) error {
		if !ecloudPodCIDR.Contains(net.ParseIP(p.Status.PodIP)) {
			return fmt.Errorf("pod IP %s is not from the ecloud pools (%s)", p.Status.PodIP, ecloudPodCIDR)
		}
		return nil
	}}
	reference := &network{name: "reference", mutate: func(*corev1.Pod, int) {}, check: ref.checkPod}

	warm := max(10, n/5)
	startPods(t, c, "bench-warmup", warm, func(pod *corev1.Pod, i int) { onNodes(pod); ecloud.mutate(pod, i) }, ecloud.check)
	fmt.Printf("warm-up: %d pods on the ecloud network, discarded\n", warm)

	samples := map[string]podStages{}
	order := []*network{hostnet, ecloud, reference, reference, ecloud, hostnet}
	for i, nw := range order {
		if nw == reference && (i == 0 || order[i-1] != reference) {
			ref.switchTo(t)
		}
		s := startPods(t, c, "bench-"+nw.name, n, func(pod *corev1.Pod, i int) { onNodes(pod); nw.mutate(pod, i) }, nw.check)
		if nw == reference && (i == len(order)-1 || order[i+1] != reference) {
			ref.switchBack(t)
		}
		fmt.Printf("batch %d %-9s running %s\n", i+1, nw.name, benchstat.Seconds(s[stageRunning]))
		if samples[nw.name] == nil {
			samples[nw.name] = podStages{}
		}
		for st, d := range s {
			samples[nw.name][st] = append(samples[nw.name][st], d...)
		}
	}
	for _, nw := range []string{"hostnet", "ecloud", "reference"} {
		for _, st := range stageNames {
			fmt.Printf("stage %-9s %-9s %s\n", nw, st, benchstat.Seconds(samples[nw][st]))
		}
	}
	p := func(nw, st string, q float64) float64 { return benchstat.Percentile(samples[nw][st], q).Seconds() }
	nOf := func(nw string) int { return len(samples[nw][stageRunning]) }
	fmt.Printf("RESULT pod_ready_hostnet_p99_s=%.2f n=%d\nRESULT pod_ready_reference_cni_p99_s=%.2f n=%d\nRESULT pod_ready_p99_s=%.2f n=%d\n",
		p("hostnet", stageReady, 99), nOf("hostnet"), p("reference", stageReady, 99), nOf("reference"), p("ecloud", stageReady, 99), nOf("ecloud"))
	fmt.Printf("RESULT pod_start_hostnet_p50_s=%.2f n=%d\nRESULT pod_start_hostnet_p99_s=%.2f n=%d\n", p("hostnet", stageRunning, 50), nOf("hostnet"), p("hostnet", stageRunning, 99), nOf("hostnet"))
	fmt.Printf("RESULT pod_start_reference_cni_p50_s=%.2f n=%d\nRESULT pod_start_reference_cni_p99_s=%.2f n=%d\n", p("reference", stageRunning, 50), nOf("reference"), p("reference", stageRunning, 99), nOf("reference"))
	fmt.Printf("RESULT pod_start_p50_s=%.2f n=%d\nRESULT pod_start_p99_s=%.2f n=%d\n", p("ecloud", stageRunning, 50), nOf("ecloud"), p("ecloud", stageRunning, 99), nOf("ecloud"))
	fmt.Printf("RESULT pod_start_p99_vs_hostnet_ratio=%.2f\n", p("ecloud", stageRunning, 99)/p("hostnet", stageRunning, 99))
	fmt.Printf("RESULT pod_start_p99_vs_reference_cni=%.2f\n", p("ecloud", stageRunning, 99)/p("reference", stageRunning, 99))
}

// ecloudPodCIDR holds every pool of the local cluster (hack/cluster/lib.sh OVERLAY_CIDR).
var ecloudPodCIDR = &net.IPNet{IP: net.IPv4(10, 16, 0, 0), Mask: net.CIDRMask(16, 32)}

// The stages of a pod's start, in order, each timed from the pod's create call to the first
// watch event that shows it.
const (
	stageScheduled = "scheduled" // spec.nodeName set
	stageSandbox   = "sandbox"   // PodReadyToStartContainers: sandbox and pod network ready
	stageRunning   = "running"   // every container started
	stageReady     = "ready"     // the Ready condition (readiness probe passed)
)

var stageNames = []string{stageScheduled, stageSandbox, stageRunning, stageReady}

// podStages holds, per stage, every pod's create -> stage time, sorted.
type podStages map[string][]time.Duration

// reached reports whether pod p shows the stage.
func reached(p *corev1.Pod, stage string) bool {
	switch stage {
	case stageScheduled:
		return p.Spec.NodeName != ""
	case stageSandbox:
		return podCondition(p, corev1.PodReadyToStartContainers)
	case stageRunning:
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) < len(p.Spec.Containers) {
			return false
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Running == nil {
				return false
			}
		}
		return true
	case stageReady:
		return podCondition(p, corev1.PodReady)
	}
	return false
}

// startPods creates n test workload pods (shaped by mutate) at once in a new namespace prefix-*,
// spread over the datacenters, checks every pod with check once all are Ready (on the network the
// run means), and returns each one's create -> stage times. The namespace is deleted, and gone,
// before it returns.
func startPods(t *testing.T, c *cluster, prefix string, n int, mutate func(pod *corev1.Pod, i int), check func(p *corev1.Pod) error) podStages {
	t.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("%s-%d", prefix, time.Now().Unix())
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = c.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		poll(t, 3*time.Minute, "namespace "+ns+" gone", func(ctx context.Context) (bool, error) {
			_, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	}()
	poll(t, time.Minute, "the default ServiceAccount of "+ns, func(ctx context.Context) (bool, error) {
		_, err := c.kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})

	list, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var mu sync.Mutex
	created := map[string]time.Time{}
	last := map[string]*corev1.Pod{}              // the latest state of each pod seen
	seen := map[string]map[string]time.Duration{} // stage -> pod -> create -> stage
	for _, st := range stageNames {
		seen[st] = map[string]time.Duration{}
	}
	ready := seen[stageReady]
	done := make(chan struct{})
	// observe records the first time each pod is seen at each stage; true once all n are Ready.
	observe := func(p *corev1.Pod) bool {
		mu.Lock()
		defer mu.Unlock()
		t0, ok := created[p.Name]
		if !ok {
			return false
		}
		now := time.Since(t0)
		last[p.Name] = p
		for _, st := range stageNames {
			if _, done := seen[st][p.Name]; !done && reached(p, st) {
				seen[st][p.Name] = now
			}
		}
		return len(ready) == n
	}
	go func() {
		defer close(done)
		// A watch can end early (a fresh apiserver closed it under this burst of creates): watch
		// again from the last resourceVersion seen, so no transition is lost.
		rv := list.ResourceVersion
		for watchCtx.Err() == nil {
			if rv == "" { // after a watch error: catch up with a list
				l, err := c.kube.CoreV1().Pods(ns).List(watchCtx, metav1.ListOptions{})
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				for i := range l.Items {
					if observe(&l.Items[i]) {
						return
					}
				}
				rv = l.ResourceVersion
			}
			w, err := c.kube.CoreV1().Pods(ns).Watch(watchCtx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					rv = "" // e.g. too old a resourceVersion: list again
					continue
				}
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				rv = p.ResourceVersion
				if ev.Type != watch.Deleted && observe(p) {
					w.Stop()
					return
				}
			}
			w.Stop()
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := range n {
		pod := workloadPod(fmt.Sprintf("p-%03d", i), "")
		pod.Spec.NodeSelector = nil
		pod.Labels = map[string]string{"app": "bench"}
		pod.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: zoneLabel, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: pod.Labels},
		}}
		mutate(pod, i)
		// The pod's clock starts when the test decides to create it, before it waits for one of
		// the client's 20 slots: waiting for a slot is part of what a burst of n pods costs.
		mu.Lock()
		created[pod.Name] = time.Now()
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := c.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Errorf("create %s: %v", pod.Name, err)
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ready) != n {
		t.Fatalf("%s: %d of %d pods Ready after %s", prefix, len(ready), n, time.Since(start).Round(time.Second))
	}
	out := podStages{}
	for _, st := range stageNames {
		// A stage a pod passed between two watch events counts at the later one (at the latest,
		// Ready).
		for pod, readyAt := range ready {
			v, ok := seen[st][pod]
			if !ok {
				v = readyAt
			}
			out[st] = append(out[st], v)
		}
		slices.Sort(out[st])
	}
	for name := range ready {
		if err := check(last[name]); err != nil {
			t.Errorf("%s: pod %s on %s: %v", prefix, name, last[name].Spec.NodeName, err)
		}
	}
	d := out[stageReady]
	t.Logf("%s: %d pods Ready in %s; create->Ready min %.2fs %s max %.2fs",
		prefix, n, time.Since(start).Round(100*time.Millisecond), d[0].Seconds(), benchstat.Seconds(d), d[len(d)-1].Seconds())
	return out
}

// podCondition reports whether pod p has condition typ True.
func podCondition(p *corev1.Pod, typ corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podReady reports whether pod p is Ready.
func podReady(p *corev1.Pod) bool { return podCondition(p, corev1.PodReady) }
