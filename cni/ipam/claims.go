package ipam

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Selectable fields of IPClaim (the CRD's selectableFields), for server-side selection: claims
// carry no labels.
const (
	FieldPool           = "spec.pool"
	FieldOwnerNamespace = "spec.owner.namespace"
	FieldOwnerPodName   = "spec.owner.podName"
	FieldNode           = "status.node"
)

// Claim informer indexes that ipam adds (ClaimIndexers) and that controllers may query.
const (
	// IndexOwner indexes claims by "namespace/podName" of their owner.
	IndexOwner = "ipam.ecloud.io/owner"
	// IndexPool indexes claims by pool name.
	IndexPool = "ipam.ecloud.io/pool"
	// IndexWorkload indexes claims by "namespace/kind/name" of their owner's workload.
	IndexWorkload = "ipam.ecloud.io/workload"
)

// ClaimClient is what the allocator needs of the IPClaim API (client.Clientset.IPClaims()).
type ClaimClient interface {
	Create(ctx context.Context, c *v1alpha1.IPClaim, o metav1.CreateOptions) (*v1alpha1.IPClaim, error)
	Update(ctx context.Context, c *v1alpha1.IPClaim, o metav1.UpdateOptions) (*v1alpha1.IPClaim, error)
	Get(ctx context.Context, name string, o metav1.GetOptions) (*v1alpha1.IPClaim, error)
	List(ctx context.Context, o metav1.ListOptions) (*v1alpha1.IPClaimList, error)
	Delete(ctx context.Context, name string, o metav1.DeleteOptions) error
}

// OwnerKey is the identity a sticky IP follows: "namespace/podName".
func OwnerKey(namespace, podName string) string { return namespace + "/" + podName }

// WorkloadKey is "namespace/kind/name" of a workload.
func WorkloadKey(namespace, kind, name string) string { return namespace + "/" + kind + "/" + name }

// OwnerSelector is the field selector for the claims of a pod identity, for a List on the
// apiserver.
func OwnerSelector(namespace, podName string) string {
	return fields.SelectorFromSet(fields.Set{FieldOwnerNamespace: namespace, FieldOwnerPodName: podName}).String()
}

// ClaimIndexers are the indexes the allocator and the controllers use; New adds them to the claim
// informer if it lacks them (before the informer starts).
func ClaimIndexers() cache.Indexers {
	return cache.Indexers{
		IndexOwner: func(obj any) ([]string, error) {
			c, ok := obj.(*v1alpha1.IPClaim)
			if !ok {
				return nil, fmt.Errorf("not an IPClaim: %T", obj)
			}
			return []string{OwnerKey(c.Spec.Owner.Namespace, c.Spec.Owner.PodName)}, nil
		},
		IndexPool: func(obj any) ([]string, error) {
			c, ok := obj.(*v1alpha1.IPClaim)
			if !ok {
				return nil, fmt.Errorf("not an IPClaim: %T", obj)
			}
			return []string{c.Spec.Pool}, nil
		},
		IndexWorkload: func(obj any) ([]string, error) {
			c, ok := obj.(*v1alpha1.IPClaim)
			if !ok || c.Spec.Owner.Name == "" {
				return nil, nil
			}
			o := c.Spec.Owner
			return []string{WorkloadKey(o.Namespace, o.Kind, o.Name)}, nil
		},
	}
}

// ClaimsByIndex returns the claims of an informer index (see ClaimIndexers).
func ClaimsByIndex(inf cache.SharedIndexInformer, index, key string) []*v1alpha1.IPClaim {
	objs, err := inf.GetIndexer().ByIndex(index, key)
	if err != nil {
		return nil
	}
	out := make([]*v1alpha1.IPClaim, 0, len(objs))
	for _, o := range objs {
		if c, ok := o.(*v1alpha1.IPClaim); ok {
			out = append(out, c)
		}
	}
	return out
}

// newClaim builds the claim object for ip of pool for the pod described by intent.
func newClaim(ip, pool string, in Intent, st v1alpha1.IPClaimStatus) *v1alpha1.IPClaim {
	return &v1alpha1.IPClaim{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ClaimName(ip)},
		Spec: v1alpha1.IPClaimSpec{
			Pool: pool, IP: ip, Owner: in.Owner, Mode: in.Mode, ReleasePolicy: in.Release,
		},
		Status: st,
	}
}
