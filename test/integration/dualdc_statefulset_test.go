package integration

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestDualDCStatefulSetOrdinals: a 3-replica StatefulSet lands by ordinal parity (db-0, db-2 in
// dc-a, db-1 in dc-b), and a deleted db-0, with the group balanced 1+1 without it, returns to
// dc-a because its ordinal belongs there.
func TestDualDCStatefulSetOrdinals(t *testing.T) {
	cp := startDualDC(t, config.OutageHold)
	labels := map[string]string{"app": "db"}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: dualDCNamespace, Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](3),
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template:    dualDCPodTemplate(labels, "db"),
		},
	}
	if _, err := cp.Kube.AppsV1().StatefulSets(dualDCNamespace).Create(cp.Ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create statefulset: %v", err)
	}
	want := map[string]string{"db-0": "dc-a", "db-1": "dc-b", "db-2": "dc-a"}
	placement := func() (map[string]string, string) {
		got := map[string]string{}
		for _, p := range listPods(t, cp, "app=db") {
			if p.DeletionTimestamp == nil && podReady(p) {
				got[p.Name] = datacenterOf(p.Spec.NodeName)
			}
		}
		return got, fmt.Sprint(got)
	}
	matches := func(got map[string]string) bool {
		if len(got) != len(want) {
			return false
		}
		for name, dc := range want {
			if got[name] != dc {
				return false
			}
		}
		return true
	}
	harness.Eventually(t, dualDCTimeout, func() (bool, error) {
		got, s := placement()
		return matches(got), fmt.Errorf("placement %s", s)
	}, "placement %v", want)

	old, err := cp.Kube.CoreV1().Pods(dualDCNamespace).Get(cp.Ctx, "db-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Kube.CoreV1().Pods(dualDCNamespace).Delete(cp.Ctx, "db-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, dualDCTimeout, func() (bool, error) {
		p, err := cp.Kube.CoreV1().Pods(dualDCNamespace).Get(cp.Ctx, "db-0", metav1.GetOptions{})
		if err != nil || p.UID == old.UID {
			return false, err
		}
		got, s := placement()
		return matches(got), fmt.Errorf("placement %s", s)
	}, "db-0 recreated back in dc-a")
}
