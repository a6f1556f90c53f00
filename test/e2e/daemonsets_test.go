package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifestDaemonSets renders manifests/ (as kubectl apply -k does) and returns its DaemonSets.
func manifestDaemonSets(t *testing.T, dir string) []*appsv1.DaemonSet {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*appsv1.DaemonSet
	for _, r := range resMap.Resources() {
		if r.GetKind() != "DaemonSet" {
			continue
		}
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		ds := &appsv1.DaemonSet{}
		if err := yaml.UnmarshalStrict(y, ds); err != nil {
			t.Fatalf("DaemonSet %s: %v", r.GetName(), err)
		}
		out = append(out, ds)
	}
	return out
}

// checkDaemonSetHostLayout runs the pod specs of the ecloud DaemonSets (host network and PID,
// privileged, every hostPath volume with its mount propagation) on both hosts, with the test
// workload in place of the component binary, in namespace ns: what the hosts offer must be what
// netd and node-agent expect, before those binaries exist.
func checkDaemonSetHostLayout(t *testing.T, c *cluster, ns string) {
	ctx := context.Background()
	sets := manifestDaemonSets(t, c.root+"/manifests")
	if len(sets) == 0 {
		t.Fatal("manifests/ has no DaemonSet")
	}
	for i, ds := range sets {
		ds = ds.DeepCopy()
		ds.ObjectMeta = metav1.ObjectMeta{Name: ds.Name, Namespace: ns}
		spec := &ds.Spec.Template.Spec
		// system-node-critical is reserved for kube-system; the test's own namespace has no
		// ecloud ServiceAccounts.
		spec.PriorityClassName, spec.ServiceAccountName = "", ""
		for j := range spec.Containers {
			ctr := &spec.Containers[j]
			ctr.Image, ctr.ImagePullPolicy = "ecloud/workload:dev", corev1.PullIfNotPresent
			ctr.Command = []string{"/workload"}
			// Host network: a port of its own on the host's loopback.
			ctr.Args = []string{fmt.Sprintf("-listen=127.0.0.1:%d", 18080+10*i+j)}
			ctr.LivenessProbe, ctr.ReadinessProbe, ctr.Env, ctr.Ports = nil, nil, nil, nil
		}
		// The ConfigMap volumes refer to kube-system objects; their content is not the point.
		kept := spec.Volumes[:0]
		dropped := map[string]bool{}
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				kept = append(kept, v)
			} else {
				dropped[v.Name] = true
			}
		}
		spec.Volumes = kept
		for j := range spec.Containers {
			mounts := spec.Containers[j].VolumeMounts[:0]
			for _, m := range spec.Containers[j].VolumeMounts {
				if !dropped[m.Name] {
					mounts = append(mounts, m)
				}
			}
			spec.Containers[j].VolumeMounts = mounts
		}
		if _, err := c.kube.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatalf("DaemonSet %s: %v", ds.Name, err)
		}
		poll(t, 2*time.Minute, "DaemonSet "+ds.Name+" running on both hosts", func(ctx context.Context) (bool, error) {
			got, err := c.kube.AppsV1().DaemonSets(ns).Get(ctx, ds.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if got.Status.NumberAvailable == 2 {
				return true, nil
			}
			return false, podProblems(ctx, c, ns, ds.Spec.Selector.MatchLabels)
		})
	}
}

// podProblems describes why pods matching labels are not running (the waiting reason and message).
func podProblems(ctx context.Context, c *cluster, ns string, labels map[string]string) error {
	pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: labels})})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Waiting != nil {
				return fmt.Errorf("pod %s: %s: %s", p.Name, s.State.Waiting.Reason, s.State.Waiting.Message)
			}
		}
	}
	return fmt.Errorf("%d pod(s), not all available yet", len(pods.Items))
}
