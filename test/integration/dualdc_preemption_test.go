package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestDualDCPreemption fills a two-datacenter cluster (3 nodes of 4 CPUs per datacenter) and
// then asks for a whole node for a high-priority pod on ecloud-scheduler, whose profile preempts
// with DualDatacenter's PostFilter instead of DefaultPreemption. Node 0 of each datacenter holds
// the cheapest victims (priority low): a pod of "thin" (2 replicas, one per datacenter) and one of
// "filler"; nodes 1 and 2 hold "medium" (8 replicas, priority medium). DefaultPreemption would
// take node 0 of a datacenter (lowest-priority victims) and so thin's only pod there; here thin's
// pods are not victims, the pod preempts two medium pods on node 1 or 2 instead, and no group
// ever has Ready pods in a single datacenter.
func TestDualDCPreemption(t *testing.T) {
	cp := harness.Start(t)
	ctx := cp.Ctx
	cp.CreateNodes(t, harness.TwoDatacenters(3))
	if _, err := cp.Kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dualDCNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]int32{"low": 0, "medium": 100, "high": 1000} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
		if _, err := cp.Kube.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cp.StartControllers(t, harness.ReplicaSetController, harness.DeploymentController)
	cp.SimulateKubelets(t, nil)
	plugins := fmt.Sprintf(`plugins:
  multiPoint:
    enabled:
    - name: %s
  postFilter:
    disabled:
    - name: DefaultPreemption
pluginConfig:
- name: %s
  args:
    datacenters: [%s]
`, dualdatacenter.Name, dualdatacenter.Name, strings.Join(dualDCs, ", "))
	cp.StartScheduler(t, harness.SchedulerConfig(dualDCScheduler, plugins), app.WithPlugin(dualdatacenter.Name, dualdatacenter.New))

	node0 := []string{"dc-a-node-0", "dc-b-node-0"}
	others := []string{"dc-a-node-1", "dc-a-node-2", "dc-b-node-1", "dc-b-node-2"}
	groups := map[string]int32{"thin": 2, "filler": 2, "medium": 8}
	createDeployment(t, cp, preemptionDeployment("thin", 2, "low", node0))
	createDeployment(t, cp, preemptionDeployment("filler", 2, "low", node0))
	createDeployment(t, cp, preemptionDeployment("medium", 8, "medium", others))
	monitors := map[string]*spreadMonitor{}
	for name, replicas := range groups {
		waitSpread(t, cp, "app="+name, fmt.Sprintf("deployment %s to run %d pods", name, replicas), func(s spread) bool { return s.settled(int(replicas)) })
		monitors[name] = watchSpread(t, cp, "app="+name)
		monitors[name].arm(true)
	}
	thinBefore := map[types.UID]string{}
	for _, p := range listPods(t, cp, "app=thin") {
		thinBefore[p.UID] = p.Spec.NodeName
	}

	high := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: dualDCNamespace, Name: "urgent"},
		Spec: v1.PodSpec{SchedulerName: dualDCScheduler, PriorityClassName: "high", TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []v1.Container{{Name: "urgent", Image: "ecloud.test/urgent:1", Resources: cpuRequest("4")}}},
	}
	if _, err := cp.Kube.CoreV1().Pods(dualDCNamespace).Create(ctx, high, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var placed *v1.Pod
	harness.Eventually(t, dualDCTimeout, func() (bool, error) {
		var err error
		placed, err = cp.Kube.CoreV1().Pods(dualDCNamespace).Get(ctx, "urgent", metav1.GetOptions{})
		return err == nil && placed.Spec.NodeName != "", err
	}, "the high-priority pod to preempt and be scheduled")
	if !slices.Contains(others, placed.Spec.NodeName) {
		t.Errorf("high-priority pod placed on %s, want one of %v (the medium pods' nodes)", placed.Spec.NodeName, others)
	}
	for _, p := range listPods(t, cp, "app=thin") {
		if _, kept := thinBefore[p.UID]; !kept || p.DeletionTimestamp != nil {
			t.Errorf("thin pod %s on %s was preempted or replaced; thin had %v", p.Name, p.Spec.NodeName, thinBefore)
		}
	}
	medium := spreadOf(listPods(t, cp, "app=medium"))
	if medium.ready["dc-a"]+medium.ready["dc-b"] != 6 {
		t.Errorf("medium after preemption: %s, want 6 Ready (two preempted)", medium)
	}
	for name, m := range monitors {
		t.Run("spread of "+name, m.assertNoViolation)
	}
	t.Logf("urgent on %s; medium %s", placed.Spec.NodeName, medium)
}

// preemptionDeployment is a Deployment of 2-CPU pods of a priority class, kept to the given nodes.
func preemptionDeployment(name string, replicas int32, priorityClass string, nodes []string) *appsv1.Deployment {
	d := webDeployment(replicas)
	d.Name = name
	labels := map[string]string{"app": name}
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
	d.Spec.Template = dualDCPodTemplate(labels, name)
	spec := &d.Spec.Template.Spec
	spec.PriorityClassName = priorityClass
	spec.Containers[0].Resources = cpuRequest("2")
	spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
		NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{
			{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: nodes},
		}}},
	}}}
	return d
}

func cpuRequest(cpu string) v1.ResourceRequirements {
	return v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}
}
