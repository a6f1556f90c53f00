package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/controller/manager"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/harness"
)

// testControllerOptions are fast settings for tests: short GC interval and grace. Leader election
// keeps room (a renew may take 10 s while the in-process apiserver shares two cores with the
// test): a stopped leader releases its Lease, so a short lease would buy nothing.
func testControllerOptions() *manager.Options {
	o := manager.NewOptions()
	o.BindAddress = ""
	o.LeaseNamespace = "default"
	o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 10*time.Second, 500*time.Millisecond
	o.GCInterval, o.GCGrace = 200*time.Millisecond, 500*time.Millisecond
	o.ReservationWindow = 30 * time.Second
	return o
}

// startIPController runs the IP controller in-process; the returned stop function cancels it
// and waits until it returned (also done at test end).
func startIPController(tb testing.TB, cp *harness.ControlPlane, o *manager.Options) (stop func()) {
	tb.Helper()
	return startIPControllerWith(tb, cp, cp.Config, o)
}

// startIPControllerWith is startIPController with the controller's client config cfg.
func startIPControllerWith(tb testing.TB, cp *harness.ControlPlane, cfg *rest.Config, o *manager.Options) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(cp.Ctx)
	done := make(chan error, 1)
	go func() { done <- manager.Run(ctx, cfg, o) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("ip-controller: %v", err)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("ip-controller did not stop within 30s")
		}
	}
	tb.Cleanup(stop)
	return stop
}

// cniPodIP stands in for the CNI daemon: a pod the simulated kubelet starts gets its IP from the
// allocator (Bound on its node).
func cniPodIP(cp *harness.ControlPlane, a *ipam.Allocator) harness.PodIPFunc {
	return func(ctx context.Context, pod *corev1.Pod) (string, error) {
		node, err := cp.Kube.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		c, err := a.Allocate(ctx, ipam.Request{Pod: pod, Node: node, Phase: v1alpha1.PhaseBound, ContainerID: "sim-" + string(pod.UID)})
		if err != nil {
			return "", err
		}
		return c.Spec.IP, nil
	}
}

// claimsOfWorkload returns the claims whose owner is pod name prefix+"-…" in ns, by pod name.
func claimsOf(tb testing.TB, cp *harness.ControlPlane, ns string) map[string]*v1alpha1.IPClaim {
	out := map[string]*v1alpha1.IPClaim{}
	for _, c := range claimsByIP(tb, cp) {
		if c.Spec.Owner.Namespace == ns {
			out[c.Spec.Owner.PodName] = c
		}
	}
	return out
}

func scaleStatefulSet(tb testing.TB, cp *harness.ControlPlane, ns, name string, replicas int32) {
	tb.Helper()
	scaleTo(tb, cp, cp.Kube.AppsV1().StatefulSets(ns), "StatefulSet "+ns+"/"+name, name, replicas)
}

// scaleClient is the scale subresource of one kind of workload (StatefulSets, Deployments).
type scaleClient interface {
	GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error)
	UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error)
}

// scaleTo sets the scale of workload name to replicas, reading it again when its controller wrote
// the object in between (a status update changes the scale's resourceVersion too).
func scaleTo(tb testing.TB, cp *harness.ControlPlane, c scaleClient, what, name string, replicas int32) {
	tb.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := c.GetScale(cp.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = replicas
		_, err = c.UpdateScale(cp.Ctx, name, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		tb.Fatalf("scaling %s to %d: %v", what, replicas, err)
	}
}

// TestIPAMReleasePolicies runs real workloads (StatefulSet and Deployment controllers, the
// default scheduler, simulated kubelets that get IPs from the allocator like the CNI daemon) with
// the IP controller: scaling a StatefulSet 3→1 releases ordinals 1 and 2 (OnScaleDown), a Never
// set keeps them, and a Deployment pod's IP is freed once the pod is gone.
func TestIPAMReleasePolicies(t *testing.T) {
	cp := harness.Start(t)
	cp.CreateNodes(t, harness.TwoDatacenters(2))
	a := ipamAllocator(t, cp)
	ipamPool(t, cp, rangePool("apps", "10.60.0.0/24", "10.60.0.10", 100, func(s *v1alpha1.IPPoolSpec) { s.Default = true }), a)
	cp.StartControllers(t, harness.StatefulSetController, harness.ReplicaSetController, harness.DeploymentController)
	cp.StartScheduler(t, harness.SchedulerConfig("default-scheduler", ""))
	cp.SimulateKubelets(t, cniPodIP(cp, a))
	startIPController(t, cp, testControllerOptions())
	ipamNamespace(t, cp, "scale", nil, nil)
	ipamNamespace(t, cp, "keep", nil, nil)
	ipamNamespace(t, cp, "web", nil, nil)

	ipamStatefulSet(t, cp, "scale", "db", 3, nil)
	ipamStatefulSet(t, cp, "keep", "db", 3, map[string]string{v1alpha1.AnnotationIPRelease: "Never"})
	for _, ns := range []string{"scale", "keep"} {
		harness.Eventually(t, 60*time.Second, func() (bool, error) { return len(claimsOf(t, cp, ns)) == 3, nil }, "3 claims in %s", ns)
	}
	before := claimsOf(t, cp, "scale")
	scaleStatefulSet(t, cp, "scale", "db", 1)
	scaleStatefulSet(t, cp, "keep", "db", 1)
	harness.Eventually(t, 60*time.Second, func() (bool, error) {
		got := claimsOf(t, cp, "scale")
		return len(got) == 1 && got["db-0"] != nil && got["db-0"].Spec.IP == before["db-0"].Spec.IP, nil
	}, "OnScaleDown to release db-1 and db-2 and keep db-0")
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		pods, err := cp.Kube.CoreV1().Pods("keep").List(cp.Ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 1, err
	}, "keep/db scaled down to one pod")
	if got := claimsOf(t, cp, "keep"); len(got) != 3 {
		t.Fatalf("Never: %d claims left after scale-down, want 3", len(got))
	}
	// Scaling back up gives ordinals 1 and 2 of the Never set their old IPs.
	keepBefore := claimsOf(t, cp, "keep")
	scaleStatefulSet(t, cp, "keep", "db", 3)
	harness.Eventually(t, 60*time.Second, func() (bool, error) {
		pods, err := cp.Kube.CoreV1().Pods("keep").List(cp.Ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 3 {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Status.PodIP == "" || p.Status.PodIP != keepBefore[p.Name].Spec.IP {
				return false, fmt.Errorf("%s has IP %q, want %s", p.Name, p.Status.PodIP, keepBefore[p.Name].Spec.IP)
			}
		}
		return true, nil
	}, "keep/db pods back on their IPs")

	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/web"}}},
			},
		},
	}
	if _, err := cp.Kube.AppsV1().Deployments("web").Create(cp.Ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 60*time.Second, func() (bool, error) { return len(claimsOf(t, cp, "web")) == 2, nil }, "2 Deployment claims")
	for _, c := range claimsOf(t, cp, "web") {
		if c.Spec.Mode != v1alpha1.ModeEphemeral || c.Spec.Owner.Kind != "Deployment" || c.Spec.Owner.Name != "web" {
			t.Fatalf("Deployment claim %s: %+v", c.Name, c.Spec)
		}
	}
	// Scale to zero (no garbage collector runs in the harness to delete a Deployment's pods).
	scaleTo(t, cp, cp.Kube.AppsV1().Deployments("web"), "Deployment web/web", "web", 0)
	harness.Eventually(t, 30*time.Second, func() (bool, error) { return len(claimsOf(t, cp, "web")) == 0, nil }, "Deployment IPs freed")
}

// TestIPAMGarbageCollection: leaked ephemeral claims (pod deleted while no controller ran, pod on a
// deleted node, DEL never called for a finished pod, a Reserved claim long past its window, an
// unbound duplicate of a live pod's claim) are freed; a young Reserved claim, a live
// pod's claim and sticky claims (a live static pod's, a Never claim whose pod is gone) are never
// touched. Also checks pool status counts.
func TestIPAMGarbageCollection(t *testing.T) {
	cp := harness.Start(t)
	nodes := cp.CreateNodes(t, harness.TwoDatacenters(1))
	a := ipamAllocator(t, cp)
	ipamNamespace(t, cp, "gc", nil, nil)
	ipamPool(t, cp, rangePool("gc-pool", "10.70.0.0/24", "10.70.0.10", 20, func(s *v1alpha1.IPPoolSpec) { s.Default = true }), a)

	alloc := func(pod *corev1.Pod, node *corev1.Node, phase v1alpha1.ClaimPhase) *v1alpha1.IPClaim {
		c, err := a.Allocate(cp.Ctx, ipam.Request{Pod: pod, Node: node, Phase: phase})
		if err != nil {
			t.Fatalf("allocate for %s: %v", pod.Name, err)
		}
		return c
	}
	// The static IP first, before a random pick takes it.
	static := alloc(apiPod(t, cp, "gc", "static", map[string]string{v1alpha1.AnnotationIPAddress: "10.70.0.20"}, nil), nodes[1], v1alpha1.PhaseBound)
	// Leaks.
	gone := alloc(memPod("gc", "deleted-unseen", nil), nodes[0], v1alpha1.PhaseBound)
	ghost := apiPod(t, cp, "gc", "on-dead-node", nil, nil)
	bindPod(t, cp, ghost, "doomed-node")
	onDeadNode := alloc(ghost, nil, v1alpha1.PhaseBound)
	finished := apiPod(t, cp, "gc", "finished", nil, nil)
	finishedClaim := alloc(finished, nodes[0], v1alpha1.PhaseBound)
	finished.Status.Phase = corev1.PodSucceeded
	if _, err := cp.Kube.CoreV1().Pods("gc").UpdateStatus(cp.Ctx, finished, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	oldReservation := alloc(memPod("gc", "reserved-long-ago", nil), nodes[0], v1alpha1.PhaseReserved)
	backdate(t, cp, oldReservation, time.Hour)
	// Protected.
	young := alloc(memPod("gc", "being-scheduled", nil), nodes[1], v1alpha1.PhaseReserved)
	live := apiPod(t, cp, "gc", "live", nil, nil)
	liveClaim := alloc(live, nodes[1], v1alpha1.PhaseBound)
	never := alloc(memPod("gc", "never", map[string]string{v1alpha1.AnnotationIPPolicy: "sticky", v1alpha1.AnnotationIPRelease: "Never"}), nodes[1], v1alpha1.PhaseBound)

	// A second, unbound claim for the live pod (two allocators racing): a duplicate to free.
	dup := liveClaim.DeepCopy()
	dup.ObjectMeta = metav1.ObjectMeta{Name: "10.70.0.200", Labels: liveClaim.Labels}
	dup.Spec.IP = "10.70.0.200"
	dup.Status.Phase = v1alpha1.PhaseReserved
	dup.Status.ReservedAt = &metav1.Time{Time: time.Now().Add(-time.Hour)}
	dup, err := cp.Ecloud.IPClaims().Create(cp.Ctx, dup, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	startIPController(t, cp, testControllerOptions())
	leaked := []*v1alpha1.IPClaim{gone, onDeadNode, finishedClaim, oldReservation, dup}
	kept := []*v1alpha1.IPClaim{young, liveClaim, static, never}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		_, err := cp.Ecloud.IPClaims().Get(cp.Ctx, dup.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	}, "the duplicate claim to be freed")
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		claims := claimsByIP(t, cp)
		for _, c := range leaked {
			if claims[c.Spec.IP] != nil {
				return false, fmt.Errorf("%s (%s) not collected yet", c.Spec.IP, c.Spec.Owner.PodName)
			}
		}
		return true, nil
	}, "leaked ephemeral claims to be collected")
	claims := claimsByIP(t, cp)
	for _, c := range kept {
		if got := claims[c.Spec.IP]; got == nil || got.UID != c.UID {
			t.Errorf("claim %s of %s was collected", c.Spec.IP, c.Spec.Owner.PodName)
		}
	}
	// gc-pool: 20 addresses, 4 held (1 Reserved) → 16 free.
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		p, err := cp.Ecloud.IPPools().Get(cp.Ctx, "gc-pool", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := p.Status
		ok := s.Total == 20 && s.Allocated == 4 && s.Reserved == 1 && s.Free == 16 &&
			meta.IsStatusConditionTrue(s.Conditions, v1alpha1.PoolReady) && meta.IsStatusConditionFalse(s.Conditions, v1alpha1.PoolLowOnIPs)
		return ok, fmt.Errorf("status %+v", s)
	}, "gc-pool status 20 total, 4 allocated, 1 reserved, 16 free")
}

// TestIPAMPoolStatusConditions: LowOnIPs when under 10% is free, Overlapping on the younger of
// two overlapping pools; /healthz and /metrics (free IPs per pool, allocations) are served.
func TestIPAMPoolStatusConditions(t *testing.T) {
	cp := harness.Start(t)
	a := ipamAllocator(t, cp)
	ipamNamespace(t, cp, "st", nil, nil)
	ipamPool(t, cp, rangePool("small", "10.80.0.0/24", "10.80.0.10", 10), a)
	opts := testControllerOptions()
	opts.BindAddress = freeLoopbackAddr(t)
	startIPController(t, cp, opts)
	ipamPool(t, cp, rangePool("younger", "10.80.0.0/25", "10.80.0.100", 10), a)
	for i := 0; i < 10; i++ {
		if _, err := a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("st", fmt.Sprintf("p%d", i), map[string]string{v1alpha1.AnnotationIPPools: "small"})}); err != nil {
			t.Fatal(err)
		}
	}
	cond := func(pool, typ string, want bool) {
		harness.Eventually(t, 10*time.Second, func() (bool, error) {
			p, err := cp.Ecloud.IPPools().Get(cp.Ctx, pool, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return meta.IsStatusConditionPresentAndEqual(p.Status.Conditions, typ, map[bool]metav1.ConditionStatus{true: "True", false: "False"}[want]), fmt.Errorf("%+v", p.Status)
		}, "pool %s condition %s=%v", pool, typ, want)
	}
	cond("small", v1alpha1.PoolLowOnIPs, true)
	cond("small", v1alpha1.PoolOverlapping, false)
	cond("younger", v1alpha1.PoolOverlapping, true)
	cond("younger", v1alpha1.PoolReady, false)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + opts.BindAddress + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		code, body := get("/metrics")
		for _, want := range []string{`ecloud_ipam_pool_free_ips{pool="small"} 0`, `ecloud_ipam_allocations_total{mode="Ephemeral",pool="small"}`,
			"ecloud_ipam_allocation_duration_seconds_bucket", "ecloud_ipam_gc_suspected_claims"} {
			if code != http.StatusOK || !strings.Contains(body, want) {
				return false, fmt.Errorf("/metrics (%d) lacks %s", code, want)
			}
		}
		return true, nil
	}, "metrics served")
}

// freeLoopbackAddr returns a loopback address with a port free at the time of the call.
func freeLoopbackAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func bindPod(tb testing.TB, cp *harness.ControlPlane, pod *corev1.Pod, node string) {
	tb.Helper()
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
	if err := cp.Kube.CoreV1().Pods(pod.Namespace).Bind(cp.Ctx, b, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("bind %s to %s: %v", pod.Name, node, err)
	}
}

// backdate moves a claim's reservation into the past.
func backdate(tb testing.TB, cp *harness.ControlPlane, c *v1alpha1.IPClaim, d time.Duration) {
	tb.Helper()
	cur, err := cp.Ecloud.IPClaims().Get(cp.Ctx, c.Name, metav1.GetOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	at := metav1.NewTime(time.Now().Add(-d))
	cur.Status.ReservedAt = &at
	if _, err := cp.Ecloud.IPClaims().Update(cp.Ctx, cur, metav1.UpdateOptions{}); err != nil {
		tb.Fatal(err)
	}
}

// TestIPAMControllerLeaderElection: of two IP controllers only the Lease holder works (the other
// sends no request but for the Lease); when it stops, the other takes the Lease over and keeps
// pool status.
func TestIPAMControllerLeaderElection(t *testing.T) {
	cp := harness.Start(t)
	holder := func() string {
		l, err := cp.Kube.CoordinationV1().Leases("default").Get(cp.Ctx, "ecloud-ip-controller", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	oa, ob := testControllerOptions(), testControllerOptions()
	oa.Identity, ob.Identity = "replica-a", "replica-b"
	stopA := startIPController(t, cp, oa)
	harness.Eventually(t, 20*time.Second, func() (bool, error) { return holder() == "replica-a", nil }, "replica-a to lead")
	// Every request replica-b sends, by whether it is about the Lease.
	var bReqs requestLog
	cfgB := rest.CopyConfig(cp.Config)
	cfgB.Wrap(bReqs.wrap)
	startIPControllerWith(t, cp, cfgB, ob)
	ipamPool(t, cp, rangePool("led", "10.85.0.0/24", "10.85.0.10", 10))
	poolTotal := func() int64 {
		p, err := cp.Ecloud.IPPools().Get(cp.Ctx, "led", metav1.GetOptions{})
		if err != nil {
			return -1
		}
		return p.Status.Total
	}
	harness.Eventually(t, 20*time.Second, func() (bool, error) { return poolTotal() == 10, nil }, "the leader to write pool status")
	// replica-b is alive and contending (it tried the Lease) but idle: no informer, no write.
	harness.Eventually(t, 20*time.Second, func() (bool, error) { return bReqs.count(true) >= 2, nil }, "replica-b to try the Lease")
	if h := holder(); h != "replica-a" {
		t.Fatalf("lease holder %q, want replica-a", h)
	}
	if n := bReqs.count(false); n != 0 {
		t.Fatalf("replica-b, not holding the Lease, sent %d requests besides the Lease's: %v", n, bReqs.others())
	}
	stopA()
	harness.Eventually(t, 30*time.Second, func() (bool, error) { return holder() == "replica-b", nil }, "replica-b to take over")
	ipamPool(t, cp, rangePool("after", "10.86.0.0/24", "10.86.0.10", 7))
	harness.Eventually(t, 20*time.Second, func() (bool, error) {
		p, err := cp.Ecloud.IPPools().Get(cp.Ctx, "after", metav1.GetOptions{})
		return err == nil && p.Status.Total == 7, err
	}, "the new leader to write pool status")
	if bReqs.count(false) == 0 {
		t.Error("replica-b leads and wrote pool status, yet its request log shows no request besides the Lease's: the log sees nothing")
	}
}

// requestLog counts the requests of one client (through rest.Config.Wrap), Lease requests apart.
type requestLog struct {
	mu            sync.Mutex
	leases        int
	otherRequests []string
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		l.mu.Lock()
		if strings.Contains(r.URL.Path, "/apis/coordination.k8s.io/") && strings.Contains(r.URL.Path, "/leases") {
			l.leases++
		} else {
			l.otherRequests = append(l.otherRequests, r.Method+" "+r.URL.Path)
		}
		l.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

// count returns the number of Lease requests (lease) or of the others.
func (l *requestLog) count(lease bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lease {
		return l.leases
	}
	return len(l.otherRequests)
}

func (l *requestLog) others() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.otherRequests...)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
