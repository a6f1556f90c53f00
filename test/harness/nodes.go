package harness

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// NodeSpec is a Node to create: its name and labels.
type NodeSpec struct {
	Name   string
	Labels map[string]string
}

// Datacenters returns perDC nodes for each named datacenter, labelled with the default
// datacenter label (topology.kubernetes.io/zone) and kubernetes.io/hostname, named
// "<dc>-node-<i>" (e.g. dc-a-node-0).
func Datacenters(perDC int, dcs ...string) []NodeSpec {
	var out []NodeSpec
	for _, dc := range dcs {
		for i := 0; i < perDC; i++ {
			name := fmt.Sprintf("%s-node-%d", dc, i)
			out = append(out, NodeSpec{Name: name, Labels: map[string]string{
				v1alpha1.DefaultDatacenterLabel: dc,
				v1.LabelHostname:                name,
			}})
		}
	}
	return out
}

// TwoDatacenters is Datacenters(perDC, "dc-a", "dc-b").
func TwoDatacenters(perDC int) []NodeSpec { return Datacenters(perDC, "dc-a", "dc-b") }

// CreateNodes creates kubelet-less Nodes: Ready, with 4 CPUs, 16Gi and room for 110 pods.
func (cp *ControlPlane) CreateNodes(tb testing.TB, specs []NodeSpec) []*v1.Node {
	tb.Helper()
	res := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("4"),
		v1.ResourceMemory: resource.MustParse("16Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	var out []*v1.Node
	for _, s := range specs {
		node := &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: s.Labels},
			Status: v1.NodeStatus{
				Capacity:    res,
				Allocatable: res,
				Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady"}},
			},
		}
		created, err := cp.Kube.CoreV1().Nodes().Create(cp.Ctx, node, metav1.CreateOptions{})
		if err != nil {
			tb.Fatalf("harness: create node %s: %v", s.Name, err)
		}
		out = append(out, created)
	}
	return out
}

// SetUnschedulable cordons (true) or uncordons (false) a node.
func (cp *ControlPlane) SetUnschedulable(tb testing.TB, name string, unschedulable bool) {
	tb.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := cp.Kube.CoreV1().Nodes().Get(cp.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Unschedulable = unschedulable
		_, err = cp.Kube.CoreV1().Nodes().Update(cp.Ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		tb.Fatalf("harness: set node %s unschedulable=%v: %v", name, unschedulable, err)
	}
}

// SetReady sets a node's Ready condition, as a kubelet (or its absence) would.
func (cp *ControlPlane) SetReady(tb testing.TB, name string, ready bool) {
	tb.Helper()
	status := v1.ConditionFalse
	if ready {
		status = v1.ConditionTrue
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := cp.Kube.CoreV1().Nodes().Get(cp.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: status, Reason: "Harness", LastTransitionTime: metav1.Now()}}
		_, err = cp.Kube.CoreV1().Nodes().UpdateStatus(cp.Ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		tb.Fatalf("harness: set node %s ready=%v: %v", name, ready, err)
	}
}
