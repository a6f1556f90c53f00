package ipam

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// NodeSelector is the pool's spec.nodeSelector as a selector: every node when it is empty. Callers
// that test many nodes against one pool (the scheduler's Filter) parse it once with this.
func NodeSelector(pool *v1alpha1.IPPool) (labels.Selector, error) {
	if pool.Spec.NodeSelector == nil {
		return labels.Everything(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(pool.Spec.NodeSelector)
	if err != nil {
		return nil, fmt.Errorf("IP pool %s: spec.nodeSelector: %w", pool.Name, err)
	}
	return sel, nil
}
