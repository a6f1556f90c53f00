package netd

// ClaimAllocator holds the claim-level work netd does itself around cni/ipam (IPAMAllocator
// allocates): finding the pod a CNI call is for, turning a claim into a lease, and releasing what a
// sandbox held (delete an ephemeral claim, unbind a sticky one).

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// ClaimAllocator works on the daemon's informer stores of claims, pools and this node's pods.
type ClaimAllocator struct {
	kube   kubernetes.Interface
	ecloud *client.Clientset
	claims cache.Indexer
	pools  cache.Store
	pods   cache.Store // this node's pods; nil means always ask the apiserver
}

// NewClaimAllocator builds it on the daemon's informer stores (pods may be nil).
func NewClaimAllocator(kube kubernetes.Interface, ecloud *client.Clientset, claims cache.Indexer, pools, pods cache.Store) *ClaimAllocator {
	return &ClaimAllocator{kube: kube, ecloud: ecloud, claims: claims, pools: pools, pods: pods}
}

// leaseFor turns a claim into the lease the plugin plumbs: its IP with the pool's prefix length,
// gateway and VLAN.
func (a *ClaimAllocator) leaseFor(c *v1alpha1.IPClaim) (Lease, error) {
	obj, ok, _ := a.pools.GetByKey(c.Spec.Pool)
	var pool *v1alpha1.IPPool
	if ok {
		pool = obj.(*v1alpha1.IPPool)
	} else {
		return Lease{}, nodeapi.Errorf(nodeapi.CodeUnknownPool, "IPClaim %s names pool %q, which does not exist", c.Name, c.Spec.Pool)
	}
	pfx, err := netip.ParsePrefix(pool.Spec.CIDR)
	if err != nil {
		return Lease{}, fmt.Errorf("pool %s cidr %q: %w", pool.Name, pool.Spec.CIDR, err)
	}
	ip, err := netip.ParseAddr(c.Spec.IP)
	if err != nil {
		return Lease{}, fmt.Errorf("IPClaim %s ip %q: %w", c.Name, c.Spec.IP, err)
	}
	gw, err := netip.ParseAddr(pool.Spec.Gateway)
	if err != nil {
		return Lease{}, fmt.Errorf("pool %s gateway %q: %w", pool.Name, pool.Spec.Gateway, err)
	}
	return Lease{IP: netip.PrefixFrom(ip, pfx.Bits()), Gateway: gw, VLAN: int(pool.Spec.VLAN), Pool: pool.Name, Sticky: c.Spec.Mode == v1alpha1.ModeSticky}, nil
}

// Release gives up what containerID holds: an ephemeral claim is deleted, a sticky one unbound from
// the node (kept for the pod's next incarnation). Releasing what is already gone is not an error.
func (a *ClaimAllocator) Release(ctx context.Context, pod nodeapi.PodRef, containerID string, ip netip.Addr) error {
	var names []string
	if ip.IsValid() {
		names = append(names, v1alpha1.ClaimName(ip.String()))
	}
	for _, o := range a.claims.List() {
		if c := o.(*v1alpha1.IPClaim); c.Status.ContainerID == containerID && !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	for _, name := range names {
		if err := a.releaseClaim(ctx, name, containerID); err != nil {
			return err
		}
	}
	return nil
}

// releaseClaim releases one claim if containerID still holds it, retrying on conflicts.
func (a *ClaimAllocator) releaseClaim(ctx context.Context, name, containerID string) error {
	var c *v1alpha1.IPClaim
	if o, ok, _ := a.claims.GetByKey(name); ok {
		c = o.(*v1alpha1.IPClaim).DeepCopy() // first try on the informer's copy: one API call
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if c == nil {
			got, err := a.ecloud.IPClaims().Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("get IPClaim %s: %w", name, err)
			}
			c = got
		}
		cur := c
		c = nil // a conflict retries on a fresh copy
		if cur.Status.ContainerID != containerID {
			return nil // someone else holds it now
		}
		if cur.Spec.Mode == v1alpha1.ModeEphemeral {
			err := a.ecloud.IPClaims().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
			switch {
			case err == nil, apierrors.IsNotFound(err):
				return nil
			case apierrors.IsConflict(err):
				return err
			default:
				return fmt.Errorf("delete IPClaim %s: %w", name, err)
			}
		}
		// Held for the owner's next instance, but no longer a reservation in progress: without
		// reservedAt the reservation window does not shield it, so its release policy applies at
		// once (a deleted StatefulSet frees it now, not a window later). The next instance's
		// reservation sets reservedAt afresh.
		cur.Status.Phase, cur.Status.Node, cur.Status.ContainerID, cur.Status.BoundAt = v1alpha1.PhaseReserved, "", "", nil
		cur.Status.ReservedAt = nil
		_, err := a.ecloud.IPClaims().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// pod is the pod of a CNI call, from this node's pod store or the apiserver; nil if it does not exist.
func (a *ClaimAllocator) pod(ctx context.Context, ref nodeapi.PodRef) (*corev1.Pod, error) {
	if a.pods != nil {
		if o, ok, _ := a.pods.GetByKey(ref.String()); ok {
			return o.(*corev1.Pod), nil
		}
	}
	p, err := a.kube.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get pod %s: %w", ref, err)
	}
	return p, nil
}
