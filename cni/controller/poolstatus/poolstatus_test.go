package poolstatus

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func TestCompute(t *testing.T) {
	pool := func(name, cidr string, created int64, gateway string) *v1alpha1.IPPool {
		return &v1alpha1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(created, 0)), Generation: 3},
			Spec:       v1alpha1.IPPoolSpec{CIDR: cidr, Gateway: gateway},
		}
	}
	claims := func(phases ...v1alpha1.ClaimPhase) []*v1alpha1.IPClaim {
		var out []*v1alpha1.IPClaim
		for _, p := range phases {
			out = append(out, &v1alpha1.IPClaim{Status: v1alpha1.IPClaimStatus{Phase: p}})
		}
		return out
	}
	small := pool("small", "10.0.0.0/29", 1, "10.0.0.1") // 8 - network - broadcast - gateway = 5
	older := pool("older", "10.0.0.0/24", 0, "10.0.0.1")
	bad := pool("bad", "10.9.0.0/24", 2, "nope")
	r, b, rel := v1alpha1.PhaseReserved, v1alpha1.PhaseBound, v1alpha1.PhaseReleased
	cases := []struct {
		name                         string
		pool                         *v1alpha1.IPPool
		claims                       []*v1alpha1.IPClaim
		all                          []*v1alpha1.IPPool
		total, allocated, reserved   int64
		ready, overlapping, lowOnIPs bool
	}{
		{"empty", small, nil, []*v1alpha1.IPPool{small}, 5, 0, 0, true, false, false},
		{"counts, released not counted", small, claims(r, b, b, rel), []*v1alpha1.IPPool{small}, 5, 3, 1, true, false, false},
		{"full is low on IPs", small, claims(b, b, b, b, b), []*v1alpha1.IPPool{small}, 5, 5, 0, true, false, true},
		{"younger overlapping pool", small, nil, []*v1alpha1.IPPool{small, older}, 5, 0, 0, false, true, false},
		{"older pool stays ready", older, nil, []*v1alpha1.IPPool{small, older}, 253, 0, 0, true, false, false},
		{"unparsable spec", bad, nil, []*v1alpha1.IPPool{bad}, 0, 0, 0, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := Compute(tc.pool, tc.claims, tc.all)
			if st.Total != tc.total || st.Allocated != tc.allocated || st.Reserved != tc.reserved || st.Free != max(0, tc.total-tc.allocated) {
				t.Fatalf("status %+v", st)
			}
			for typ, want := range map[string]bool{v1alpha1.PoolReady: tc.ready, v1alpha1.PoolOverlapping: tc.overlapping, v1alpha1.PoolLowOnIPs: tc.lowOnIPs} {
				if got := meta.IsStatusConditionTrue(st.Conditions, typ); got != want {
					t.Errorf("%s = %v, want %v (%+v)", typ, got, want, st.Conditions)
				}
			}
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d", st.ObservedGeneration)
			}
		})
	}
}
