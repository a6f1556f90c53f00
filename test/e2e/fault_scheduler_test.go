package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// schedulerLease is ecloud-scheduler's leader election Lease (manifests/scheduler/config.yaml).
const schedulerLease = "ecloud-scheduler"

// faultSchedulerLeader: a 6-replica Deployment on ecloud-scheduler (default strategy: maxSurge and
// maxUnavailable 25%) rolls to a new revision; as its first new pod is created, the leader's
// process stops dead (SIGSTOP) and is SIGKILLed once the other replica holds the Lease. The other
// replica must take over and the rollout finish, and every 0.5 s sample of the Ready pods must
// find both datacenters with at least one (DualDatacenter's rule).
func faultSchedulerLeader(t *testing.T, c *cluster) {
	ctx := context.Background()
	ns := chaosNamespace(t, c, "scheduler")
	zoneOf := map[string]string{}
	nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		zoneOf[n.Name] = n.Labels[zoneLabel]
	}
	const replicas = 6
	labels := map[string]string{"app": "roll"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "roll"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SchedulerName:                 "ecloud-scheduler",
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name: "app", Image: "ecloud/workload:dev", ImagePullPolicy: corev1.PullIfNotPresent,
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
						// Ready within a second of starting; a probe is allowed 5 s, so that a busy
						// node's slow answer does not make a running pod NotReady (the samples are
						// about where the pods are, not about the kubelet's probe latency).
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds:  1,
							TimeoutSeconds: 5,
						},
					}},
				},
			},
		},
	}
	deps := c.kube.AppsV1().Deployments(ns)
	if _, err := deps.Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rolledOut := func(ctx context.Context) (bool, error) {
		d, err := deps.Get(ctx, "roll", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != replicas || s.Replicas != replicas || s.AvailableReplicas != replicas {
			return false, fmt.Errorf("generation %d/%d, %d updated, %d total, %d available", s.ObservedGeneration, d.Generation, s.UpdatedReplicas, s.Replicas, s.AvailableReplicas)
		}
		return true, nil
	}
	poll(t, 3*time.Minute, "6 replicas available", rolledOut)

	// The sampler: Ready pods (not terminating) per datacenter, every 0.5 s.
	type sample struct{ a, b int }
	var (
		mu      sync.Mutex
		samples []sample
		errs    int
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			list, err := c.kube.CoreV1().Pods(ns).List(sctx, metav1.ListOptions{LabelSelector: "app=roll"})
			cancel()
			mu.Lock()
			if err != nil {
				errs++
			} else {
				per := map[string]int{}
				for i := range list.Items {
					if p := &list.Items[i]; p.DeletionTimestamp == nil && podReady(p) {
						per[zoneOf[p.Spec.NodeName]]++
					}
				}
				samples = append(samples, sample{per["dc-a"], per["dc-b"]})
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	holder := func(ctx context.Context) (string, error) {
		l, err := c.kube.CoordinationV1().Leases("kube-system").Get(ctx, schedulerLease, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return ptr.Deref(l.Spec.HolderIdentity, ""), nil
	}
	before, err := holder(ctx)
	if err != nil || before == "" {
		t.Fatalf("Lease kube-system/%s has no holder (%q): %v", schedulerLease, before, err)
	}
	leaderName, _, _ := strings.Cut(before, "_")
	leader, err := c.kube.CoreV1().Pods("kube-system").Get(ctx, leaderName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("leader %q of Lease %s: %v", before, schedulerLease, err)
	}

	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"chaos.ecloud.io/revision":"%d"}}}}}`, time.Now().UnixNano())
	if _, err := deps.Patch(ctx, "roll", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	poll(t, time.Minute, "the new revision's first pod created", func(ctx context.Context) (bool, error) {
		d, err := deps.Get(ctx, "roll", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas > 0, nil
	})
	// The leader stops dead: SIGSTOP ends its renewals at once, and unlike a killed container the
	// kubelet does not restart it, so the other replica must take the Lease when it expires. Once
	// it has, the stopped process is killed (its restart joins as a follower).
	signalPodProcess(t, leader, "ecloud-schedule", syscall.SIGSTOP) // comm is cut to 15 characters
	killed := time.Now()
	var after string
	poll(t, 2*time.Minute, "the other replica holding the Lease", func(ctx context.Context) (bool, error) {
		h, err := holder(ctx)
		if err != nil {
			return false, err
		}
		after = h
		return doneOr(h != "" && !strings.HasPrefix(h, leaderName+"_"), fmt.Errorf("holder %q", h))
	})
	takeover := since(killed)
	killPodProcess(t, leader, "ecloud-schedule")
	poll(t, 4*time.Minute, "the rollout finished", rolledOut)
	rollout := time.Since(started).Seconds()
	// A few samples of the settled state, then stop.
	time.Sleep(time.Second)
	close(stop)
	<-done

	minA, minB, bad := replicas, replicas, 0
	for _, s := range samples {
		minA, minB = min(minA, s.a), min(minB, s.b)
		if s.a < 1 || s.b < 1 {
			bad++
		}
	}
	newName, _, _ := strings.Cut(after, "_")
	other := "no"
	if newName != leaderName {
		other = "yes"
	}
	figure(t, "scheduler-leader", "replicas", replicas, "samples", len(samples), "sample_errors", errs, "min_ready_dc_a", minA,
		"min_ready_dc_b", minB, "one_dc_samples", bad, "takeover_s", takeover, "other_replica", other, "rollout_s", rollout)
	if len(samples) < 10 {
		t.Errorf("only %d samples of the Ready pods", len(samples))
	}
	if bad > 0 {
		t.Errorf("%d of %d samples found a datacenter without a Ready pod (min dc-a %d, dc-b %d)", bad, len(samples), minA, minB)
	}
	t.Logf("Lease %s: %s -> %s", schedulerLease, before, after)
	checkNothingLeftBehind(t, c, ns)
}
