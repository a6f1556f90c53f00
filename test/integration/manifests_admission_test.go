package integration

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/test/harness"
)

// applyManifestFile creates every object of a YAML file of manifests/ (multi-document), as a user's
// kubectl apply would, through the dynamic client.
func applyManifestFile(t *testing.T, cp *harness.ControlPlane, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		gvr, _ := meta.UnsafeGuessKindToResource(u.GroupVersionKind())
		if _, err := cp.Dynamic.Resource(gvr).Create(cp.Ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: create %s %s: %v", path, u.GetKind(), u.GetName(), err)
		}
	}
}

func dualDCDeployment(name, scheduler string, replicas *int32, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SchedulerName: scheduler,
					Containers:    []corev1.Container{{Name: "app", Image: "ecloud/workload:dev"}},
				},
			},
		},
	}
}

// TestManifestsAdmissionPolicy applies manifests/admission (the ValidatingAdmissionPolicy and its
// binding, exactly as users get them) and checks which workloads it lets through.
func TestManifestsAdmissionPolicy(t *testing.T) {
	cp := harness.Start(t)
	ctx := cp.Ctx
	const ns = "vap"
	if _, err := cp.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	applyManifestFile(t, cp, "../../manifests/admission/dual-dc-replicas.yaml")
	deployments := cp.Kube.AppsV1().Deployments(ns)

	// The policy takes effect once the apiserver has compiled it: poll with dry-run creates.
	probe := dualDCDeployment("probe", "ecloud-scheduler", ptr.To[int32](1), nil)
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		_, err := deployments.Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsInvalid(err), nil
	}, "the ValidatingAdmissionPolicy to reject a 1-replica Deployment")

	exempt := map[string]string{v1alpha1.AnnotationDualDC: v1alpha1.DualDCExempt}
	for _, tc := range []struct {
		name   string
		obj    *appsv1.Deployment
		reject bool
	}{
		{"one replica on ecloud-scheduler", dualDCDeployment("one", "ecloud-scheduler", ptr.To[int32](1), nil), true},
		{"replicas unset defaults to one", dualDCDeployment("unset", "ecloud-scheduler", nil, nil), true},
		{"one replica, exempt", dualDCDeployment("static", "ecloud-scheduler", ptr.To[int32](1), exempt), false},
		{"two replicas", dualDCDeployment("two", "ecloud-scheduler", ptr.To[int32](2), nil), false},
		{"one replica on the default scheduler", dualDCDeployment("default", "", ptr.To[int32](1), nil), false},
		{"exempt annotation with another value", dualDCDeployment("wrongvalue", "ecloud-scheduler", ptr.To[int32](1), map[string]string{v1alpha1.AnnotationDualDC: "yes"}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := deployments.Create(ctx, tc.obj, metav1.CreateOptions{})
			switch {
			case tc.reject && err == nil:
				t.Fatalf("Deployment %s was accepted, want it rejected", tc.obj.Name)
			case tc.reject && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "replicas >= 2")):
				t.Fatalf("Deployment %s: got %v, want Invalid naming replicas >= 2", tc.obj.Name, err)
			case !tc.reject && err != nil:
				t.Fatalf("Deployment %s rejected: %v", tc.obj.Name, err)
			}
		})
	}

	t.Run("scaling an accepted Deployment down to one", func(t *testing.T) {
		d, err := deployments.Get(ctx, "two", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Spec.Replicas = ptr.To[int32](1)
		if _, err := deployments.Update(ctx, d, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Fatalf("update to 1 replica: got %v, want Invalid", err)
		}
	})

	t.Run("StatefulSet with one replica", func(t *testing.T) {
		d := dualDCDeployment("db", "ecloud-scheduler", ptr.To[int32](1), nil)
		sts := &appsv1.StatefulSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.StatefulSetSpec{
			Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template, ServiceName: "db",
		}}
		if _, err := cp.Kube.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
			t.Fatalf("StatefulSet with 1 replica: got %v, want Invalid", err)
		}
		sts.Spec.Replicas = ptr.To[int32](4)
		if _, err := cp.Kube.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
			t.Fatalf("StatefulSet with 4 replicas rejected: %v", err)
		}
	})
}
