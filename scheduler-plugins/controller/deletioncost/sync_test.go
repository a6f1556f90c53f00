package deletioncost

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// TestRestoreDecision covers when the controller moves a pod after an outage, and which one.
func TestRestoreDecision(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := func(name string, age int, controlled bool) *v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(base.Add(-time.Duration(age) * time.Minute))}}
		if controlled {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-1", Controller: ptr.To(true)}}
		}
		return p
	}
	cases := []struct {
		name       string
		placed     map[string]string // pod name → datacenter
		bare       bool
		rollout    bool // the pods are of two revisions
		wantSpread bool // restore leaves the group alone
		wantVictim string
	}{
		{name: "1+1 is spread", placed: map[string]string{"p1": "dc-a", "p2": "dc-b"}, wantSpread: true},
		{name: "2+1 is within maxSkew", placed: map[string]string{"p1": "dc-a", "p2": "dc-a", "p3": "dc-b"}, wantSpread: true},
		{name: "2+0 after Degrade: evict the younger dc-a pod", placed: map[string]string{"p1": "dc-a", "p2": "dc-a"}, wantVictim: "p2"},
		{name: "3+1 skewed: evict from dc-a", placed: map[string]string{"p1": "dc-a", "p2": "dc-a", "p3": "dc-a", "p4": "dc-b"}, wantVictim: "p3"},
		{name: "bare pods are never evicted", placed: map[string]string{"p1": "dc-a", "p2": "dc-a"}, bare: true},
		{name: "no move during a rollout", placed: map[string]string{"p1": "dc-a", "p2": "dc-a"}, rollout: true, wantSpread: true},
	}
	c := &Controller{args: config.DualDatacenterArgs{Datacenters: []string{"dc-a", "dc-b"}, MaxSkew: 1}, rule: dcrule.Rule{MaxSkew: 1}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gs := &groupState{counts: dcrule.NewCounts()}
			for i, name := range []string{"p1", "p2", "p3", "p4"} {
				dc, ok := tc.placed[name]
				if !ok {
					continue
				}
				rev := "r"
				if tc.rollout && i%2 == 1 {
					rev = "r2"
				}
				gs.placed = append(gs.placed, dcrule.Placed{Pod: pod(name, 10-i, !tc.bare), Revision: rev, Datacenter: dc})
				gs.counts.Add(rev, dc, 1)
			}
			if move := c.needsMove(gs); move == tc.wantSpread {
				t.Fatalf("needsMove = %v, want %v", move, !tc.wantSpread)
			}
			if tc.wantSpread {
				return
			}
			v := c.victim(gs)
			switch {
			case tc.wantVictim == "" && v != nil:
				t.Errorf("victim %s, want none", v.Name)
			case tc.wantVictim != "" && (v == nil || v.Name != tc.wantVictim):
				t.Errorf("victim %v, want %s", v, tc.wantVictim)
			}
		})
	}
}
