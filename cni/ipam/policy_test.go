package ipam

import (
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestDecide(t *testing.T) {
	now := time.Unix(10_000, 0)
	long := metav1.NewTime(now.Add(-time.Hour))
	fresh := metav1.NewTime(now.Add(-time.Second))
	claim := func(mode v1alpha1.ClaimMode, policy v1alpha1.ReleasePolicy, phase v1alpha1.ClaimPhase, reservedAt metav1.Time, ordinal *int32) *v1alpha1.IPClaim {
		return &v1alpha1.IPClaim{
			Spec: v1alpha1.IPClaimSpec{Mode: mode, ReleasePolicy: policy,
				Owner: v1alpha1.ClaimOwner{Namespace: "ns", PodName: "db-1", Kind: "StatefulSet", Name: "db", Ordinal: ordinal}},
			Status: v1alpha1.IPClaimStatus{Phase: phase, PodUID: "uid-1", ReservedAt: &reservedAt},
		}
	}
	pod := func(uid types.UID, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: corev1.PodStatus{Phase: phase}}
	}
	set := func(replicas int32) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: &replicas}}
	}
	eph := func(phase v1alpha1.ClaimPhase, at metav1.Time) *v1alpha1.IPClaim {
		return claim(v1alpha1.ModeEphemeral, v1alpha1.ReleaseOnDelete, phase, at, nil)
	}
	sticky := func(policy v1alpha1.ReleasePolicy) *v1alpha1.IPClaim {
		return claim(v1alpha1.ModeSticky, policy, v1alpha1.PhaseBound, long, ptr.To[int32](1))
	}
	named := func(name string, c *v1alpha1.IPClaim) *v1alpha1.IPClaim { c.Name = name; return c }
	withUID := func(c *v1alpha1.IPClaim, uid types.UID) *v1alpha1.IPClaim { c.Status.PodUID = uid; return c }
	cases := []struct {
		name    string
		claim   *v1alpha1.IPClaim
		obs     Observation
		release bool
	}{
		{"ephemeral, pod live", eph(v1alpha1.PhaseBound, long), Observation{Pod: pod("uid-1", corev1.PodRunning)}, false},
		{"ephemeral, pod gone", eph(v1alpha1.PhaseBound, long), Observation{}, true},
		{"ephemeral, pod replaced by another instance", eph(v1alpha1.PhaseBound, long), Observation{Pod: pod("uid-2", corev1.PodRunning)}, true},
		{"ephemeral, pod finished", eph(v1alpha1.PhaseBound, long), Observation{Pod: pod("uid-1", corev1.PodSucceeded)}, true},
		{"ephemeral, node deleted", eph(v1alpha1.PhaseBound, long), Observation{Pod: pod("uid-1", corev1.PodRunning), PodNodeGone: true}, true},
		{"ephemeral Reserved inside window, pod gone", eph(v1alpha1.PhaseReserved, fresh), Observation{}, false},
		{"ephemeral Reserved after window, pod gone", eph(v1alpha1.PhaseReserved, long), Observation{}, true},
		{"sticky OnScaleDown, pod live", sticky(v1alpha1.ReleaseOnScaleDown), Observation{Pod: pod("uid-1", corev1.PodRunning), StatefulSet: set(1)}, false},
		{"sticky OnScaleDown, pod gone, ordinal in set", sticky(v1alpha1.ReleaseOnScaleDown), Observation{StatefulSet: set(3)}, false},
		{"sticky OnScaleDown, pod gone, scaled below", sticky(v1alpha1.ReleaseOnScaleDown), Observation{StatefulSet: set(1)}, true},
		{"sticky OnScaleDown, set deleted", sticky(v1alpha1.ReleaseOnScaleDown), Observation{}, true},
		{"sticky OnScaleDown, scaled below but pod still terminating", sticky(v1alpha1.ReleaseOnScaleDown), Observation{Pod: pod("uid-1", corev1.PodRunning), StatefulSet: set(1)}, false},
		{"sticky OnScaleDown, new instance of the pod", sticky(v1alpha1.ReleaseOnScaleDown), Observation{Pod: pod("uid-2", corev1.PodPending), StatefulSet: set(3)}, false},
		{"sticky Never, everything gone", sticky(v1alpha1.ReleaseNever), Observation{}, false},
		{"sticky OnDelete, pod gone", sticky(v1alpha1.ReleaseOnDelete), Observation{}, true},
		{"sticky OnDelete, pod finished is kept", sticky(v1alpha1.ReleaseOnDelete), Observation{Pod: pod("uid-1", corev1.PodFailed)}, false},
		{"ephemeral duplicate of a Bound claim", named("b", eph(v1alpha1.PhaseReserved, long)), Observation{Pod: pod("uid-1", corev1.PodRunning),
			Siblings: []*v1alpha1.IPClaim{named("a", eph(v1alpha1.PhaseBound, long))}}, true},
		{"Bound claim with a Reserved duplicate is kept", named("a", eph(v1alpha1.PhaseBound, long)), Observation{Pod: pod("uid-1", corev1.PodRunning),
			Siblings: []*v1alpha1.IPClaim{named("b", eph(v1alpha1.PhaseReserved, long))}}, false},
		{"older of two Reserved duplicates is kept", named("a", eph(v1alpha1.PhaseReserved, long)), Observation{Pod: pod("uid-1", corev1.PodRunning),
			Siblings: []*v1alpha1.IPClaim{named("b", eph(v1alpha1.PhaseReserved, long))}}, false},
		{"younger duplicate inside its window is kept", named("b", eph(v1alpha1.PhaseReserved, fresh)), Observation{Pod: pod("uid-1", corev1.PodRunning),
			Siblings: []*v1alpha1.IPClaim{named("a", eph(v1alpha1.PhaseBound, long))}}, false},
		{"claim of another instance is no duplicate", named("b", eph(v1alpha1.PhaseReserved, long)), Observation{Pod: pod("uid-1", corev1.PodRunning),
			Siblings: []*v1alpha1.IPClaim{withUID(named("a", eph(v1alpha1.PhaseBound, long)), "uid-0")}}, false},
		{"sticky duplicate", named("b", claim(v1alpha1.ModeSticky, v1alpha1.ReleaseNever, v1alpha1.PhaseReserved, long, nil)),
			Observation{Siblings: []*v1alpha1.IPClaim{named("a", sticky(v1alpha1.ReleaseNever))}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.obs.Now, tc.obs.ReservationWindow = now, time.Minute
			v := Decide(tc.claim, tc.obs)
			if v.Release != tc.release {
				t.Fatalf("Decide = %+v, want release=%v", v, tc.release)
			}
		})
	}
}
