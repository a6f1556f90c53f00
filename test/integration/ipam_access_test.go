package integration

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestIPAMAccess: pool access by namespace (list and selector), namespace default pools, default
// pools, pools that do not reach the node, overlapping pools, and IPs held by others.
func TestIPAMAccess(t *testing.T) {
	cp := harness.Start(t)
	nodes := cp.CreateNodes(t, harness.TwoDatacenters(1)) // dc-a-node-0, dc-b-node-0
	a := ipamAllocator(t, cp)
	ipamNamespace(t, cp, "shop", map[string]string{"team": "shop"}, nil)
	ipamNamespace(t, cp, "intruder", nil, nil)
	ipamNamespace(t, cp, "team-ns", map[string]string{"team": "pay"}, map[string]string{v1alpha1.AnnotationIPPools: "pay-pool"})
	dcA := &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.DefaultDatacenterLabel: "dc-a"}}
	ipamPool(t, cp, rangePool("shop-pool", "10.40.0.0/24", "10.40.0.10", 20, func(s *v1alpha1.IPPoolSpec) {
		s.Namespaces = []string{"shop"}
		s.NodeSelector = dcA
	}), a)
	ipamPool(t, cp, rangePool("pay-pool", "10.41.0.0/24", "10.41.0.10", 20, func(s *v1alpha1.IPPoolSpec) {
		s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "pay"}}
	}), a)
	ipamPool(t, cp, rangePool("default-pool", "10.42.0.0/24", "10.42.0.10", 20, func(s *v1alpha1.IPPoolSpec) { s.Default = true }), a)
	ipamPool(t, cp, rangePool("overlaps-default", "10.42.0.0/25", "10.42.0.10", 20), a)

	t.Run("namespace not allowed is refused with an Event", func(t *testing.T) {
		pod := apiPod(t, cp, "intruder", "sneaky", map[string]string{v1alpha1.AnnotationIPPools: "shop-pool"}, nil)
		if err := a.Check(pod, nodes[0]); ipam.ReasonOf(err) != ipam.ReasonNamespaceNotAllowed {
			t.Fatalf("Check: want NamespaceNotAllowed, got %v", err)
		}
		_, err := a.Allocate(cp.Ctx, ipam.Request{Pod: pod, Node: nodes[0]})
		if ipam.ReasonOf(err) != ipam.ReasonNamespaceNotAllowed || !strings.Contains(err.Error(), `"intruder"`) || !strings.Contains(err.Error(), `"shop-pool"`) {
			t.Fatalf("want NamespaceNotAllowed naming namespace and pool, got %v", err)
		}
		sel := fields.Set{"involvedObject.name": "sneaky", "reason": string(ipam.ReasonNamespaceNotAllowed)}.AsSelector().String()
		harness.Eventually(t, 10*time.Second, func() (bool, error) {
			evs, err := cp.Kube.CoreV1().Events("intruder").List(cp.Ctx, metav1.ListOptions{FieldSelector: sel})
			return err == nil && len(evs.Items) == 1 && evs.Items[0].Type == "Warning" && strings.Contains(evs.Items[0].Message, "shop-pool"), err
		}, "a Warning Event NamespaceNotAllowed on pod intruder/sneaky")
	})
	t.Run("listed namespace, node in reach", func(t *testing.T) {
		c, err := a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("shop", "ok", map[string]string{v1alpha1.AnnotationIPPools: "shop-pool"}), Node: nodes[0]})
		if err != nil || c.Spec.Pool != "shop-pool" || c.Status.Node != nodes[0].Name {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	t.Run("pool does not reach the node", func(t *testing.T) {
		far := memPod("shop", "far", map[string]string{v1alpha1.AnnotationIPPools: "shop-pool"})
		if err := a.Check(far, nodes[0]); err != nil {
			t.Fatalf("Check on a reached node: %v", err)
		}
		if err := a.Check(far, nodes[1]); ipam.ReasonOf(err) != ipam.ReasonNodeNotReached {
			t.Fatalf("Check: want NodeNotReached, got %v", err)
		}
		_, err := a.Allocate(cp.Ctx, ipam.Request{Pod: far, Node: nodes[1]})
		if ipam.ReasonOf(err) != ipam.ReasonNodeNotReached || !strings.Contains(err.Error(), nodes[1].Name) {
			t.Fatalf("want NodeNotReached, got %v", err)
		}
	})
	t.Run("namespace selector and namespace default pools", func(t *testing.T) {
		c, err := a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("team-ns", "p", nil), Node: nodes[1]})
		if err != nil || c.Spec.Pool != "pay-pool" {
			t.Fatalf("want an IP of pay-pool (namespace annotation), got %v, %v", c, err)
		}
		if _, err := a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("shop", "q", map[string]string{v1alpha1.AnnotationIPPools: "pay-pool"})}); ipam.ReasonOf(err) != ipam.ReasonNamespaceNotAllowed {
			t.Fatalf("shop is not selected by pay-pool: want NamespaceNotAllowed, got %v", err)
		}
	})
	t.Run("default pool, never the overlapping one", func(t *testing.T) {
		c, err := a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("intruder", "plain", nil), Node: nodes[1]})
		if err != nil || c.Spec.Pool != "default-pool" {
			t.Fatalf("want an IP of default-pool, got %v, %v", c, err)
		}
		_, err = a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("intruder", "x", map[string]string{v1alpha1.AnnotationIPPools: "overlaps-default"})})
		if ipam.ReasonOf(err) != ipam.ReasonPoolUnusable || !strings.Contains(err.Error(), "overlaps") {
			t.Fatalf("want PoolUnusable (overlapping), got %v", err)
		}
	})
	t.Run("IP held by another pod's sticky claim", func(t *testing.T) {
		// Earlier subtests drew random IPs of shop-pool: ask for one that is still free.
		held := claimsByIP(t, cp)
		static := ""
		for i := 10; i < 30 && static == ""; i++ {
			if ip := fmt.Sprintf("10.40.0.%d", i); held[ip] == nil {
				static = ip
			}
		}
		owner := memPod("shop", "static-1", map[string]string{v1alpha1.AnnotationIPAddress: static})
		c, err := a.Allocate(cp.Ctx, ipam.Request{Pod: owner, Node: nodes[0]})
		if err != nil || c.Spec.IP != static || c.Spec.Mode != v1alpha1.ModeSticky || c.Spec.Owner.Kind != "Static" {
			t.Fatalf("static IP: %v, %v", c, err)
		}
		thief := apiPod(t, cp, "shop", "static-2", map[string]string{v1alpha1.AnnotationIPAddress: static}, nil)
		harness.Eventually(t, 10*time.Second, func() (bool, error) {
			err := a.Check(thief, nodes[0])
			return ipam.ReasonOf(err) == ipam.ReasonIPHeld, err
		}, "Check to refuse the held IP")
		_, err = a.Allocate(cp.Ctx, ipam.Request{Pod: thief, Node: nodes[0]})
		if ipam.ReasonOf(err) != ipam.ReasonIPHeld || !strings.Contains(err.Error(), "shop/static-1") {
			t.Fatalf("want IPHeld naming shop/static-1, got %v", err)
		}
		// The owner asking again gets its claim back.
		if again, err := a.Allocate(cp.Ctx, ipam.Request{Pod: owner, Node: nodes[0]}); err != nil || again.Name != c.Name {
			t.Fatalf("owner again: %v, %v", again, err)
		}
	})
	claimsByIP(t, cp)
}

// TestIPAMBadInput: an unknown pool, an IP outside the pool and malformed annotations are refused
// with errors naming the annotation.
func TestIPAMBadInput(t *testing.T) {
	cp := harness.Start(t)
	a := ipamAllocator(t, cp)
	ipamNamespace(t, cp, "shop", nil, nil)
	ipamNamespace(t, cp, "badns", nil, map[string]string{v1alpha1.AnnotationIPPools: "ok,,"})
	ipamPool(t, cp, rangePool("pool-a", "10.50.0.0/24", "10.50.0.10", 10), a)
	ipamPool(t, cp, rangePool("pool-b", "10.51.0.0/24", "10.51.0.10", 10), a)
	cases := []struct {
		name       string
		ns         string
		ann        map[string]string
		reason     ipam.Reason
		mustNaming []string
	}{
		{"unknown pool", "shop", map[string]string{v1alpha1.AnnotationIPPools: "pool-a,nope"}, ipam.ReasonUnknownPool, []string{`"nope"`, v1alpha1.AnnotationIPPools}},
		{"IP in no pool", "shop", map[string]string{v1alpha1.AnnotationIPAddress: "10.50.0.200"}, ipam.ReasonIPOutsidePool, []string{"10.50.0.200", v1alpha1.AnnotationIPAddress}},
		{"IP outside the named pool", "shop", map[string]string{v1alpha1.AnnotationIPPools: "pool-a", v1alpha1.AnnotationIPAddress: "10.51.0.12"}, ipam.ReasonIPOutsidePool, []string{"pool-a", "pool-b", v1alpha1.AnnotationIPAddress}},
		{"gateway asked for", "shop", map[string]string{v1alpha1.AnnotationIPAddress: "10.50.0.1"}, ipam.ReasonIPOutsidePool, []string{v1alpha1.AnnotationIPAddress}},
		{"malformed IP", "shop", map[string]string{v1alpha1.AnnotationIPAddress: "10.50.0"}, ipam.ReasonMalformedAnnotation, []string{v1alpha1.AnnotationIPAddress}},
		{"malformed pool list", "shop", map[string]string{v1alpha1.AnnotationIPPools: "pool-a;pool-b"}, ipam.ReasonMalformedAnnotation, []string{v1alpha1.AnnotationIPPools}},
		{"malformed policy", "shop", map[string]string{v1alpha1.AnnotationIPPolicy: "sometimes"}, ipam.ReasonMalformedAnnotation, []string{v1alpha1.AnnotationIPPolicy}},
		{"malformed release", "shop", map[string]string{v1alpha1.AnnotationIPRelease: "Later"}, ipam.ReasonMalformedAnnotation, []string{v1alpha1.AnnotationIPRelease}},
		{"malformed namespace annotation", "badns", nil, ipam.ReasonMalformedAnnotation, []string{v1alpha1.AnnotationIPPools, "badns"}},
		{"no pool at all", "shop", nil, ipam.ReasonNoPool, []string{"shop"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Allocate(cp.Ctx, ipam.Request{Pod: memPod(tc.ns, "p", tc.ann)})
			if ipam.ReasonOf(err) != tc.reason {
				t.Fatalf("want %s, got %v", tc.reason, err)
			}
			for _, s := range tc.mustNaming {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not name %s", err, s)
				}
			}
		})
	}
	if n := len(claimsByIP(t, cp)); n != 0 {
		t.Fatalf("%d claims created by refused requests", n)
	}

	// IPv6: claims are named after the address with ':' written as '-'.
	ipamPool(t, cp, &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "v6"},
		Spec: v1alpha1.IPPoolSpec{CIDR: "fd00:10:52::/64", Gateway: "fd00:10:52::1"}}, a)
	c, err := a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("shop", "v6-static", map[string]string{v1alpha1.AnnotationIPAddress: "fd00:10:52::abcd"})})
	if err != nil || c.Name != "fd00-10-52--abcd" || c.Spec.Pool != "v6" {
		t.Fatalf("static IPv6: %v, %v", c, err)
	}
	c, err = a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("shop", "v6-any", map[string]string{v1alpha1.AnnotationIPPools: "v6"})})
	if err != nil || !netip.MustParsePrefix("fd00:10:52::/64").Contains(netip.MustParseAddr(c.Spec.IP)) || c.Name != v1alpha1.ClaimName(c.Spec.IP) {
		t.Fatalf("IPv6 from the pool: %v, %v", c, err)
	}
}
