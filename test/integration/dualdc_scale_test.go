package integration

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestDualDCScale scales a Deployment 1→2→5→2: at every step there are Ready pods in both
// datacenters (watched continuously once there are two replicas) and the skew is at most 1.
func TestDualDCScale(t *testing.T) {
	cp := startDualDC(t, config.OutageHold)
	mon := watchSpread(t, cp, "app=web")
	createDeployment(t, cp, webDeployment(1))
	waitSpread(t, cp, "app=web", "1 ready pod", func(s spread) bool { return s.settled(1) })

	for _, step := range []int32{2, 5, 2} {
		scaleDeployment(t, cp, "web", step)
		s := waitSpread(t, cp, "app=web", fmt.Sprintf("scale to %d", step), func(s spread) bool { return s.settled(int(step)) })
		if s.ready["dc-a"] < 1 || s.ready["dc-b"] < 1 || !skewOK(s) {
			t.Fatalf("after scaling to %d: %s, want ≥1 per datacenter and skew ≤ 1", step, s)
		}
		t.Logf("scaled to %d: %s", step, s)
		waitCostsOn(t, cp, "app=web", int(step))
		mon.arm(true)
	}
	mon.assertNoViolation(t)
}

// TestDualDCScaleDown scales a Deployment 6→2: the deletion-cost controller makes the ReplicaSet
// remove pods from both datacenters alike, leaving 1+1.
func TestDualDCScaleDown(t *testing.T) {
	cp := startDualDC(t, config.OutageHold)
	mon := createSettled(t, cp, 6, 3)
	scaleDeployment(t, cp, "web", 2)
	s := waitSpread(t, cp, "app=web", "2 ready pods", func(s spread) bool { return s.settled(2) })
	if s.ready["dc-a"] != 1 || s.ready["dc-b"] != 1 {
		t.Fatalf("after 6→2: %s, want 1+1", s)
	}
	mon.assertNoViolation(t)
}

// waitCostsOn waits until n pods carry a pod-deletion-cost annotation.
func waitCostsOn(t *testing.T, cp *harness.ControlPlane, selector string, n int) {
	t.Helper()
	harness.Eventually(t, dualDCTimeout, func() (bool, error) {
		got := 0
		for _, p := range listPods(t, cp, selector) {
			if p.Annotations[v1.PodDeletionCost] != "" {
				got++
			}
		}
		return got == n, nil
	}, "deletion costs on %d pods", n)
}
