package agent

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// nodeDatacenter reads the datacenter label of the node; empty (logged) when unavailable.
func nodeDatacenter(ctx context.Context, kube kubernetes.Interface, nodeName, label string) string {
	node, err := kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		klog.FromContext(ctx).Error(err, "Reading the node's datacenter label failed; series get an empty datacenter", "node", nodeName, "label", label)
		return ""
	}
	return node.Labels[label]
}
