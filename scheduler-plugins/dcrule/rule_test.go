package dcrule

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var dcs = []string{"dc-a", "dc-b"}

func counts(total map[string]map[string]int) *Counts {
	c := NewCounts()
	for rev, byDC := range total {
		for dc, n := range byDC {
			c.Add(rev, dc, n)
		}
	}
	return c
}

func TestEvaluate(t *testing.T) {
	web := &Group{Kind: KindDeployment, Namespace: "shop", Name: "web"}
	cases := []struct {
		name    string
		maxSkew int32
		rev     string
		counts  map[string]map[string]int
		allowed []string
		reasons map[string]string // dc → substring of its reason
	}{
		{name: "first pod goes anywhere", maxSkew: 1, rev: "r1", allowed: []string{"dc-a", "dc-b"}},
		{name: "empty datacenter gets the next pod", maxSkew: 1, rev: "r1", counts: map[string]map[string]int{"r1": {"dc-a": 1}},
			allowed: []string{"dc-b"}, reasons: map[string]string{"dc-a": "node(s) in dc-a would leave deployment shop/web with 0 pods in dc-b"}},
		{name: "empty datacenter wins even with maxSkew 3", maxSkew: 3, rev: "r1", counts: map[string]map[string]int{"r1": {"dc-a": 2}},
			allowed: []string{"dc-b"}, reasons: map[string]string{"dc-a": "0 pods in dc-b"}},
		{name: "balanced: both", maxSkew: 1, rev: "r1", counts: map[string]map[string]int{"r1": {"dc-a": 2, "dc-b": 2}}, allowed: []string{"dc-a", "dc-b"}},
		{name: "skew", maxSkew: 1, rev: "r1", counts: map[string]map[string]int{"r1": {"dc-a": 3, "dc-b": 2}},
			allowed: []string{"dc-b"}, reasons: map[string]string{"dc-a": "beyond maxSkew 1 (dc-a=3, dc-b=2)"}},
		{name: "maxSkew 2 allows one more", maxSkew: 2, rev: "r1", counts: map[string]map[string]int{"r1": {"dc-a": 2, "dc-b": 1}}, allowed: []string{"dc-a", "dc-b"}},
		{name: "new revision's second pod goes to the other datacenter", maxSkew: 1, rev: "r2",
			counts:  map[string]map[string]int{"r1": {"dc-b": 1}, "r2": {"dc-a": 1}},
			allowed: []string{"dc-b"}, reasons: map[string]string{"dc-a": "revision r2 of deployment shop/web with 0 pods in dc-b"}},
		{name: "a tie for the group goes where the revision has fewer pods", maxSkew: 1, rev: "r2",
			counts:  map[string]map[string]int{"r1": {"dc-b": 1}, "r2": {"dc-a": 2, "dc-b": 1}},
			allowed: []string{"dc-b"}, reasons: map[string]string{"dc-a": "would skew revision r2 of deployment shop/web beyond maxSkew 1 (dc-a=2, dc-b=1)"}},
		{name: "revision rule yields when the group rule leaves no other datacenter", maxSkew: 1, rev: "r2",
			counts:  map[string]map[string]int{"r1": {"dc-b": 2}, "r2": {"dc-a": 1}},
			allowed: []string{"dc-a"}, reasons: map[string]string{"dc-b": "beyond maxSkew"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Rule{MaxSkew: tc.maxSkew}.Evaluate(web, tc.rev, counts(tc.counts), dcs)
			for _, dc := range dcs {
				want := false
				for _, a := range tc.allowed {
					want = want || a == dc
				}
				if v.Allowed(dc) != want {
					t.Errorf("%s allowed=%v, want %v (reason %q)", dc, v.Allowed(dc), want, v[dc])
				}
				if sub := tc.reasons[dc]; sub != "" && !strings.Contains(v[dc], sub) {
					t.Errorf("%s reason %q does not contain %q", dc, v[dc], sub)
				}
			}
		})
	}
}

func TestDeletionCosts(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := func(name string, age int) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(base.Add(-time.Duration(age) * time.Minute))}}
	}
	a1, a2, a3, b1 := pod("a1", 3), pod("a2", 2), pod("a3", 1), pod("b1", 5)
	oldA, oldB, newA := pod("old-a", 9), pod("old-b", 9), pod("new-a", 1)
	cases := []struct {
		name string
		pods []Placed
		want map[*v1.Pod]int32
	}{
		{"fuller datacenter first, oldest kept longest",
			[]Placed{{a1, "r", "dc-a"}, {a2, "r", "dc-a"}, {a3, "r", "dc-a"}, {b1, "r", "dc-b"}},
			map[*v1.Pod]int32{a1: -1, a2: -2, a3: -3, b1: -1}},
		{"rolling update: the old pod where the new revision already is goes first",
			[]Placed{{oldA, "old", "dc-a"}, {oldB, "old", "dc-b"}, {newA, "new", "dc-a"}},
			map[*v1.Pod]int32{oldA: -2, oldB: -1, newA: -2}},
	}
	for _, tc := range cases {
		costs := DeletionCosts(tc.pods)
		for p, want := range tc.want {
			if costs[p] != want {
				t.Errorf("%s: %s cost %d, want %d", tc.name, p.Name, costs[p], want)
			}
		}
	}
}

func TestNodeUsable(t *testing.T) {
	ready := v1.NodeStatus{Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}}
	cases := []struct {
		name string
		node *v1.Node
		want bool
	}{
		{"ready", &v1.Node{Status: ready}, true},
		{"absent", nil, false},
		{"cordoned", &v1.Node{Spec: v1.NodeSpec{Unschedulable: true}, Status: ready}, false},
		{"not ready", &v1.Node{Status: v1.NodeStatus{Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionFalse}}}}, false},
		{"no condition", &v1.Node{}, false},
		{"unreachable taint", &v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoExecute}}}, Status: ready}, false},
		{"unrelated taint", &v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "gpu", Effect: v1.TaintEffectNoSchedule}}}, Status: ready}, true},
	}
	for _, tc := range cases {
		if got := NodeUsable(tc.node); got != tc.want {
			t.Errorf("%s: usable=%v, want %v", tc.name, got, tc.want)
		}
	}
}
