package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/scheduler-plugins/ippool"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestNodeBoundClaimWrites runs every ecloud identity with the RBAC and admission policies of
// manifests/ on an apiserver that authorizes by RBAC: netd of two nodes (ServiceAccount tokens
// bound to a pod on each node, as the kubelet projects them), ecloud-scheduler, the ip-controller
// and the node agent. netd of node A can do all its own work through netd's allocator and cannot
// bind, move, release or delete node B's claims, nor write IPPools; the scheduler only reserves;
// the ip-controller releases and writes the IPLocationSlices, which netd reads and cannot write;
// the node agent reports Events only about its own node.
func TestNodeBoundClaimWrites(t *testing.T) {
	cp := harness.Start(t, harness.WithAPIServerFlags("--authorization-mode=RBAC"))
	ctx := cp.Ctx
	installAccess(t, cp)
	cp.CreateNodes(t, harness.TwoDatacenters(1))
	const nodeA, nodeB, ns = "dc-a-node-0", "dc-b-node-0", "shop"
	ipamNamespace(t, cp, ns, nil, nil)
	ipamPool(t, cp, rangePool("pool-ab", "10.30.0.0/24", "10.30.0.10", 20, func(s *v1alpha1.IPPoolSpec) { s.Default = true }))

	netdA := serviceAccountIdentity(t, cp, "ecloud-netd", nodeA)
	netdB := serviceAccountIdentity(t, cp, "ecloud-netd", nodeB)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	waitForRefusal(t, "netd of node A creating a claim on node B", "ecloud-netd-node-bound", func() error {
		_, err := netdA.ecloud.IPClaims().Create(ctx, testClaim("10.30.0.200", nodeB), dryRun)
		return err
	})
	allocA, allocB := netdAllocator(t, cp, netdA, nodeA), netdAllocator(t, cp, netdB, nodeB)

	// Node B's own work: an ephemeral pod's IP, Bound on B.
	webB := nodePod(t, cp, ns, "web-b", nodeB)
	leaseB, err := allocB.Allocate(ctx, podRef(webB), "ctr-b", nodeB)
	if err != nil {
		t.Fatalf("netd of node B allocating for its own pod: %v", err)
	}
	claimB := getClaim(t, cp, leaseB.IP.Addr())
	if claimB.Status.Node != nodeB || claimB.Status.Phase != v1alpha1.PhaseBound {
		t.Fatalf("claim %s: phase %s node %q, want Bound on %s", claimB.Name, claimB.Status.Phase, claimB.Status.Node, nodeB)
	}

	refusedByNodeA := func(t *testing.T, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ecloud-netd-") || !strings.Contains(err.Error(), "netd of node "+nodeA) {
			t.Fatalf("got %v, want Forbidden by an ecloud-netd rule naming node %s", err, nodeA)
		}
	}
	t.Run("node A cannot write node B's claim", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			write func(c *v1alpha1.IPClaim) error
		}{
			{"bind it to node A", func(c *v1alpha1.IPClaim) error {
				c.Status.Node, c.Status.ContainerID = nodeA, "ctr-stolen"
				_, err := netdA.ecloud.IPClaims().Update(ctx, c, metav1.UpdateOptions{})
				return err
			}},
			{"release (unbind) it", func(c *v1alpha1.IPClaim) error {
				c.Status.Phase, c.Status.Node, c.Status.ContainerID, c.Status.BoundAt = v1alpha1.PhaseReserved, "", "", nil
				_, err := netdA.ecloud.IPClaims().Update(ctx, c, metav1.UpdateOptions{})
				return err
			}},
			{"give it another owner", func(c *v1alpha1.IPClaim) error {
				c.Spec.Owner.PodName = "web-a"
				_, err := netdA.ecloud.IPClaims().Update(ctx, c, metav1.UpdateOptions{})
				return err
			}},
			{"delete it", func(c *v1alpha1.IPClaim) error {
				return netdA.ecloud.IPClaims().Delete(ctx, c.Name, metav1.DeleteOptions{})
			}},
			{"bind it through netd's allocator (as if the pod ran on node A)", func(*v1alpha1.IPClaim) error {
				_, err := allocA.Allocate(ctx, podRef(webB), "ctr-stolen", nodeA)
				return err
			}},
			{"release it through netd's allocator", func(*v1alpha1.IPClaim) error {
				return allocA.Release(ctx, podRef(webB), "ctr-b", leaseB.IP.Addr())
			}},
			{"create a claim on node B", func(*v1alpha1.IPClaim) error {
				_, err := netdA.ecloud.IPClaims().Create(ctx, testClaim("10.30.0.201", nodeB), metav1.CreateOptions{})
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				refusedByNodeA(t, tc.write(getClaim(t, cp, leaseB.IP.Addr())))
				if got := getClaim(t, cp, leaseB.IP.Addr()); got.ResourceVersion != claimB.ResourceVersion {
					t.Fatalf("claim %s changed: %+v %+v, was %+v %+v", got.Name, got.Spec, got.Status, claimB.Spec, claimB.Status)
				}
			})
		}
		if _, err := cp.Ecloud.IPClaims().Get(ctx, "10.30.0.201", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("claim 10.30.0.201 on node B: %v, want NotFound", err)
		}
	})

	t.Run("node A cannot write IPPools", func(t *testing.T) {
		if _, err := netdA.ecloud.IPPools().Create(ctx, rangePool("pool-x", "10.31.0.0/24", "10.31.0.10", 5), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("create IPPool: %v, want Forbidden", err)
		}
		p, err := netdA.ecloud.IPPools().Get(ctx, "pool-ab", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.ExcludeIPs = []string{"10.30.0.10"}
		if _, err := netdA.ecloud.IPPools().Update(ctx, p, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("update IPPool: %v, want Forbidden", err)
		}
		if _, err := netdA.ecloud.IPPools().UpdateStatus(ctx, p, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("update IPPool status: %v, want Forbidden", err)
		}
		if err := netdA.ecloud.IPPools().Delete(ctx, "pool-ab", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("delete IPPool: %v, want Forbidden", err)
		}
	})

	t.Run("a netd token not bound to a pod writes nothing", func(t *testing.T) {
		unbound := serviceAccountIdentity(t, cp, "ecloud-netd", "")
		_, err := unbound.ecloud.IPClaims().Create(ctx, testClaim("10.30.0.202", nodeA), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "token bound to its pod") {
			t.Fatalf("got %v, want Forbidden asking for a pod-bound token", err)
		}
	})

	t.Run("node A does its own work", func(t *testing.T) {
		// An ephemeral pod: allocate (create, Bound on A), release (delete).
		webA := nodePod(t, cp, ns, "web-a", nodeA)
		lease, err := allocA.Allocate(ctx, podRef(webA), "ctr-a", nodeA)
		if err != nil {
			t.Fatalf("allocate: %v", err)
		}
		if c := getClaim(t, cp, lease.IP.Addr()); c.Status.Node != nodeA || c.Status.Phase != v1alpha1.PhaseBound {
			t.Fatalf("claim %s: phase %s node %q, want Bound on %s", c.Name, c.Status.Phase, c.Status.Node, nodeA)
		}
		if err := allocA.Release(ctx, podRef(webA), "ctr-a", lease.IP.Addr()); err != nil {
			t.Fatalf("release: %v", err)
		}
		if _, err := cp.Ecloud.IPClaims().Get(ctx, v1alpha1.ClaimName(lease.IP.Addr().String()), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("ephemeral claim after release: %v, want NotFound", err)
		}

		// A sticky pod: allocate, release (unbind: the claim stays for the next instance, on no
		// node), allocate again (bind the unassigned claim to A).
		db0 := nodePod(t, cp, ns, "db-0", nodeA, statefulSetPod("db"))
		sticky, err := allocA.Allocate(ctx, podRef(db0), "ctr-db-1", nodeA)
		if err != nil {
			t.Fatalf("allocate sticky: %v", err)
		}
		if err := allocA.Release(ctx, podRef(db0), "ctr-db-1", sticky.IP.Addr()); err != nil {
			t.Fatalf("release sticky: %v", err)
		}
		if c := getClaim(t, cp, sticky.IP.Addr()); c.Status.Node != "" || c.Status.Phase != v1alpha1.PhaseReserved {
			t.Fatalf("sticky claim after release: phase %s node %q, want Reserved on no node", c.Status.Phase, c.Status.Node)
		}
		again, err := allocA.Allocate(ctx, podRef(db0), "ctr-db-2", nodeA)
		if err != nil || again.IP != sticky.IP {
			t.Fatalf("allocate sticky again: %v %v, want %v", again.IP, err, sticky.IP)
		}

		// Its own claim's spec stays as allocated.
		c := getClaim(t, cp, sticky.IP.Addr())
		c.Spec.Owner.PodName = "db-9"
		_, err = netdA.ecloud.IPClaims().Update(ctx, c, metav1.UpdateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ecloud-netd-spec-immutable") {
			t.Fatalf("changing the owner of its own claim: %v, want Forbidden by ecloud-netd-spec-immutable", err)
		}
	})

	// ecloud-scheduler under its own ServiceAccount reserves IPs for the pods it schedules.
	sched := serviceAccountIdentity(t, cp, "ecloud-scheduler", "")
	cfg := strings.ReplaceAll(harness.SchedulerConfig(ippoolScheduler, ippoolBinds), harness.KubeconfigPlaceholder, sched.kubeconfig)
	cp.StartScheduler(t, cfg, app.WithPlugin(ippool.Name, ippool.New))

	t.Run("the scheduler reserves and netd binds", func(t *testing.T) {
		webS := schedulePod(t, cp, ns, "web-s", nodeA)
		c := waitForClaim(t, cp, ns, "web-s", nodeA, v1alpha1.PhaseReserved)
		lease, err := allocA.Allocate(ctx, podRef(webS), "ctr-s", nodeA)
		if err != nil || lease.IP.Addr().String() != c.Spec.IP {
			t.Fatalf("netd binding the reserved IP %s: %v %v", c.Spec.IP, lease.IP, err)
		}
		if got := getClaim(t, cp, lease.IP.Addr()); got.Status.Phase != v1alpha1.PhaseBound || got.Status.Node != nodeA {
			t.Fatalf("claim %s: phase %s node %q, want Bound on %s", got.Name, got.Status.Phase, got.Status.Node, nodeA)
		}

		// The scheduler binds nothing and releases only reservations.
		bound := getClaim(t, cp, lease.IP.Addr())
		bound.Status.Node = nodeB
		if _, err := sched.ecloud.IPClaims().Update(ctx, bound, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ecloud-scheduler-reserve-only") {
			t.Errorf("scheduler moving a Bound claim, keeping it Bound: %v, want Forbidden by ecloud-scheduler-reserve-only", err)
		}
		if err := sched.ecloud.IPClaims().Delete(ctx, bound.Name, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "Bound on node \""+nodeA) {
			t.Errorf("scheduler deleting a Bound claim: %v, want Forbidden naming the claim's node", err)
		}
		bad := testClaim("10.30.0.203", nodeA)
		bad.Status.Phase = v1alpha1.PhaseBound
		if _, err := sched.ecloud.IPClaims().Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ecloud-scheduler-reserve-only") {
			t.Errorf("scheduler creating a Bound claim: %v, want Forbidden by ecloud-scheduler-reserve-only", err)
		}
	})

	t.Run("a sticky IP moves from a dead node through the scheduler", func(t *testing.T) {
		db1 := nodePod(t, cp, ns, "db-1", nodeB, statefulSetPod("db"))
		lease, err := allocB.Allocate(ctx, podRef(db1), "ctr-db1", nodeB)
		if err != nil {
			t.Fatal(err)
		}
		// Node B dies: its netd never releases; the pod is force-deleted and comes back on A.
		forceDeletePod(t, cp, ns, "db-1")
		harness.Eventually(t, 10*time.Second, func() (bool, error) {
			_, err := cp.Kube.CoreV1().Pods(ns).Get(ctx, "db-1", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}, "pod db-1 to be gone")
		db1 = schedulePod(t, cp, ns, "db-1", nodeA, statefulSetPod("db"))
		waitForClaim(t, cp, ns, "db-1", nodeA, v1alpha1.PhaseReserved)
		moved, err := allocA.Allocate(ctx, podRef(db1), "ctr-db1-a", nodeA)
		if err != nil || moved.IP != lease.IP {
			t.Fatalf("netd of node A binding db-1's sticky IP %v: %v %v", lease.IP, moved.IP, err)
		}
	})

	t.Run("the ip-controller releases", func(t *testing.T) {
		ipc := serviceAccountIdentity(t, cp, "ecloud-ip-controller", "")
		if _, err := ipc.ecloud.IPClaims().Create(ctx, testClaim("10.30.0.204", nodeA), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("ip-controller creating a claim: %v, want Forbidden", err)
		}
		o := testControllerOptions()
		o.LeaseNamespace = "kube-system"
		startIPControllerWith(t, cp, ipc.cfg, o)
		forceDeletePod(t, cp, ns, "web-b")
		harness.Eventually(t, 30*time.Second, func() (bool, error) {
			_, err := cp.Ecloud.IPClaims().Get(ctx, claimB.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		}, "the ip-controller to release claim %s of deleted pod web-b", claimB.Name)

		// The location slices: the ip-controller writes them under its RBAC; netd reads them
		// and may write none.
		var slice v1alpha1.IPLocationSlice
		harness.Eventually(t, 30*time.Second, func() (bool, error) {
			l, err := netdA.ecloud.IPLocationSlices().List(ctx, metav1.ListOptions{FieldSelector: "spec.node=" + nodeA})
			if err != nil || len(l.Items) == 0 {
				return false, err
			}
			slice = l.Items[0]
			return true, nil
		}, "the ip-controller to write node %s's IPLocationSlice, netd of node A to read it", nodeA)
		forged := slice.DeepCopy()
		forged.Spec.Networks = []v1alpha1.LocatedNetwork{{Pool: "pool-ab", VLAN: 0, IPs: []string{claimB.Spec.IP}}}
		if _, err := netdA.ecloud.IPLocationSlices().Update(ctx, forged, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("netd of node A rewriting its IPLocationSlice: %v, want Forbidden", err)
		}
		forged = &v1alpha1.IPLocationSlice{ObjectMeta: metav1.ObjectMeta{Name: "forged"}, Spec: forged.Spec}
		if _, err := netdA.ecloud.IPLocationSlices().Create(ctx, forged, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("netd of node A creating an IPLocationSlice: %v, want Forbidden", err)
		}
		if err := netdB.ecloud.IPLocationSlices().Delete(ctx, slice.Name, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("netd of node B deleting node A's IPLocationSlice: %v, want Forbidden", err)
		}
	})

	t.Run("the node agent reports Events only about its node", func(t *testing.T) {
		agent := serviceAccountIdentity(t, cp, "ecloud-node-agent", nodeA)
		create := func(ev *corev1.Event) error {
			_, err := agent.kube.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
			return err
		}
		waitForRefusal(t, "the node agent of node A reporting about node B", "ecloud-node-agent-node-bound", func() error {
			ev := testEvent("default", "Node", nodeB, nodeA)
			_, err := agent.kube.CoreV1().Events("default").Create(ctx, ev, dryRun)
			return err
		})
		for _, tc := range []struct {
			name   string
			ev     *corev1.Event
			refuse string
		}{
			{"its node", testEvent("default", "Node", nodeA, nodeA), ""},
			{"a pod", testEvent(ns, "Pod", "web-a", nodeA), ""},
			{"another node", testEvent("default", "Node", nodeB, nodeA), "about node " + nodeA + " and pods"},
			{"as another node", testEvent("default", "Node", nodeB, nodeB), "from node " + nodeA},
			{"another kind", testEvent("default", "Namespace", ns, nodeA), "about node " + nodeA + " and pods"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := create(tc.ev)
				switch {
				case tc.refuse == "" && err != nil:
					t.Fatalf("refused: %v", err)
				case tc.refuse != "" && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.refuse)):
					t.Fatalf("got %v, want Forbidden containing %q", err, tc.refuse)
				}
			})
		}
	})
}

// testClaim is an ephemeral claim of pod shop/probe Reserved on node.
func testClaim(ip, node string) *v1alpha1.IPClaim {
	return &v1alpha1.IPClaim{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ClaimName(ip)},
		Spec: v1alpha1.IPClaimSpec{Pool: "pool-ab", IP: ip, Mode: v1alpha1.ModeEphemeral, ReleasePolicy: v1alpha1.ReleaseOnDelete,
			Owner: v1alpha1.ClaimOwner{Namespace: "shop", PodName: "probe", Kind: "Pod"}},
		Status: v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseReserved, Node: node, PodUID: uuid.NewUUID()},
	}
}

// testEvent is a Warning Event about kind/name reported from host.
func testEvent(ns, kind, name, host string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, GenerateName: "probe-"},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: name, Namespace: map[bool]string{true: ns}[kind == "Pod"]},
		Reason:         "Probe", Message: "probe", Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "ecloud-node-agent", Host: host},
	}
}

func podRef(p *corev1.Pod) nodeapi.PodRef {
	return nodeapi.PodRef{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID)}
}

// statefulSetPod makes a pod one of StatefulSet set's (sticky IP, release on scale-down).
func statefulSetPod(set string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{*setOwner(set, types.UID("uid-"+set))}
	}
}

func getClaim(t *testing.T, cp *harness.ControlPlane, ip netip.Addr) *v1alpha1.IPClaim {
	t.Helper()
	c, err := cp.Ecloud.IPClaims().Get(cp.Ctx, v1alpha1.ClaimName(ip.String()), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get claim of %s: %v", ip, err)
	}
	return c
}

// schedulePod creates a pod for ecloud-scheduler pinned to node by its hostname label and waits
// until it is bound there.
func schedulePod(t *testing.T, cp *harness.ControlPlane, ns, name, node string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{SchedulerName: ippoolScheduler, NodeSelector: map[string]string{corev1.LabelHostname: node},
			Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app"}}},
	}
	for _, m := range mutate {
		m(p)
	}
	if _, err := cp.Kube.CoreV1().Pods(ns).Create(cp.Ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	var got *corev1.Pod
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		var err error
		got, err = cp.Kube.CoreV1().Pods(ns).Get(cp.Ctx, name, metav1.GetOptions{})
		return err == nil && got.Spec.NodeName == node, err
	}, "pod %s/%s to be scheduled to %s", ns, name, node)
	return got
}

// waitForClaim waits until pod ns/name has a claim in phase on node.
func waitForClaim(t *testing.T, cp *harness.ControlPlane, ns, name, node string, phase v1alpha1.ClaimPhase) *v1alpha1.IPClaim {
	t.Helper()
	var found *v1alpha1.IPClaim
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		list, err := cp.Ecloud.IPClaims().List(cp.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			c := &list.Items[i]
			if c.Spec.Owner.Namespace == ns && c.Spec.Owner.PodName == name && c.Status.Node == node && c.Status.Phase == phase {
				found = c
				return true, nil
			}
		}
		return false, nil
	}, "a %s claim of pod %s/%s on node %s", phase, ns, name, node)
	return found
}
