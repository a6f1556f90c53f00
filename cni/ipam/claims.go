package ipam

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Labels ipam puts on every claim, for server-side selection.
const (
	// LabelOwner holds OwnerHash(namespace, podName) of the claim's owner.
	LabelOwner = "network.ecloud.io/owner"
	// LabelPool holds the claim's pool (when the name fits a label value).
	LabelPool = "network.ecloud.io/pool"
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

// OwnerHash is the value of LabelOwner for a pod identity (names can exceed a label's 63 bytes).
func OwnerHash(namespace, podName string) string {
	h := sha256.Sum256([]byte(OwnerKey(namespace, podName)))
	return hex.EncodeToString(h[:20])
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
	c := &v1alpha1.IPClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:   v1alpha1.ClaimName(ip),
			Labels: map[string]string{LabelOwner: OwnerHash(in.Owner.Namespace, in.Owner.PodName)},
		},
		Spec: v1alpha1.IPClaimSpec{
			Pool: pool, IP: ip, Owner: in.Owner, Mode: in.Mode, ReleasePolicy: in.Release,
		},
		Status: st,
	}
	if len(pool) <= 63 {
		c.Labels[LabelPool] = pool
	}
	return c
}
