package integration

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/utils/ptr"

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
// a surplus pod (once a PodDisruptionBudget that forbids it is gone) and the scheduler puts its
// replacement in dc-b: 1+1.
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
	// A PodDisruptionBudget allowing no disruption holds the move back: the controller evicts
	// through the Eviction API, gets refused, and retries.
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: dualDCNamespace, Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(2)),
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}
	created, err := cp.Kube.PolicyV1().PodDisruptionBudgets(dualDCNamespace).Create(cp.Ctx, pdb, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create PDB: %v", err)
	}
	// No disruption controller runs here: write the status it would compute for 2 healthy pods.
	created.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: created.Generation,
		CurrentHealthy: 2, DesiredHealthy: 2, ExpectedPods: 2, DisruptionsAllowed: 0}
	if _, err := cp.Kube.PolicyV1().PodDisruptionBudgets(dualDCNamespace).UpdateStatus(cp.Ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("PDB status: %v", err)
	}
	blockedBefore := blockedEvictions(t)
	cordonDatacenter(t, cp, "dc-b", false)
	harness.Eventually(t, dualDCTimeout, func() (bool, error) {
		return blockedEvictions(t) > blockedBefore, nil
	}, "an eviction refused because of the PodDisruptionBudget")
	if s = spreadOf(listPods(t, cp, "app=web")); !s.settled(2) || s.ready["dc-a"] != 2 {
		t.Fatalf("while the PDB allows no disruption: %s, want both pods untouched in dc-a", s)
	}
	if err := cp.Kube.PolicyV1().PodDisruptionBudgets(dualDCNamespace).Delete(cp.Ctx, pdb.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete PDB: %v", err)
	}
	s = waitSpread(t, cp, "app=web", "1+1 restored by the controller", func(s spread) bool {
		return s.settled(2) && s.ready["dc-a"] == 1 && s.ready["dc-b"] == 1
	})
	t.Logf("restored: %s", s)
}

// blockedEvictions reads the deletion-cost controller's evictions_total{result="blocked"} from
// the process' component-base registry (what its /metrics serves).
func blockedEvictions(t *testing.T) float64 {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "ecloud_deletion_cost_evictions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "blocked" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
