package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/scheduler-plugins/ippool"
	"github.com/ecloud-io/ecloud/test/harness"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const ippoolScheduler = "ecloud-scheduler"

// IPPool profiles: the recommended one, where IPPool is the first Bind plugin (it writes the pod's
// IP claim right before binding), and one where the DefaultBinder binds and IPPool writes the
// claim at PreBind.
const (
	ippoolBinds   = "plugins:\n  multiPoint:\n    enabled:\n    - name: IPPool\n  bind:\n    enabled:\n    - name: IPPool\n"
	ippoolPreBind = "plugins:\n  multiPoint:\n    enabled:\n    - name: IPPool\n"
)

// startIPPoolScheduler runs the real kube-scheduler with the IPPool plugin for profile
// ecloud-scheduler, on 2 datacenters × 3 nodes, with pool-a reaching dc-a and pool-b reaching dc-b,
// each with exactly `size` allocatable IPs and usable by the namespaces given.
func startIPPoolScheduler(t *testing.T, size int, namespaces ...string) *harness.ControlPlane {
	return startIPPoolSchedulerWith(t, ippoolBinds, size, namespaces...)
}

// startIPPoolSchedulerWith is startIPPoolScheduler with the profile's plugins given.
func startIPPoolSchedulerWith(t *testing.T, plugins string, size int, namespaces ...string) *harness.ControlPlane {
	t.Helper()
	cp := harness.Start(t)
	cp.CreateNodes(t, harness.TwoDatacenters(3))
	for i, dc := range []string{"dc-a", "dc-b"} {
		name := "pool-" + strings.TrimPrefix(dc, "dc-")
		pool := &v1alpha1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.IPPoolSpec{
				CIDR:          fmt.Sprintf("10.%d.0.0/24", 20+i),
				Gateway:       fmt.Sprintf("10.%d.0.1", 20+i),
				VLAN:          int32(100 + i),
				IncludeRanges: []v1alpha1.IPRange{{Start: fmt.Sprintf("10.%d.0.10", 20+i), End: fmt.Sprintf("10.%d.0.%d", 20+i, 9+size)}},
				NodeSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.DefaultDatacenterLabel: dc}},
				Namespaces:    namespaces,
			},
		}
		if _, err := cp.Ecloud.IPPools().Create(cp.Ctx, pool, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range append([]string{"other"}, namespaces...) {
		if _, err := cp.Kube.CoreV1().Namespaces().Create(cp.Ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cp.StartScheduler(t, harness.SchedulerConfig(ippoolScheduler, plugins),
		app.WithPlugin(ippool.Name, ippool.New))
	return cp
}

func ipPoolPod(ns, name, pools string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "race"},
			Annotations: map[string]string{v1alpha1.AnnotationIPPools: pools}},
		Spec: v1.PodSpec{SchedulerName: ippoolScheduler, Containers: []v1.Container{{Name: "c", Image: "workload"}}},
	}
}

// unschedulableMessage is the PodScheduled=False message of a pod, "" while it has none.
func unschedulableMessage(p *v1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse {
			return c.Message
		}
	}
	return ""
}

// checkClaimsMatchPods asserts every bound pod has exactly one claim, on its node, and no claim is
// held by a pod that is not bound: zero duplicate and zero stray IPs.
func checkClaimsMatchPods(t *testing.T, cp *harness.ControlPlane, ns string) (bound int) {
	t.Helper()
	pods, err := cp.Kube.CoreV1().Pods(ns).List(cp.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := cp.Ecloud.IPClaims().List(cp.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byPod := map[string][]v1alpha1.IPClaim{}
	for _, c := range claims.Items {
		if c.Spec.Owner.Namespace == ns {
			byPod[c.Spec.Owner.PodName] = append(byPod[c.Spec.Owner.PodName], c)
		}
	}
	for _, p := range pods.Items {
		cs := byPod[p.Name]
		delete(byPod, p.Name)
		if p.Spec.NodeName == "" {
			if len(cs) != 0 {
				t.Errorf("pending pod %s holds %d claim(s)", p.Name, len(cs))
			}
			continue
		}
		bound++
		if len(cs) != 1 {
			t.Errorf("bound pod %s holds %d claims, want 1", p.Name, len(cs))
			continue
		}
		if cs[0].Status.Node != p.Spec.NodeName || cs[0].Status.PodUID != p.UID {
			t.Errorf("claim %s of pod %s is for node %q uid %q; pod is on %q uid %q", cs[0].Name, p.Name, cs[0].Status.Node, cs[0].Status.PodUID, p.Spec.NodeName, p.UID)
		}
	}
	for pod, cs := range byPod {
		t.Errorf("claim(s) %v held for pod %s that does not exist", cs[0].Name, pod)
	}
	return bound
}

// TestIPPoolRaceForLastIPs: 50 pods race for the 10 free IPs of pool-a: exactly 10 bind (all in
// dc-a, each with its own claim), 40 stay Pending with the pool named; freeing 5 IPs lets exactly 5
// more bind within seconds. Both ways of writing the claims: at Bind (IPPool binds; the scheduler
// then never patches a pod's nominatedNodeName) and at PreBind (it does, before every binding).
func TestIPPoolRaceForLastIPs(t *testing.T) {
	for _, tc := range []struct {
		name, plugins string
		nominates     bool
	}{{"IPPoolBinds", ippoolBinds, false}, {"PreBind", ippoolPreBind, true}} {
		t.Run(tc.name, func(t *testing.T) {
			nominated := testIPPoolRaceForLastIPs(t, tc.plugins)
			t.Logf("%d pod updates set status.nominatedNodeName", nominated)
			if (nominated > 0) != tc.nominates {
				t.Errorf("%d pod updates set status.nominatedNodeName; want some: %v", nominated, tc.nominates)
			}
		})
	}
}

// watchNominations counts the pod updates in ns that set status.nominatedNodeName (the scheduler
// does so before a PreBind with work) until the test ends; the result is read after stop.
func watchNominations(t *testing.T, cp *harness.ControlPlane, ns string) (stop func() int) {
	t.Helper()
	w, err := cp.Kube.CoreV1().Pods(ns).Watch(cp.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() {
		n := 0
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*v1.Pod); ok && p.Status.NominatedNodeName != "" {
				n++
			}
		}
		done <- n
	}()
	return func() int {
		w.Stop()
		return <-done
	}
}

func testIPPoolRaceForLastIPs(t *testing.T, plugins string) (nominated int) {
	cp := startIPPoolSchedulerWith(t, plugins, 10, "shop")
	const ns = "shop"
	stop := watchNominations(t, cp, ns)
	defer func() { nominated = stop() }()
	for i := 0; i < 50; i++ {
		if _, err := cp.Kube.CoreV1().Pods(ns).Create(cp.Ctx, ipPoolPod(ns, fmt.Sprintf("race-%02d", i), "pool-a"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	settled := func(wantBound int) func() (bool, error) {
		return func() (bool, error) {
			pods, err := cp.Kube.CoreV1().Pods(ns).List(cp.Ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			bound, pending := 0, 0
			for _, p := range pods.Items {
				switch msg := unschedulableMessage(&p); {
				case p.Spec.NodeName != "":
					bound++
				case strings.Contains(msg, "pool-a") && strings.Contains(msg, "exhausted"):
					pending++
				}
			}
			if bound > wantBound {
				return false, fmt.Errorf("%d pods bound, more than the %d free IPs", bound, wantBound)
			}
			return bound == wantBound && bound+pending == len(pods.Items), nil
		}
	}
	harness.Eventually(t, 60*time.Second, settled(10), "10 pods bound and 40 Pending with pool-a exhausted")
	if got := checkClaimsMatchPods(t, cp, ns); got != 10 {
		t.Fatalf("%d pods bound, want 10", got)
	}
	pods, err := cp.Kube.CoreV1().Pods(ns).List(cp.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var boundPods []v1.Pod
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" {
			if !strings.HasPrefix(p.Spec.NodeName, "dc-a-") {
				t.Errorf("pod %s bound to %s, which pool-a does not reach", p.Name, p.Spec.NodeName)
			}
			boundPods = append(boundPods, p)
		} else if msg := unschedulableMessage(&p); !strings.Contains(msg, "IP pool(s) pool-a exhausted") {
			t.Errorf("pending pod %s: message %q does not name the exhausted pool", p.Name, msg)
		}
	}
	t.Logf("pending message: %q", unschedulableMessage(&pods.Items[len(pods.Items)-1]))

	// Free 5 IPs as the IP controller does when pods go: delete the pods and their claims.
	claims, err := cp.Ecloud.IPClaims().List(cp.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range boundPods[:5] {
		if err := cp.Kube.CoreV1().Pods(ns).Delete(cp.Ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		for _, c := range claims.Items {
			if c.Spec.Owner.PodName == p.Name {
				if err := cp.Ecloud.IPClaims().Delete(cp.Ctx, c.Name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	harness.Eventually(t, 15*time.Second, settled(10), "exactly 5 more pods to bind after 5 IPs were freed")
	if got := checkClaimsMatchPods(t, cp, ns); got != 10 {
		t.Fatalf("%d pods bound after freeing 5 IPs, want 10", got)
	}
	return
}

// TestIPPoolStickyClaimKeepsPool: a StatefulSet pod holding a sticky claim in one pool, deleted,
// is rescheduled only onto nodes that pool reaches, with the same IP; with every such node
// cordoned it stays Pending and says why.
func TestIPPoolStickyClaimKeepsPool(t *testing.T) {
	cp := startIPPoolScheduler(t, 10, "shop")
	cp.StartControllers(t, harness.StatefulSetController)
	cp.SimulateKubelets(t, nil)
	const ns = "shop"
	tmpl := podTemplate("db")
	tmpl.Annotations = map[string]string{v1alpha1.AnnotationIPPools: "pool-a,pool-b"}
	tmpl.Spec.SchedulerName = ippoolScheduler
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: tmpl,
		},
	}
	if _, err := cp.Kube.AppsV1().StatefulSets(ns).Create(cp.Ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func(oldUID string) (*v1.Pod, error) {
		p, err := cp.Kube.CoreV1().Pods(ns).Get(cp.Ctx, "db-0", metav1.GetOptions{})
		if err != nil || string(p.UID) == oldUID || p.Spec.NodeName == "" {
			return nil, err
		}
		return p, nil
	}
	var pod *v1.Pod
	harness.Eventually(t, 30*time.Second, func() (bool, error) { pod, _ = running(""); return pod != nil, nil }, "db-0 to be bound")
	claims, err := cp.Ecloud.IPClaims().List(cp.Ctx, metav1.ListOptions{})
	if err != nil || len(claims.Items) != 1 {
		t.Fatalf("want 1 claim, got %v (err %v)", claims, err)
	}
	claim := claims.Items[0]
	if claim.Spec.Mode != v1alpha1.ModeSticky {
		t.Fatalf("StatefulSet pod's claim is %s, want Sticky", claim.Spec.Mode)
	}
	dc := map[string]string{"pool-a": "dc-a-", "pool-b": "dc-b-"}[claim.Spec.Pool]
	t.Logf("db-0 holds %s from %s on %s", claim.Spec.IP, claim.Spec.Pool, pod.Spec.NodeName)

	// Twice: cordon the pod's node, delete the pod; it must come back on another node of the same
	// pool's datacenter, with the same IP.
	for round := 0; round < 2; round++ {
		cp.SetUnschedulable(t, pod.Spec.NodeName, true)
		old := pod
		if err := cp.Kube.CoreV1().Pods(ns).Delete(cp.Ctx, "db-0", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 30*time.Second, func() (bool, error) { pod, _ = running(string(old.UID)); return pod != nil, nil }, "db-0 to come back")
		if !strings.HasPrefix(pod.Spec.NodeName, dc) || pod.Spec.NodeName == old.Spec.NodeName {
			t.Fatalf("round %d: db-0 moved from %s to %s; its sticky IP's pool %s reaches only %s*", round, old.Spec.NodeName, pod.Spec.NodeName, claim.Spec.Pool, dc)
		}
		c, err := cp.Ecloud.IPClaims().Get(cp.Ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("round %d: sticky claim %s gone: %v", round, claim.Name, err)
		}
		if c.Status.Node != pod.Spec.NodeName || c.Status.PodUID != pod.UID {
			t.Fatalf("round %d: claim is for node %s uid %s, pod is on %s uid %s", round, c.Status.Node, c.Status.PodUID, pod.Spec.NodeName, pod.UID)
		}
	}
	// The pool's last node cordoned too: db-0 waits, naming its sticky IP's pool.
	cp.SetUnschedulable(t, pod.Spec.NodeName, true)
	old := pod
	if err := cp.Kube.CoreV1().Pods(ns).Delete(cp.Ctx, "db-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		p, err := cp.Kube.CoreV1().Pods(ns).Get(cp.Ctx, "db-0", metav1.GetOptions{})
		if err != nil || p.UID == old.UID {
			return false, nil
		}
		if p.Spec.NodeName != "" {
			return false, fmt.Errorf("db-0 bound to %s although every node of %s is cordoned", p.Spec.NodeName, claim.Spec.Pool)
		}
		msg := unschedulableMessage(p)
		return strings.Contains(msg, "sticky IP "+claim.Spec.IP) && strings.Contains(msg, claim.Spec.Pool), nil
	}, "db-0 Pending with a message naming pool %s and IP %s", claim.Spec.Pool, claim.Spec.IP)
}

// TestIPPoolNamespaceNotAllowed: a pod naming a pool its namespace may not use is unschedulable,
// and the message names the pool and the namespace.
func TestIPPoolNamespaceNotAllowed(t *testing.T) {
	cp := startIPPoolScheduler(t, 10, "shop")
	cases := []struct{ name, pools, want string }{
		{"forbidden", "pool-a", "other"},
		{"unknown", "pool-zz", "pool-zz"},
		{"malformed", "pool-a,,", v1alpha1.AnnotationIPPools},
	}
	for _, tc := range cases {
		if _, err := cp.Kube.CoreV1().Pods("other").Create(cp.Ctx, ipPoolPod("other", tc.name, tc.pools), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		harness.Eventually(t, 30*time.Second, func() (bool, error) {
			p, err := cp.Kube.CoreV1().Pods("other").Get(cp.Ctx, tc.name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.Spec.NodeName != "" {
				return false, fmt.Errorf("pod %s bound to %s", tc.name, p.Spec.NodeName)
			}
			msg := unschedulableMessage(p)
			if msg != "" {
				t.Logf("%s: %s", tc.name, msg)
			}
			return strings.Contains(msg, tc.want), nil
		}, "pod %s unschedulable with a message containing %q", tc.name, tc.want)
	}
}

// TestIPPoolEveryFreeIPAtOnce: as many pods as the pool has IPs, created at once, all bind, and
// none is ever refused as "exhausted" on the way: a pod whose claim is being written counts once
// against the pool, never twice.
func TestIPPoolEveryFreeIPAtOnce(t *testing.T) {
	for _, tc := range []struct{ name, plugins string }{{"IPPoolBinds", ippoolBinds}, {"PreBind", ippoolPreBind}} {
		t.Run(tc.name, func(t *testing.T) {
			const ns, size = "shop", 10
			cp := startIPPoolSchedulerWith(t, tc.plugins, size, ns)
			for i := 0; i < size; i++ {
				if _, err := cp.Kube.CoreV1().Pods(ns).Create(cp.Ctx, ipPoolPod(ns, fmt.Sprintf("all-%02d", i), "pool-a"), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			harness.Eventually(t, 60*time.Second, func() (bool, error) {
				pods, err := cp.Kube.CoreV1().Pods(ns).List(cp.Ctx, metav1.ListOptions{})
				if err != nil {
					return false, err
				}
				for _, p := range pods.Items {
					if msg := unschedulableMessage(&p); strings.Contains(msg, "exhausted") {
						return false, fmt.Errorf("pod %s refused while the pool had an IP for it: %s", p.Name, msg)
					}
					if p.Spec.NodeName == "" {
						return false, nil
					}
				}
				return true, nil
			}, "%d pods bound from a %d-IP pool", size, size)
			if got := checkClaimsMatchPods(t, cp, ns); got != size {
				t.Fatalf("%d pods hold claims, want %d", got, size)
			}
		})
	}
}
