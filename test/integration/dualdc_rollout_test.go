package integration

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestDualDCRollingUpdate rolls a 4-replica Deployment (maxSurge 1, maxUnavailable 0) to a new
// template while watching every pod event: Ready pods are never in one datacenter only, and the
// finished revision is spread 2+2.
func TestDualDCRollingUpdate(t *testing.T) {
	cp := startDualDC(t, config.OutageHold)
	mon := createSettled(t, cp, 4, 2)
	for round := 2; round <= 3; round++ {
		image := "ecloud.test/web:" + string(rune('0'+round))
		updateDeployment(t, cp, "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
		harness.Eventually(t, dualDCTimeout, func() (bool, error) {
			d, err := cp.Kube.AppsV1().Deployments(dualDCNamespace).Get(cp.Ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			st := d.Status
			return st.ObservedGeneration == d.Generation && st.UpdatedReplicas == 4 && st.Replicas == 4 && st.AvailableReplicas == 4, nil
		}, "rollout to %s", image)
		s := waitSpread(t, cp, "app=web", "4 ready pods of the new revision", func(s spread) bool { return s.settled(4) })
		for _, p := range listPods(t, cp, "app=web") {
			if p.Spec.Containers[0].Image != image {
				t.Fatalf("pod %s still runs %s after the rollout", p.Name, p.Spec.Containers[0].Image)
			}
		}
		if s.ready["dc-a"] != 2 || s.ready["dc-b"] != 2 {
			t.Fatalf("after rollout to %s: %s, want 2+2", image, s)
		}
	}
	mon.assertNoViolation(t)
}
