package integration

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
	"github.com/ecloud-io/ecloud/test/harness"
)

func cordonDatacenter(t *testing.T, cp *harness.ControlPlane, dc string, cordon bool) {
	t.Helper()
	for i := 0; i < 3; i++ {
		cp.SetUnschedulable(t, dc+"-node-"+string(rune('0'+i)), cordon)
	}
}

// TestDualDCOutageHold: with every dc-b node cordoned and outagePolicy Hold, the second pod of a
// Deployment stays Pending with a message naming the datacenters and the deployment; uncordoning
// dc-b lets it schedule there at once (node queueing hint).
func TestDualDCOutageHold(t *testing.T) {
	cp := startDualDC(t, config.OutageHold)
	cordonDatacenter(t, cp, "dc-b", true)
	createDeployment(t, cp, webDeployment(2))
	const want = "node(s) in dc-a would leave deployment shop/web with 0 pods in dc-b"
	var msg string
	harness.Eventually(t, dualDCTimeout, func() (bool, error) {
		pods := listPods(t, cp, "app=web")
		s := spreadOf(pods)
		for _, p := range pods {
			for _, c := range p.Status.Conditions {
				if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse {
					msg = c.Message
				}
			}
		}
		return s.ready["dc-a"] == 1 && s.pending == 1 && strings.Contains(msg, want), fmt.Errorf("%s, message %q", s, msg)
	}, "one pod in dc-a and one Pending with %q", want)
	t.Logf("pending message: %s", msg)
	if !strings.Contains(msg, "outagePolicy Hold") {
		t.Errorf("message %q does not say the datacenter is out under Hold", msg)
	}
	cordonDatacenter(t, cp, "dc-b", false)
	s := waitSpread(t, cp, "app=web", "1+1 after uncordon", func(s spread) bool { return s.settled(2) })
	if s.ready["dc-a"] != 1 || s.ready["dc-b"] != 1 {
		t.Fatalf("after uncordon: %s, want 1+1", s)
	}
}

// TestDualDCOutageDegrade: with every dc-b node cordoned and outagePolicy Degrade, both pods go to
// dc-a and the second gets a Warning Event; after uncordoning, the deletion-cost controller evicts
// a surplus pod and the scheduler puts its replacement in dc-b: 1+1.
func TestDualDCOutageDegrade(t *testing.T) {
	cp := startDualDC(t, config.OutageDegrade)
	cordonDatacenter(t, cp, "dc-b", true)
	createDeployment(t, cp, webDeployment(2))
	s := waitSpread(t, cp, "app=web", "2 ready pods in dc-a", func(s spread) bool { return s.settled(2) })
	if s.ready["dc-a"] != 2 {
		t.Fatalf("degraded: %s, want 2 in dc-a", s)
	}
	var note string
	harness.Eventually(t, dualDCTimeout, func() (bool, error) {
		events, err := cp.Kube.EventsV1().Events(dualDCNamespace).List(cp.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Reason == dualdatacenter.ReasonDegraded && e.Type == v1.EventTypeWarning && e.Regarding.Kind == "Pod" {
				note = e.Note
				return true, nil
			}
		}
		return false, nil
	}, "a %s Warning Event on a pod", dualdatacenter.ReasonDegraded)
	t.Logf("warning event: %s", note)
	if !strings.Contains(note, "deployment shop/web") || !strings.Contains(note, "dc-b") {
		t.Errorf("event note %q does not name the deployment and the missing datacenter", note)
	}
	cordonDatacenter(t, cp, "dc-b", false)
	s = waitSpread(t, cp, "app=web", "1+1 restored by the controller", func(s spread) bool {
		return s.settled(2) && s.ready["dc-a"] == 1 && s.ready["dc-b"] == 1
	})
	t.Logf("restored: %s", s)
}
