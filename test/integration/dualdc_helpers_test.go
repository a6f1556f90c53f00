package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/scheduler-plugins/controller/deletioncost"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
	"github.com/ecloud-io/ecloud/test/harness"
)

const (
	dualDCNamespace = "shop"
	dualDCScheduler = "ecloud-scheduler"
	dualDCTimeout   = 60 * time.Second
)

var dualDCs = []string{"dc-a", "dc-b"}

// startDualDC brings up a control plane with 2 datacenters × 3 nodes, the in-tree ReplicaSet,
// Deployment and StatefulSet controllers, simulated kubelets, the real kube-scheduler with
// DualDatacenter (profile ecloud-scheduler, the given outage policy) and the deletion-cost
// controller, all in this process.
func startDualDC(t *testing.T, policy config.OutagePolicy) *harness.ControlPlane {
	t.Helper()
	cp := harness.Start(t)
	cp.CreateNodes(t, harness.TwoDatacenters(3))
	if _, err := cp.Kube.CoreV1().Namespaces().Create(cp.Ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dualDCNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	cp.StartControllers(t, harness.ReplicaSetController, harness.DeploymentController, harness.StatefulSetController)
	cp.SimulateKubelets(t, nil)
	plugins := fmt.Sprintf(`plugins:
  multiPoint:
    enabled:
    - name: %s
pluginConfig:
- name: %s
  args:
    datacenters: [%s]
    outagePolicy: %s
`, dualdatacenter.Name, dualdatacenter.Name, strings.Join(dualDCs, ", "), policy)
	cp.StartScheduler(t, harness.SchedulerConfig(dualDCScheduler, plugins), app.WithPlugin(dualdatacenter.Name, dualdatacenter.New))
	startDeletionCostController(t, cp, policy)
	return cp
}

func startDeletionCostController(t *testing.T, cp *harness.ControlPlane, policy config.OutagePolicy) {
	t.Helper()
	ctx, cancel := context.WithCancel(cp.Ctx)
	factory := informers.NewSharedInformerFactory(cp.Kube, 0)
	ctrl, err := deletioncost.New(cp.Kube, factory, config.DualDatacenterArgs{
		TopologyKey: "topology.kubernetes.io/zone", Datacenters: dualDCs, MaxSkew: 1, OutagePolicy: policy,
	}, dualDCScheduler)
	if err != nil {
		cancel()
		t.Fatalf("deletion-cost controller: %v", err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); _ = ctrl.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("deletion-cost controller did not stop")
		}
	})
}

func webDeployment(replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: dualDCNamespace, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			}},
			Template: dualDCPodTemplate(labels, "web"),
		},
	}
}

// dualDCPodTemplate is a pod template for the ecloud-scheduler profile, container named name.
func dualDCPodTemplate(labels map[string]string, name string) v1.PodTemplateSpec {
	return v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: v1.PodSpec{
			SchedulerName:                 dualDCScheduler,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers:                    []v1.Container{{Name: name, Image: "ecloud.test/" + name + ":1"}},
		},
	}
}

func createDeployment(t *testing.T, cp *harness.ControlPlane, d *appsv1.Deployment) {
	t.Helper()
	if _, err := cp.Kube.AppsV1().Deployments(d.Namespace).Create(cp.Ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s: %v", d.Name, err)
	}
}

func updateDeployment(t *testing.T, cp *harness.ControlPlane, name string, mutate func(*appsv1.Deployment)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := cp.Kube.AppsV1().Deployments(dualDCNamespace).Get(cp.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(d)
		_, err = cp.Kube.AppsV1().Deployments(dualDCNamespace).Update(cp.Ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update deployment %s: %v", name, err)
	}
}

func scaleDeployment(t *testing.T, cp *harness.ControlPlane, name string, replicas int32) {
	t.Helper()
	updateDeployment(t, cp, name, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(replicas) })
}

// datacenterOf maps the harness' node names (dc-a-node-0) to their datacenter.
func datacenterOf(node string) string {
	for _, dc := range dualDCs {
		if strings.HasPrefix(node, dc+"-") {
			return dc
		}
	}
	return ""
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// spread is the state of a set of pods: Ready pods per datacenter, and how many are pending or
// terminating.
type spread struct {
	ready       map[string]int
	pending     int
	terminating int
	total       int
}

func (s spread) String() string {
	return fmt.Sprintf("ready dc-a=%d dc-b=%d, pending %d, terminating %d, total %d", s.ready["dc-a"], s.ready["dc-b"], s.pending, s.terminating, s.total)
}

// settled reports whether exactly want pods exist, all Ready, none pending or terminating.
func (s spread) settled(want int) bool {
	return s.total == want && s.pending == 0 && s.terminating == 0 && s.ready["dc-a"]+s.ready["dc-b"] == want
}

func spreadOf(pods []*v1.Pod) spread {
	s := spread{ready: map[string]int{}}
	for _, p := range pods {
		s.total++
		switch {
		case p.DeletionTimestamp != nil:
			s.terminating++
		case p.Spec.NodeName == "":
			s.pending++
		case podReady(p):
			s.ready[datacenterOf(p.Spec.NodeName)]++
		}
	}
	return s
}

func listPods(t *testing.T, cp *harness.ControlPlane, selector string) []*v1.Pod {
	t.Helper()
	list, err := cp.Kube.CoreV1().Pods(dualDCNamespace).List(cp.Ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	out := make([]*v1.Pod, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out
}

// waitSpread waits until the pods matching selector satisfy cond and returns their spread.
func waitSpread(t *testing.T, cp *harness.ControlPlane, selector string, what string, cond func(spread) bool) spread {
	t.Helper()
	var last spread
	harness.Eventually(t, dualDCTimeout, func() (bool, error) {
		last = spreadOf(listPods(t, cp, selector))
		return cond(last), fmt.Errorf("%s", last)
	}, "%s", what)
	return last
}

// spreadMonitor watches pods continuously (every event, not polling) and records every moment a
// datacenter has no Ready pod while the monitor is armed.
type spreadMonitor struct {
	mu         sync.Mutex
	armed      bool
	violations []string
	store      cache.Store
}

func watchSpread(t *testing.T, cp *harness.ControlPlane, selector string) *spreadMonitor {
	t.Helper()
	m := &spreadMonitor{}
	ctx, cancel := context.WithCancel(cp.Ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(cp.Kube, 0, informers.WithNamespace(dualDCNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := factory.Core().V1().Pods().Informer()
	m.store = inf.GetStore()
	check := func(any) { m.check() }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: check, UpdateFunc: func(_, o any) { check(o) }, DeleteFunc: check}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.WaitForCacheSync(ctx.Done())
	return m
}

func (m *spreadMonitor) check() {
	var pods []*v1.Pod
	for _, o := range m.store.List() {
		pods = append(pods, o.(*v1.Pod))
	}
	s := spreadOf(pods)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.armed && (s.ready["dc-a"] == 0 || s.ready["dc-b"] == 0) {
		m.violations = append(m.violations, s.String())
	}
}

// arm starts recording violations (call once both datacenters have Ready pods).
func (m *spreadMonitor) arm(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.armed = on
}

func (m *spreadMonitor) assertNoViolation(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.violations) > 0 {
		t.Errorf("Ready pods were in one datacenter only %d time(s), first: %s", len(m.violations), m.violations[0])
	}
}

func skewOK(s spread) bool {
	d := s.ready["dc-a"] - s.ready["dc-b"]
	return d <= 1 && d >= -1
}

// createSettled creates the web Deployment with replicas pods, waits until all are Ready with
// wantA in dc-a and the rest in dc-b and carry deletion costs, and returns a monitor, armed.
func createSettled(t *testing.T, cp *harness.ControlPlane, replicas, wantA int) *spreadMonitor {
	t.Helper()
	createDeployment(t, cp, webDeployment(int32(replicas)))
	s := waitSpread(t, cp, "app=web", fmt.Sprintf("%d ready pods", replicas), func(s spread) bool { return s.settled(replicas) })
	if s.ready["dc-a"] != wantA || s.ready["dc-b"] != replicas-wantA {
		t.Fatalf("%d replicas: %s, want dc-a=%d dc-b=%d", replicas, s, wantA, replicas-wantA)
	}
	waitCostsOn(t, cp, "app=web", replicas)
	mon := watchSpread(t, cp, "app=web")
	mon.arm(true)
	return mon
}
