package e2e

import (
	"context"
	"fmt"
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
)

// TestBenchPodStartup (make bench-e2e) creates ECLOUD_E2E_BENCH_PODS pods (default 100) at once,
// spread over both hosts, and measures per pod, as seen by a watch, the time from create to each
// stage: scheduled, sandbox ready (the pod network is set up: PodReadyToStartContainers),
// running (every container started: the Kubernetes pod-startup SLO's end point) and Ready (the
// kubelet's HTTP readiness probe reached the pod). It runs first with host networking (the
// baseline: everything but the pod network), then on the ecloud pod network (netd, ecloud-cni,
// pool-default). It prints every stage's p50/p99 for both, the ratio and, last,
// RESULT pod_start_p99_s (create -> running); the goal is p99 <= 5 s (the SLO). A benchmark, not
// a test: it only fails when pods do not start at all.
func TestBenchPodStartup(t *testing.T) {
	if os.Getenv("ECLOUD_E2E_BENCH") != "1" {
		t.Skip("pod-startup benchmark: run it with make bench-e2e (sets ECLOUD_E2E=1 ECLOUD_E2E_BENCH=1)")
	}
	c := localCluster(t)
	n := 100
	if v, err := strconv.Atoi(os.Getenv("ECLOUD_E2E_BENCH_PODS")); err == nil && v > 0 {
		n = v
	}
	base := startPods(t, c, "bench-hostnet", n, func(pod *corev1.Pod, i int) {
		// Host network: each pod its own port on the host.
		port := int32(20000 + i)
		pod.Spec.HostNetwork = true
		pod.Spec.Containers[0].Args = []string{fmt.Sprintf("-listen=:%d", port)}
		pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port}}
		pod.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromInt32(port)
	})
	overlay := startPods(t, c, "bench-ecloud", n, func(*corev1.Pod, int) {})
	for _, r := range []struct {
		name string
		s    podStages
	}{{"hostnet", base}, {"ecloud", overlay}} {
		for _, st := range stageNames {
			fmt.Printf("stage %-8s %-9s p50 %6.2fs p99 %6.2fs\n", r.name, st, pct(r.s[st], 0.5), pct(r.s[st], 0.99))
		}
	}
	fmt.Printf("RESULT pod_ready_hostnet_p99_s=%.2f\nRESULT pod_ready_p99_s=%.2f\n", pct(base[stageReady], 0.99), pct(overlay[stageReady], 0.99))
	fmt.Printf("RESULT pod_start_hostnet_p50_s=%.2f\nRESULT pod_start_hostnet_p99_s=%.2f\n", pct(base[stageRunning], 0.5), pct(base[stageRunning], 0.99))
	fmt.Printf("RESULT pod_start_p99_vs_hostnet_ratio=%.2f\n", pct(overlay[stageRunning], 0.99)/pct(base[stageRunning], 0.99))
	fmt.Printf("RESULT pod_start_p50_s=%.2f\nRESULT pod_start_p99_s=%.2f\n", pct(overlay[stageRunning], 0.5), pct(overlay[stageRunning], 0.99))
}

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

// pct is the p-quantile (0..1) of sorted durations, in seconds.
func pct(d []time.Duration, p float64) float64 { return d[int(p*float64(len(d)-1))].Seconds() }

// startPods creates n test workload pods (shaped by mutate) at once in a new namespace prefix-*,
// spread over the datacenters, and returns each one's create -> stage times. The namespace is
// deleted, and gone, before it returns.
func startPods(t *testing.T, c *cluster, prefix string, n int, mutate func(pod *corev1.Pod, i int)) podStages {
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pod := workloadPod(fmt.Sprintf("p-%03d", i), "")
			pod.Spec.NodeSelector = nil
			pod.Labels = map[string]string{"app": "bench"}
			pod.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: zoneLabel, WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: pod.Labels},
			}}
			mutate(pod, i)
			mu.Lock()
			created[pod.Name] = time.Now()
			mu.Unlock()
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
	d := out[stageReady]
	t.Logf("%s: %d pods Ready in %s; create->Ready min %.2fs p50 %.2fs p90 %.2fs p99 %.2fs max %.2fs",
		prefix, n, time.Since(start).Round(100*time.Millisecond), d[0].Seconds(), pct(d, 0.5), pct(d, 0.9), pct(d, 0.99), d[len(d)-1].Seconds())
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
