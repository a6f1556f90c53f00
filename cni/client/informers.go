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
	claims := c.IPClaims()
	if indexers == nil {
		indexers = cache.Indexers{}
	}
	return cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return claims.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return claims.Watch(ctx, o)
		},
	}, &v1alpha1.IPClaim{}, resync, indexers)
}
