package locrelay

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/locations"
	"github.com/ecloud-io/ecloud/test/benchstat"
)

// testClaimSource is a claim source whose informers are not run: the test fills their stores and
// calls the event handlers as the informers would.
func testClaimSource(t *testing.T) (*claimSource, *subscriber) {
	t.Helper()
	s := newServer(Config{})
	cs := &claimSource{s: s, now: func() time.Time { return t0 }, dirty: map[string]bool{}, sent: map[string]string{}, wake: make(chan struct{}, 1),
		claims: cache.NewSharedIndexInformer(&cache.ListWatch{}, &v1alpha1.IPClaim{}, 0, cache.Indexers{indexLocatedOn: locatedOnIndex}),
		pools:  cache.NewSharedIndexInformer(&cache.ListWatch{}, &v1alpha1.IPPool{}, 0, cache.Indexers{}),
		nodes:  cache.NewSharedIndexInformer(&cache.ListWatch{}, &corev1.Node{}, 0, cache.Indexers{}),
	}
	pool, _ := stripPool(&v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: v1alpha1.IPPoolSpec{VLAN: 7}})
	must(t, cs.pools.GetStore().Add(pool))
	for _, n := range []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{locations.TunnelIPAnnotation: "192.0.2.1"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.2"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "n3"}}, // no tunnel endpoint
	} {
		stripped, _ := stripNode(n)
		must(t, cs.nodes.GetStore().Add(stripped))
		cs.nodeChanged(stripped)
	}
	sub, _ := s.subscribe()
	return cs, sub
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func claimOf(ip, pool string, phase v1alpha1.ClaimPhase, node string) *v1alpha1.IPClaim {
	c := &v1alpha1.IPClaim{ObjectMeta: metav1.ObjectMeta{Name: ip, Annotations: map[string]string{"a": "b"}},
		Spec:   v1alpha1.IPClaimSpec{IP: ip, Pool: pool, Owner: v1alpha1.ClaimOwner{Namespace: "ns", PodName: "pod"}},
		Status: v1alpha1.IPClaimStatus{Phase: phase, Node: node, ContainerID: "c1"}}
	stripped, _ := stripClaim(c)
	return stripped.(*v1alpha1.IPClaim)
}

// put stores claim c (nil: deletes old) and calls the handler as the informer would.
func (cs *claimSource) testPut(t *testing.T, old, c *v1alpha1.IPClaim) {
	t.Helper()
	switch {
	case c == nil:
		must(t, cs.claims.GetStore().Delete(old))
		cs.claimChanged(old, nil)
	case old == nil:
		must(t, cs.claims.GetStore().Add(c))
		cs.claimChanged(nil, c)
	default:
		must(t, cs.claims.GetStore().Update(c))
		cs.claimChanged(old, c)
	}
}

func nodeFrame(node, tunnel string, ips ...string) string {
	l := make([]locations.LocatedIP, len(ips))
	for i, ip := range ips {
		l[i] = locations.LocatedIP{IP: netip.MustParseAddr(ip), VLAN: 7}
	}
	return string(locations.EncodeLocations(node, node, netip.MustParseAddr(tunnel), t0, l))
}

// drain is the frames sent to the subscriber so far, in order.
func drain(sub *subscriber) []string {
	var out []string
	for {
		select {
		case f := <-sub.frames:
			out = append(out, string(f))
		default:
			return out
		}
	}
}

func TestClaimSource(t *testing.T) {
	bound := claimOf("10.0.0.1", "p", v1alpha1.PhaseBound, "n1")
	moved := claimOf("10.0.0.1", "p", v1alpha1.PhaseBound, "n2")
	for _, tc := range []struct {
		name  string
		steps func(t *testing.T, cs *claimSource)
		// want is the frames sent by the last publish, in order.
		want []string
	}{
		{
			name:  "every node with a tunnel endpoint gets a slice, a bound claim on its node with its pool's VLAN",
			steps: func(t *testing.T, cs *claimSource) { cs.testPut(t, nil, bound) },
			want:  []string{nodeFrame("n1", "192.0.2.1", "10.0.0.1"), nodeFrame("n2", "192.0.2.2")},
		},
		{
			name: "reserved, deleting, unknown-pool claims and nodes without a tunnel endpoint are not located",
			steps: func(t *testing.T, cs *claimSource) {
				deleting := claimOf("10.0.0.3", "p", v1alpha1.PhaseBound, "n1")
				deleting.DeletionTimestamp = &metav1.Time{Time: t0}
				cs.testPut(t, nil, claimOf("10.0.0.2", "p", v1alpha1.PhaseReserved, "n1"))
				cs.testPut(t, nil, deleting)
				cs.testPut(t, nil, claimOf("10.0.0.4", "gone", v1alpha1.PhaseBound, "n2"))
				cs.testPut(t, nil, claimOf("10.0.0.5", "p", v1alpha1.PhaseBound, "n3"))
			},
			want: []string{nodeFrame("n1", "192.0.2.1"), nodeFrame("n2", "192.0.2.2")},
		},
		{
			name: "a move sends the new node's slice before the old one's",
			steps: func(t *testing.T, cs *claimSource) {
				cs.testPut(t, nil, bound)
				cs.publish()
				cs.testPut(t, bound, moved)
			},
			want: []string{nodeFrame("n2", "192.0.2.2", "10.0.0.1"), nodeFrame("n1", "192.0.2.1")},
		},
		{
			name: "an update that moves nothing sends nothing",
			steps: func(t *testing.T, cs *claimSource) {
				cs.testPut(t, nil, bound)
				cs.publish()
				again := claimOf("10.0.0.1", "p", v1alpha1.PhaseBound, "n1")
				again.ResourceVersion = "2"
				cs.testPut(t, bound, again)
				cs.nodeUpdated(cs.nodeObj(t, "n1"), cs.nodeObj(t, "n1"))
			},
		},
		{
			name: "a deleted claim leaves its node's slice",
			steps: func(t *testing.T, cs *claimSource) {
				cs.testPut(t, nil, bound)
				cs.publish()
				cs.testPut(t, bound, nil)
			},
			want: []string{nodeFrame("n1", "192.0.2.1")},
		},
		{
			name: "a deleted node's slice is deleted",
			steps: func(t *testing.T, cs *claimSource) {
				cs.testPut(t, nil, bound)
				cs.publish()
				n := cs.nodeObj(t, "n1")
				must(t, cs.nodes.GetStore().Delete(n))
				cs.nodeChanged(cache.DeletedFinalStateUnknown{Key: "n1", Obj: n})
			},
			want: []string{string(locations.EncodeDelete("n1"))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, sub := testClaimSource(t)
			tc.steps(t, cs)
			drain(sub)
			// The last step's changes only: publish what is dirty now.
			if len(cs.dirty) > 0 || tc.want == nil {
				cs.publish()
			}
			got := drain(sub)
			if len(got) != len(tc.want) {
				t.Fatalf("%d frames, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("frame %d: %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func (cs *claimSource) nodeObj(t *testing.T, name string) *corev1.Node {
	t.Helper()
	o, ok, err := cs.nodes.GetStore().GetByKey(name)
	if err != nil || !ok {
		t.Fatalf("node %s: %v %v", name, ok, err)
	}
	return o.(*corev1.Node)
}

func TestStripClaimKeepsWhatALocationNeeds(t *testing.T) {
	c := claimOf("10.0.0.9", "p", v1alpha1.PhaseBound, "n1")
	if c.Annotations != nil || c.Spec.Owner.PodName != "" || c.Status.ContainerID != "" {
		t.Errorf("stripped claim keeps more than it needs: %+v", c)
	}
	if c.Name != "10.0.0.9" || c.Spec.IP != "10.0.0.9" || c.Spec.Pool != "p" || c.LocatedOn() != "n1" {
		t.Errorf("stripped claim lost its location: %+v", c)
	}
}

// BenchmarkClaimSourceMemory measures what a relay of the claims keeps at 150k claims on 5000
// nodes (-short: 15k on 500): the heap of its stores and frames per claim, once the listed
// objects are gone, and the time to derive every node's slice.
func BenchmarkClaimSourceMemory(b *testing.B) {
	nodes, perNode := 5000, 30
	if testing.Short() {
		nodes = 500
	}
	var kept float64
	for range b.N {
		b.StopTimer()
		base := benchstat.HeapBytes()
		s := newServer(Config{})
		cs := &claimSource{s: s, now: time.Now, dirty: map[string]bool{}, sent: map[string]string{}, wake: make(chan struct{}, 1),
			claims: cache.NewSharedIndexInformer(&cache.ListWatch{}, &v1alpha1.IPClaim{}, 0, cache.Indexers{indexLocatedOn: locatedOnIndex}),
			pools:  cache.NewSharedIndexInformer(&cache.ListWatch{}, &v1alpha1.IPPool{}, 0, cache.Indexers{}),
			nodes:  cache.NewSharedIndexInformer(&cache.ListWatch{}, &corev1.Node{}, 0, cache.Indexers{}),
		}
		pool, _ := stripPool(&v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "pool-a"}, Spec: v1alpha1.IPPoolSpec{VLAN: 100}})
		_ = cs.pools.GetStore().Add(pool)
		for n := range nodes {
			name := fmt.Sprintf("dc-a-node-%d", n)
			node, _ := stripNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
				Annotations: map[string]string{locations.TunnelIPAnnotation: netip.AddrFrom4([4]byte{172, 16, byte(n >> 8), byte(n)}).String()}}})
			_ = cs.nodes.GetStore().Add(node)
			cs.nodeChanged(node)
			for i := range perNode {
				k := n*perNode + i
				ip := netip.AddrFrom4([4]byte{10, byte(64 + k>>16), byte(k >> 8), byte(k)}).String()
				// As the apiserver sends it: a full claim, stripped by the informer's transform.
				full := &v1alpha1.IPClaim{ObjectMeta: metav1.ObjectMeta{Name: ip, UID: "0b9c6a7e-6f7d-4f57-9a39-3c1c5e7c2d10", ResourceVersion: "123456",
					Labels: map[string]string{"network.ecloud.io/pool": "pool-a"}},
					Spec: v1alpha1.IPClaimSpec{IP: ip, Pool: "pool-a", Mode: v1alpha1.ModeEphemeral,
						Owner: v1alpha1.ClaimOwner{Namespace: "shop", PodName: fmt.Sprintf("web-%d", k)}},
					Status: v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseBound, Node: name, ContainerID: "3f9a0c1d2e4b5a6978b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2"}}
				c, _ := stripClaim(full)
				_ = cs.claims.GetStore().Add(c)
			}
		}
		b.StartTimer()
		cs.publish()
		b.StopTimer()
		kept = float64(benchstat.HeapBytes() - base)
		runtime.KeepAlive(cs)
		b.StartTimer()
	}
	b.ReportMetric(kept/(1<<20), "relay-MiB")
	b.ReportMetric(kept/float64(nodes*perNode), "B/claim")
}
