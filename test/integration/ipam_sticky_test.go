package integration

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/harness"
)

// ipamStatefulSet creates a StatefulSet object (no controller runs in this test; its pods are
// created by the test with the set as owner).
func ipamStatefulSet(tb testing.TB, cp *harness.ControlPlane, ns, name string, replicas int32, podAnn map[string]string) *appsv1.StatefulSet {
	tb.Helper()
	labels := map[string]string{"app": name}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnn},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/db"}}},
			},
		},
	}
	created, err := cp.Kube.AppsV1().StatefulSets(ns).Create(cp.Ctx, set, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("create StatefulSet %s/%s: %v", ns, name, err)
	}
	return created
}

// TestIPAMStickyFollowsPod: a StatefulSet pod reserved and bound on a dc-a node, deleted and
// recreated (new UID) on a dc-b node, gets the same IP; the claim follows it (node, UID, phase).
// The recreated pod is served by a second allocator, as on another host.
func TestIPAMStickyFollowsPod(t *testing.T) {
	cp := harness.Start(t)
	nodes := cp.CreateNodes(t, harness.TwoDatacenters(1))
	a1 := ipamAllocator(t, cp, func(c *ipam.Config) { c.RecordAllocations = true })
	a2 := ipamAllocator(t, cp)
	ipamNamespace(t, cp, "shop", nil, nil)
	ipamPool(t, cp, rangePool("both-dcs", "10.30.0.0/24", "10.30.0.10", 50, func(s *v1alpha1.IPPoolSpec) { s.Default = true }), a1, a2)
	set := ipamStatefulSet(t, cp, "shop", "db", 3, nil)

	pod := apiPod(t, cp, "shop", "db-0", nil, setOwner("db", set.UID))
	reserved, err := a1.Allocate(cp.Ctx, ipam.Request{Pod: pod, Node: nodes[0]})
	if err != nil {
		t.Fatal(err)
	}
	if reserved.Spec.Mode != v1alpha1.ModeSticky || reserved.Spec.ReleasePolicy != v1alpha1.ReleaseOnScaleDown ||
		reserved.Spec.Owner.Kind != "StatefulSet" || ptr.Deref(reserved.Spec.Owner.Ordinal, -1) != 0 {
		t.Fatalf("claim spec %+v: want Sticky OnScaleDown StatefulSet ordinal 0", reserved.Spec)
	}
	sel := fields.Set{"involvedObject.uid": string(pod.UID), "reason": "IPAllocated"}.AsSelector().String()
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		evs, err := cp.Kube.CoreV1().Events("shop").List(cp.Ctx, metav1.ListOptions{FieldSelector: sel})
		return err == nil && len(evs.Items) == 1 && strings.Contains(evs.Items[0].Message, reserved.Spec.IP), err
	}, "an IPAllocated Event on db-0")
	bound, err := a1.Bind(cp.Ctx, pod, nodes[0], "sandbox-1")
	if err != nil {
		t.Fatal(err)
	}
	if bound.Name != reserved.Name || bound.Status.Phase != v1alpha1.PhaseBound || bound.Status.ContainerID != "sandbox-1" {
		t.Fatalf("bind: %+v", bound.Status)
	}
	// Asking again (a scheduler retry) is answered from the same claim without a new IP.
	again, err := a1.Allocate(cp.Ctx, ipam.Request{Pod: pod, Node: nodes[0]})
	if err != nil || again.Name != reserved.Name || again.Status.Phase != v1alpha1.PhaseBound {
		t.Fatalf("second Allocate: %v %+v", err, again)
	}

	forceDeletePod(t, cp, "shop", "db-0")
	moved := apiPod(t, cp, "shop", "db-0", nil, setOwner("db", set.UID))
	if err := a2.Check(moved, nodes[1]); err != nil {
		t.Fatalf("Check for the moved pod: %v", err)
	}
	got, err := a2.Allocate(cp.Ctx, ipam.Request{Pod: moved, Node: nodes[1], Phase: v1alpha1.PhaseBound, ContainerID: "sandbox-2"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.IP != reserved.Spec.IP {
		t.Fatalf("recreated db-0 got IP %s, want its sticky IP %s", got.Spec.IP, reserved.Spec.IP)
	}
	if got.Status.Node != nodes[1].Name || got.Status.PodUID != moved.UID || got.Status.Phase != v1alpha1.PhaseBound {
		t.Fatalf("claim status after the move: %+v", got.Status)
	}
	if n := len(claimsByIP(t, cp)); n != 1 {
		t.Fatalf("%d claims, want 1", n)
	}

	// An ephemeral pod of the same pool gets another IP, and its own again when it asks twice.
	web := memPod("shop", "web-1", nil)
	e1, err := a2.Allocate(cp.Ctx, ipam.Request{Pod: web, Node: nodes[1]})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := a1.Bind(cp.Ctx, web, nodes[1], "sandbox-3")
	if err != nil || e2.Spec.IP != e1.Spec.IP || e1.Spec.IP == reserved.Spec.IP {
		t.Fatalf("ephemeral: allocate %s, bind %v %v (sticky IP %s)", e1.Spec.IP, e2, err, reserved.Spec.IP)
	}
	// A new instance of it (new UID) is a new pod for ephemeral IPAM.
	web2 := memPod("shop", "web-1", nil)
	if _, err := a1.Bind(cp.Ctx, web2, nodes[1], "sandbox-4"); ipam.ReasonOf(err) != ipam.ReasonNotReserved {
		t.Fatalf("Bind of a new ephemeral instance: want NotReserved, got %v", err)
	}
}
