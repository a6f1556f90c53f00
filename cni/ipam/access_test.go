package ipam

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func TestNamespaceAllowed(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "shop"}}
	cases := []struct {
		name     string
		spec     v1alpha1.IPPoolSpec
		ns       string
		nsLabels map[string]string
		want     bool
	}{
		{"open pool", v1alpha1.IPPoolSpec{}, "any", nil, true},
		{"listed", v1alpha1.IPPoolSpec{Namespaces: []string{"a", "shop"}}, "shop", nil, true},
		{"not listed", v1alpha1.IPPoolSpec{Namespaces: []string{"a"}}, "shop", map[string]string{"team": "shop"}, false},
		{"selector matches", v1alpha1.IPPoolSpec{NamespaceSelector: sel}, "x", map[string]string{"team": "shop"}, true},
		{"selector misses", v1alpha1.IPPoolSpec{NamespaceSelector: sel}, "x", map[string]string{"team": "web"}, false},
		{"selector, namespace unknown", v1alpha1.IPPoolSpec{NamespaceSelector: sel}, "x", nil, false},
		{"listed or selected", v1alpha1.IPPoolSpec{Namespaces: []string{"a"}, NamespaceSelector: sel}, "a", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NamespaceAllowed(&v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: tc.spec}, tc.ns, tc.nsLabels)
			if err != nil || got != tc.want {
				t.Fatalf("NamespaceAllowed = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestPoolReachesNode(t *testing.T) {
	dcA := &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.DefaultDatacenterLabel: "dc-a"}}
	node := func(dc string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{v1alpha1.DefaultDatacenterLabel: dc}}}
	}
	cases := []struct {
		name string
		sel  *metav1.LabelSelector
		node *corev1.Node
		want bool
	}{
		{"no selector", nil, node("dc-b"), true},
		{"matching datacenter", dcA, node("dc-a"), true},
		{"other datacenter", dcA, node("dc-b"), false},
		{"no node yet", dcA, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: v1alpha1.IPPoolSpec{NodeSelector: tc.sel}}
			got, err := PoolReachesNode(p, tc.node)
			if err != nil || got != tc.want {
				t.Fatalf("PoolReachesNode = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p-a"}, Spec: v1alpha1.IPPoolSpec{NodeSelector: dcA}}
	if _, err := PoolsForNode([]*v1alpha1.IPPool{p}, node("dc-b")); ReasonOf(err) != ReasonNodeNotReached {
		t.Fatalf("PoolsForNode to another datacenter: want NodeNotReached, got %v", err)
	}
}

func TestOverlapping(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	pool := func(name, cidr string, created metav1.Time) *v1alpha1.IPPool {
		return &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: created}, Spec: v1alpha1.IPPoolSpec{CIDR: cidr}}
	}
	got := Overlapping([]*v1alpha1.IPPool{
		pool("new", "10.0.0.0/25", t1),
		pool("old", "10.0.0.0/24", t0),
		pool("apart", "10.1.0.0/24", t0),
		pool("same-time-b", "10.2.0.0/24", t0),
		pool("same-time-a", "10.2.0.128/25", t0),
	})
	want := map[string]string{"new": "old", "same-time-b": "same-time-a"}
	if len(got) != len(want) {
		t.Fatalf("Overlapping = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("Overlapping = %v, want %v", got, want)
		}
	}
}
