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
	"k8s.io/utils/ptr"
)

const demoNS = "ecloud-demo"

// checkExamples checks manifests/examples as make up installs them: the StatefulSet (4) and the
// Deployment (6) are spread 2/2 and 3/3 over the datacenters, the static container has its fixed
// IP, and the admission policy refuses a 1-replica Deployment on ecloud-scheduler.
func checkExamples(t *testing.T, c *cluster) {
	ctx := context.Background()
	poll(t, 3*time.Minute, "StatefulSet stateful 2/2", spread(c, "app=stateful", 2))
	poll(t, 3*time.Minute, "Deployment stateless 3/3", spread(c, "app=stateless", 3))
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

// spread is a poll condition: the Running pods matching selector in the demo namespace are want
// in each datacenter.
func spread(c *cluster, selector string, want int) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		zones := map[string]string{}
		for _, n := range nodes.Items {
			zones[n.Name] = n.Labels[zoneLabel]
		}
		pods, err := c.kube.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		per := map[string]int{}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				per[zones[p.Spec.NodeName]]++
			}
		}
		if per["dc-a"] != want || per["dc-b"] != want {
			return false, fmt.Errorf("%s: running per datacenter %v, want %d in each", selector, per, want)
		}
		return true, nil
	}
}
