package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// workloadRef is a Deployment or DaemonSet that manifests/ installs.
type workloadRef struct{ kind, namespace, name string }

// manifestWorkloads renders dir (as kubectl apply -k does) and returns its Deployments and
// DaemonSets.
func manifestWorkloads(t *testing.T, dir string) []workloadRef {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []workloadRef
	for _, r := range resMap.Resources() {
		if k := r.GetKind(); k == "Deployment" || k == "DaemonSet" {
			out = append(out, workloadRef{k, r.GetNamespace(), r.GetName()})
		}
	}
	return out
}

// checkComponents: every Deployment and DaemonSet of manifests/ is installed and fully available.
func checkComponents(t *testing.T, c *cluster) {
	refs := manifestWorkloads(t, c.root+"/manifests")
	if len(refs) == 0 {
		t.Fatal("manifests/ renders no Deployment or DaemonSet")
	}
	for _, w := range refs {
		poll(t, 2*time.Minute, fmt.Sprintf("%s %s/%s available", w.kind, w.namespace, w.name), func(ctx context.Context) (bool, error) {
			var want, have int32
			switch w.kind {
			case "Deployment":
				d, err := c.kube.AppsV1().Deployments(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				want, have = *d.Spec.Replicas, d.Status.AvailableReplicas
			case "DaemonSet":
				d, err := c.kube.AppsV1().DaemonSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				want, have = d.Status.DesiredNumberScheduled, d.Status.NumberAvailable
			}
			if want == 0 || have != want {
				return false, fmt.Errorf("%d of %d available", have, want)
			}
			return true, nil
		})
	}
}
