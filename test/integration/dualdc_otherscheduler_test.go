package integration

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
)

// TestDualDCOtherSchedulerLeftAlone: a Deployment of another scheduler (its pods bound straight
// to a dc-a node) with all three pods in dc-a is not the controller's to spread: that scheduler
// would put an evicted pod back, and the controller would evict again, without end. It gets no
// deletion cost and no eviction, while an ecloud-scheduler Deployment in the same namespace gets
// its costs in the same syncs.
func TestDualDCOtherSchedulerLeftAlone(t *testing.T) {
	cp := startDualDC(t, config.OutageHold)
	labels := map[string]string{"app": "other"}
	tmpl := dualDCPodTemplate(labels, "other")
	tmpl.Spec.SchedulerName = v1.DefaultSchedulerName
	tmpl.Spec.NodeName = "dc-a-node-0"
	createDeployment(t, cp, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: dualDCNamespace, Name: "other"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	})
	waitSpread(t, cp, "app=other", "3 ready pods in dc-a", func(s spread) bool { return s.settled(3) && s.ready["dc-a"] == 3 })
	before := map[types.UID]bool{}
	for _, p := range listPods(t, cp, "app=other") {
		before[p.UID] = true
	}
	// The syncs that set web's costs look at the other Deployment's pods too.
	createDeployment(t, cp, webDeployment(2))
	waitCostsOn(t, cp, "app=web", 2)
	time.Sleep(3 * time.Second) // an eviction decided in those syncs has landed by now
	for _, p := range listPods(t, cp, "app=other") {
		if !before[p.UID] || p.DeletionTimestamp != nil {
			t.Errorf("pod %s of the other scheduler's Deployment was evicted or replaced", p.Name)
		}
		if c, ok := p.Annotations[v1.PodDeletionCost]; ok {
			t.Errorf("pod %s of the other scheduler's Deployment got deletion cost %s", p.Name, c)
		}
	}
}
