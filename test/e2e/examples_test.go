package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

const demoNS = "ecloud-demo"

// checkExamples checks manifests/examples as make up installs them: the StatefulSet (4) and the
// Deployment (6) are spread 2/2 and 3/3 over the datacenters, also when a rollout (surge 1)
// replaces every pod while the default scoring pulls them into one datacenter, the static
// container has its fixed IP, and the admission policy refuses a 1-replica Deployment on
// ecloud-scheduler.
func checkExamples(t *testing.T, c *cluster) {
	ctx := context.Background()
	poll(t, 3*time.Minute, "StatefulSet stateful 2/2", spread(c, "app=stateful", 2))
	poll(t, 3*time.Minute, "Deployment stateless 3/3", spread(c, "app=stateless", 3))
	t.Run("3/3 against a pull into one datacenter", func(t *testing.T) { checkSpreadAgainstPull(t, c) })
	poll(t, 2*time.Minute, "static container on 10.16.100.10", func(ctx context.Context) (bool, error) {
		pods, err := c.kube.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{LabelSelector: "app=static"})
		if err != nil || len(pods.Items) != 1 {
			return false, fmt.Errorf("static pods: %d, %v", len(pods.Items), err)
		}
		if ip := pods.Items[0].Status.PodIP; ip != "10.16.100.10" {
			return false, fmt.Errorf("static pod IP %q", ip)
		}
		return true, nil
	})

	one := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "single"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "single"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "single"}},
				Spec:       corev1.PodSpec{SchedulerName: "ecloud-scheduler", Containers: []corev1.Container{{Name: "app", Image: "ecloud/workload:dev"}}},
			},
		},
	}
	_, err := c.kube.AppsV1().Deployments(demoNS).Create(ctx, one, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "replicas >= 2") {
		t.Errorf("1-replica Deployment on ecloud-scheduler: got %v, want the admission policy's refusal", err)
	}
}

// pullTaint makes every dc-a node less attractive to the scheduler's scoring (TaintToleration,
// weight 3, outweighs the default soft topology spread, weight 2): on one node per datacenter the
// default scheduler spreads a Deployment 3/3 by itself, under this taint it does not.
var pullTaint = corev1.Taint{Key: "e2e.ecloud.io/prefer-other-datacenter", Value: "true", Effect: corev1.TaintEffectPreferNoSchedule}

// checkSpreadAgainstPull taints the dc-a nodes with pullTaint, then (1) rolls the stateless
// Deployment (ecloud-scheduler) over to a new revision, which must end 3/3, and (2) runs the same
// 6 pods on the default scheduler, which must not end 3/3: proof that the 3/3 is
// DualDatacenter's doing.
func checkSpreadAgainstPull(t *testing.T, c *cluster) {
	ctx := context.Background()
	nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: zoneLabel + "=dc-a"})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("dc-a nodes: %d, %v", len(nodes.Items), err)
	}
	setTaint := func(name string, on bool) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := c.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			kept := n.Spec.Taints[:0]
			for _, tn := range n.Spec.Taints {
				if tn.Key != pullTaint.Key {
					kept = append(kept, tn)
				}
			}
			n.Spec.Taints = kept
			if on {
				n.Spec.Taints = append(n.Spec.Taints, pullTaint)
			}
			_, err = c.kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			return err
		})
	}
	for _, n := range nodes.Items {
		if err := setTaint(n.Name, true); err != nil {
			t.Fatalf("taint %s: %v", n.Name, err)
		}
		t.Cleanup(func() {
			if err := setTaint(n.Name, false); err != nil {
				t.Errorf("untaint %s: %v", n.Name, err)
			}
		})
	}

	// (1) A rollout: every pod replaced, one surge pod at a time, on ecloud-scheduler.
	restartedAt := time.Now().UTC().Format(time.RFC3339Nano)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"e2e.ecloud.io/restarted-at":%q}}}}}`, restartedAt)
	if _, err := c.kube.AppsV1().Deployments(demoNS).Patch(ctx, "stateless", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 4*time.Minute, "the stateless rollout to complete", func(ctx context.Context) (bool, error) {
		d, err := c.kube.AppsV1().Deployments(demoNS).Get(ctx, "stateless", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != *d.Spec.Replicas || st.Replicas != *d.Spec.Replicas || st.AvailableReplicas != *d.Spec.Replicas {
			return false, fmt.Errorf("rollout: %d updated, %d total, %d available of %d", st.UpdatedReplicas, st.Replicas, st.AvailableReplicas, *d.Spec.Replicas)
		}
		return true, nil
	})
	// (A rollout may end uneven for a moment; the scheduler's controller then evicts the surplus.)
	poll(t, 3*time.Minute, "Deployment stateless 3/3 after the rollout", spread(c, "app=stateless", 3))

	// (2) The control: the same pods on the default scheduler.
	control := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "spread-control"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](6),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread-control"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "spread-control"}, Annotations: map[string]string{"ecloud.io/ip-pools": "pool-dc-a,pool-dc-b"}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers:                    []corev1.Container{{Name: "app", Image: "ecloud/workload:dev", ImagePullPolicy: corev1.PullIfNotPresent}},
				},
			},
		},
	}
	if _, err := c.kube.AppsV1().Deployments(demoNS).Create(ctx, control, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = c.kube.AppsV1().Deployments(demoNS).Delete(context.Background(), "spread-control", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)})
		poll(t, 2*time.Minute, "the spread-control pods gone", func(ctx context.Context) (bool, error) {
			pods, err := c.kube.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{LabelSelector: "app=spread-control"})
			return err == nil && len(pods.Items) == 0, err
		})
	}()
	var per map[string]int
	poll(t, 3*time.Minute, "6 spread-control pods running", func(ctx context.Context) (bool, error) {
		var err error
		per, err = runningPerDatacenter(ctx, c, "app=spread-control")
		return err == nil && per["dc-a"]+per["dc-b"] == 6, err
	})
	t.Logf("default scheduler under the taint: running per datacenter %v", per)
	if per["dc-a"] == 3 {
		t.Errorf("the default scheduler also spread 3/3 under the taint (%v): the 3/3 check does not tell DualDatacenter from it", per)
	}
}

// runningPerDatacenter counts the Running pods matching selector in the demo namespace per zone.
func runningPerDatacenter(ctx context.Context, c *cluster, selector string) (map[string]int, error) {
	nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	zones := map[string]string{}
	for _, n := range nodes.Items {
		zones[n.Name] = n.Labels[zoneLabel]
	}
	pods, err := c.kube.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	per := map[string]int{}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			per[zones[p.Spec.NodeName]]++
		}
	}
	return per, nil
}

// spread is a poll condition: the Running pods matching selector in the demo namespace are want
// in each datacenter.
func spread(c *cluster, selector string, want int) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		per, err := runningPerDatacenter(ctx, c, selector)
		if err != nil {
			return false, err
		}
		if per["dc-a"] != want || per["dc-b"] != want {
			return false, fmt.Errorf("%s: running per datacenter %v, want %d in each", selector, per, want)
		}
		return true, nil
	}
}
