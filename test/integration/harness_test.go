package integration

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/test/harness"
)

func podTemplate(app string) v1.PodTemplateSpec {
	return v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "workload"}}},
	}
}

// runningPods lists the pods of app that are bound, Running and not terminating.
func runningPods(cp *harness.ControlPlane, ns, app string) ([]v1.Pod, error) {
	list, err := cp.Kube.CoreV1().Pods(ns).List(cp.Ctx, metav1.ListOptions{
		LabelSelector: labels.Set{"app": app}.String(),
	})
	if err != nil {
		return nil, err
	}
	var out []v1.Pod
	for _, p := range list.Items {
		if p.Spec.NodeName != "" && p.Status.Phase == v1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// TestHarnessRunsWorkloads shows the harness drives real workloads: the in-tree Deployment,
// ReplicaSet and StatefulSet controllers create pods, the real kube-scheduler binds them, the
// kubelet simulator runs them, and a deleted pod is replaced.
func TestHarnessRunsWorkloads(t *testing.T) {
	cp := harness.Start(t)
	cp.CreateNodes(t, harness.TwoDatacenters(2))
	cp.StartControllers(t, harness.ReplicaSetController, harness.DeploymentController, harness.StatefulSetController)
	cp.SimulateKubelets(t, nil)
	cp.StartScheduler(t, harness.SchedulerConfig("default-scheduler", ""))

	ns := "default"
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](4),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web"),
		},
	}
	if _, err := cp.Kube.AppsV1().Deployments(ns).Create(cp.Ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: podTemplate("db"),
		},
	}
	if _, err := cp.Kube.AppsV1().StatefulSets(ns).Create(cp.Ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for app, want := range map[string]int{"web": 4, "db": 2} {
		harness.Eventually(t, 30*time.Second, func() (bool, error) {
			pods, err := runningPods(cp, ns, app)
			return len(pods) == want, err
		}, "%d running pods of %s", want, app)
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		d, err := cp.Kube.AppsV1().Deployments(ns).Get(cp.Ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 4 && d.Status.UpdatedReplicas == 4, err
	}, "deployment web to report 4 ready replicas")

	// A deleted StatefulSet pod is finished off by the simulated kubelet and recreated under the
	// same name (a new UID) by the StatefulSet controller.
	old, err := cp.Kube.CoreV1().Pods(ns).Get(cp.Ctx, "db-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Kube.CoreV1().Pods(ns).Delete(cp.Ctx, "db-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		p, err := cp.Kube.CoreV1().Pods(ns).Get(cp.Ctx, "db-1", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && p.UID != old.UID && p.Status.Phase == v1.PodRunning, err
	}, "db-1 to be recreated and running")
}

// TestHarnessSeveralControlPlanes shows two control planes in one test binary are isolated from
// each other (each apiserver has its own storage prefix in the shared etcd).
func TestHarnessSeveralControlPlanes(t *testing.T) {
	a := harness.Start(t)
	b := harness.Start(t)
	if a.Config.Host == b.Config.Host {
		t.Fatalf("both control planes serve on %s", a.Config.Host)
	}
	a.CreateNodes(t, harness.Datacenters(1, "dc-a"))
	b.CreateNodes(t, harness.Datacenters(2, "dc-b"))
	for name, tc := range map[string]struct {
		cp   *harness.ControlPlane
		want int
	}{"a": {a, 1}, "b": {b, 2}} {
		nodes, err := tc.cp.Kube.CoreV1().Nodes().List(tc.cp.Ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Items) != tc.want {
			t.Errorf("control plane %s sees %d nodes, want %d", name, len(nodes.Items), tc.want)
		}
	}
	if _, err := a.Ecloud.IPPools().Create(a.Ctx, validPool("only-in-a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ecloud.IPPools().Get(b.Ctx, "only-in-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pool of control plane a visible in b: %v", err)
	}
}
