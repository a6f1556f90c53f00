package ipam

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// NamespaceAllowed reports whether pods of namespace ns (with the given labels; nil when the
// namespace is unknown) may use pool: ns is listed in spec.namespaces or matched by
// spec.namespaceSelector; with both empty every namespace may.
func NamespaceAllowed(pool *v1alpha1.IPPool, ns string, nsLabels map[string]string) (bool, error) {
	s := &pool.Spec
	if len(s.Namespaces) == 0 && s.NamespaceSelector == nil {
		return true, nil
	}
	if slices.Contains(s.Namespaces, ns) {
		return true, nil
	}
	if s.NamespaceSelector == nil || nsLabels == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s.NamespaceSelector)
	if err != nil {
		return false, fmt.Errorf("IP pool %s: spec.namespaceSelector: %w", pool.Name, err)
	}
	return sel.Matches(labels.Set(nsLabels)), nil
}

// PoolReachesNode reports whether pool reaches node: its spec.nodeSelector (empty: every node)
// matches the node's labels. A nil node means "not decided yet" and is always reached.
func PoolReachesNode(pool *v1alpha1.IPPool, node *corev1.Node) (bool, error) {
	if node == nil || pool.Spec.NodeSelector == nil {
		return true, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(pool.Spec.NodeSelector)
	if err != nil {
		return false, fmt.Errorf("IP pool %s: spec.nodeSelector: %w", pool.Name, err)
	}
	return sel.Matches(labels.Set(node.Labels)), nil
}
