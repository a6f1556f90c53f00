package ipam

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Release gives claim's IP back by deleting the claim, but only the version given: the delete
// carries UID and resourceVersion preconditions, so a claim re-bound by a new pod instance or
// re-created for the same IP meanwhile is never freed (the call then returns a Conflict error
// and the caller re-evaluates). Releasing a claim that is already gone succeeds. reason is
// logged and counted (ecloud_ipam_releases_total).
func (a *Allocator) Release(ctx context.Context, claim *v1alpha1.IPClaim, reason string) error {
	released, err := ReleaseClaim(ctx, a.cfg.Claims, claim, reason)
	if released {
		a.remember(claim.Name, nil)
	}
	return err
}

// ReleaseClaim is Release for callers without an Allocator (the IP controller): it deletes
// exactly the given version of claim and reports whether this call deleted it.
func ReleaseClaim(ctx context.Context, claims ClaimClient, claim *v1alpha1.IPClaim, reason string) (bool, error) {
	uid, rv := claim.UID, claim.ResourceVersion
	err := claims.Delete(ctx, claim.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ipam: release claim %s (pod %s/%s): %w", claim.Name, claim.Spec.Owner.Namespace, claim.Spec.Owner.PodName, err)
	}
	releases.WithLabelValues(reason).Inc()
	klog.FromContext(ctx).V(2).Info("Released IP", "ip", claim.Spec.IP, "pool", claim.Spec.Pool,
		"pod", klog.KRef(claim.Spec.Owner.Namespace, claim.Spec.Owner.PodName), "reason", reason)
	return true, nil
}

// ReleasePod releases the claims that end with the pod instance uid of namespace/name: its
// ephemeral claim and a sticky claim with release policy OnDelete bound to that instance. Sticky
// claims with OnScaleDown or Never stay. Call it once the pod instance is gone for good (the IP
// controller does on pod deletion); it is idempotent and returns the IPs released.
func (a *Allocator) ReleasePod(ctx context.Context, namespace, name string, uid types.UID) ([]string, error) {
	unlock := a.lockPod(namespace, name)
	defer unlock()
	var out []string
	for _, c := range a.claimsOf(namespace, name) {
		if c.Status.PodUID != uid || c.Spec.ReleasePolicy != v1alpha1.ReleaseOnDelete {
			continue
		}
		if err := a.Release(ctx, c, "PodDeleted"); err != nil {
			return out, err
		}
		out = append(out, c.Spec.IP)
	}
	return out, nil
}
