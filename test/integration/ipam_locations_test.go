package integration

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/controller/locationslices"
	"github.com/ecloud-io/ecloud/cni/locations"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestIPAMLocationSlices: the location slice controller follows the claims on the real
// apiserver: bound claims appear in their node's slices (spilling into further slices past the
// cap), a move shows up on the new node and leaves the old, a release removes the IP, a burst
// of claims costs fewer writes than claims, every node with a tunnel endpoint has a slice, and
// a deleted node's slices go. A follower (what netd runs) sees every step.
func TestIPAMLocationSlices(t *testing.T) {
	cp := harness.Start(t)
	ctx := cp.Ctx
	const perSlice = 4
	startLocationSlices(t, cp, locationslices.Config{BatchDelay: 500 * time.Millisecond, MaxPerSlice: perSlice})
	pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "loc"}, Spec: v1alpha1.IPPoolSpec{CIDR: "10.90.0.0/24", Gateway: "10.90.0.1", VLAN: 300}}
	if _, err := cp.Ecloud.IPPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tunnel := map[string]string{"loc-1": "192.0.2.1", "loc-2": "192.0.2.2"}
	for name, ip := range tunnel {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{locations.TunnelIPAnnotation: ip}}}
		if _, err := cp.Kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := locations.New(cp.Ecloud, locations.Options{})
	go f.Run(ctx)

	slicesOf := func(node string) []v1alpha1.IPLocationSlice {
		t.Helper()
		l, err := cp.Ecloud.IPLocationSlices().List(ctx, metav1.ListOptions{FieldSelector: "spec.node=" + node})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	// Every node with a tunnel endpoint announces itself with an (empty) slice.
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		return len(f.Nodes()) == 2 && len(slicesOf("loc-1")) == 1 && len(slicesOf("loc-2")) == 1, nil
	}, "an empty slice per node")

	claim := func(i int, node string) *v1alpha1.IPClaim {
		ip := fmt.Sprintf("10.90.0.%d", 10+i)
		return &v1alpha1.IPClaim{ObjectMeta: metav1.ObjectMeta{Name: ip},
			Spec: v1alpha1.IPClaimSpec{Pool: "loc", IP: ip, Owner: v1alpha1.ClaimOwner{Namespace: "loc", PodName: fmt.Sprintf("p%d", i)},
				Mode: v1alpha1.ModeSticky, ReleasePolicy: v1alpha1.ReleaseNever},
			Status: v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseBound, Node: node}}
	}
	located := func(ip, node string) func() (bool, error) {
		return func() (bool, error) {
			l, ok := f.Lookup(netip.MustParseAddr(ip))
			if node == "" {
				return !ok, nil
			}
			return ok && l.Node == node && l.TunnelIP.String() == tunnel[node] && l.VLAN == 300, nil
		}
	}

	// A burst of 10 claims on loc-1: fewer writes than claims, spread over ceil(10/4) slices.
	w, err := cp.Ecloud.IPLocationSlices().Watch(ctx, metav1.ListOptions{FieldSelector: "spec.node=loc-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const burst = 10
	errs := make(chan error, burst)
	for i := range burst {
		go func() {
			_, err := cp.Ecloud.IPClaims().Create(ctx, claim(i, "loc-1"), metav1.CreateOptions{})
			errs <- err
		}()
	}
	for range burst {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range burst {
		harness.Eventually(t, 10*time.Second, located(fmt.Sprintf("10.90.0.%d", 10+i), "loc-1"), "claim %d located on loc-1", i)
	}
	writes := 0
	for drained := false; !drained; {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				writes++
			}
		case <-time.After(time.Second):
			drained = true
		}
	}
	if writes >= burst {
		t.Errorf("%d slice writes for a burst of %d claims, want fewer (batched)", writes, burst)
	}
	t.Logf("%d slice writes for a burst of %d claims", writes, burst)
	sl := slicesOf("loc-1")
	if len(sl) != (burst+perSlice-1)/perSlice {
		t.Errorf("loc-1 has %d slices for %d IPs at %d per slice", len(sl), burst, perSlice)
	}
	for _, s := range sl {
		if s.Spec.Len() > perSlice || s.Spec.TunnelIP != tunnel["loc-1"] || s.Spec.WriteTime == nil ||
			len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Node" || s.OwnerReferences[0].Name != "loc-1" {
			t.Errorf("slice %s: %+v owners %+v", s.Name, s.Spec, s.OwnerReferences)
		}
	}

	// A sticky IP moves to loc-2: the new node has it, the old one no longer lists it.
	moved, err := cp.Ecloud.IPClaims().Get(ctx, "10.90.0.10", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moved.Status.Node = "loc-2"
	if _, err := cp.Ecloud.IPClaims().Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	harness.Eventually(t, 10*time.Second, located("10.90.0.10", "loc-2"), "moved IP on loc-2")
	t.Logf("a move reached the follower in %v (batch delay 500ms)", time.Since(start).Round(time.Millisecond))
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		for _, s := range slicesOf("loc-1") {
			for _, nw := range s.Spec.Networks {
				for _, ip := range nw.IPs {
					if ip == "10.90.0.10" {
						return false, nil
					}
				}
			}
		}
		return true, nil
	}, "loc-1's slices drop the moved IP")

	// Released (sticky, on no node): located nowhere. Deleted: likewise.
	rel, err := cp.Ecloud.IPClaims().Get(ctx, "10.90.0.11", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rel.Status = v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseReserved}
	if _, err := cp.Ecloud.IPClaims().Update(ctx, rel, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cp.Ecloud.IPClaims().Delete(ctx, "10.90.0.12", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, located("10.90.0.11", ""), "released IP located nowhere")
	harness.Eventually(t, 10*time.Second, located("10.90.0.12", ""), "deleted IP located nowhere")

	// A slice changed by hand is put back.
	s := slicesOf("loc-2")[0]
	s.Spec.Networks = nil
	edited, err := cp.Ecloud.IPLocationSlices().Update(ctx, &s, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		got, err := cp.Ecloud.IPLocationSlices().Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.ResourceVersion != edited.ResourceVersion && got.Spec.Len() == 1, nil
	}, "hand-edited slice %s repaired", s.Name)
	harness.Eventually(t, 10*time.Second, located("10.90.0.10", "loc-2"), "the follower sees the repair")

	// The node goes: its slices go, and its IPs are located nowhere.
	if err := cp.Kube.CoreV1().Nodes().Delete(ctx, "loc-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		return len(slicesOf("loc-2")) == 0 && len(f.Nodes()) == 1, nil
	}, "loc-2's slices deleted with the node")
	if ok, _ := located("10.90.0.10", "")(); !ok {
		t.Error("an IP of a deleted node is still located")
	}
	if _, err := cp.Ecloud.IPLocationSlices().Get(context.Background(), locationslices.SliceName("loc-2", 0), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("slice of the deleted node: %v", err)
	}
}
