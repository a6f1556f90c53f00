package client

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// NewIPPoolInformer returns an informer over every IPPool.
func NewIPPoolInformer(c *Clientset, resync time.Duration) cache.SharedIndexInformer {
	pools := c.IPPools()
	return cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return pools.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return pools.Watch(ctx, o)
		},
	}, &v1alpha1.IPPool{}, resync, cache.Indexers{})
}

// NewIPClaimInformer returns an informer over every IPClaim, with the given indexers.
func NewIPClaimInformer(c *Clientset, resync time.Duration, indexers cache.Indexers) cache.SharedIndexInformer {
	return NewFilteredIPClaimInformer(c, resync, indexers, "")
}

// NewFilteredIPClaimInformer returns an informer over the IPClaims that fieldSelector selects
// (all for ""), with the given indexers: netd follows only its own node's claims
// (status.node=<node>).
func NewFilteredIPClaimInformer(c *Clientset, resync time.Duration, indexers cache.Indexers, fieldSelector string) cache.SharedIndexInformer {
	claims := c.IPClaims()
	if indexers == nil {
		indexers = cache.Indexers{}
	}
	return cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fieldSelector
			return claims.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fieldSelector
			return claims.Watch(ctx, o)
		},
	}, &v1alpha1.IPClaim{}, resync, indexers)
}

// NewIPLocationSliceInformer returns an informer over every IPLocationSlice.
func NewIPLocationSliceInformer(c *Clientset, resync time.Duration) cache.SharedIndexInformer {
	slices := c.IPLocationSlices()
	return cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return slices.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return slices.Watch(ctx, o)
		},
	}, &v1alpha1.IPLocationSlice{}, resync, cache.Indexers{})
}
