// Package ippool is the IPPool kube-scheduler plugin: a pod lands only on nodes that one of its
// candidate IP pools reaches and that still has a free IP there, and the IP is reserved while
// scheduling (a slot of the pool taken in memory at Reserve; the IPClaim in phase Reserved created
// through cni/ipam in the binding cycle before the pod is bound: at Bind when IPPool is the
// profile's first binder, else at PreBind), so the CNI finds it after binding and never fails for
// want of an address. A pod holding a sticky claim may only go where that claim's pool reaches.
package ippool

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultbinder"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "IPPool"

// IPPool filters nodes by IP pool reach and free IPs and reserves the pod's IP.
type IPPool struct {
	handle fwk.Handle
	alloc  *ipam.Allocator
	pools  cache.SharedIndexInformer
	claims cache.SharedIndexInformer

	mu sync.Mutex
	// reserved are the pods between Reserve and PostBind/Unreserve, by UID.
	reserved map[types.UID]*reservation

	// binder binds pods once their claim is written (Bind).
	binder fwk.BindPlugin
	// bindOnce decides isBinder: whether IPPool is the profile's first Bind plugin.
	bindOnce sync.Once
	isBinder bool
}

var (
	_ fwk.PreFilterPlugin   = &IPPool{}
	_ fwk.FilterPlugin      = &IPPool{}
	_ fwk.ReservePlugin     = &IPPool{}
	_ fwk.PreBindPlugin     = &IPPool{}
	_ fwk.BindPlugin        = &IPPool{}
	_ fwk.PostBindPlugin    = &IPPool{}
	_ fwk.EnqueueExtensions = &IPPool{}
	_ fwk.SignPlugin        = &IPPool{}
)

// New is the plugin factory for app.WithPlugin. The plugin takes no args. It starts informers on
// IPPools and IPClaims and waits for them to sync.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	if obj != nil {
		if u, ok := obj.(*runtime.Unknown); !ok || (len(u.Raw) > 0 && string(u.Raw) != "{}" && string(u.Raw) != "null") {
			return nil, fmt.Errorf("%s: takes no args, got %T", Name, obj)
		}
	}
	cs, err := client.NewForConfig(h.KubeConfig())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	p := &IPPool{
		handle:   h,
		pools:    client.NewIPPoolInformer(cs, 0),
		claims:   client.NewIPClaimInformer(cs, 0, nil),
		reserved: map[types.UID]*reservation{},
	}
	binder, err := defaultbinder.New(ctx, nil, h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	p.binder = binder.(fwk.BindPlugin)
	p.alloc, err = ipam.New(ipam.Config{
		Claims:         cs.IPClaims(),
		Pools:          p.pools,
		ClaimsInformer: p.claims,
		Namespaces:     h.SharedInformerFactory().Core().V1().Namespaces().Lister(),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	// Started, not waited for: a factory must not block (the scheduler builds every profile's
	// plugins before it starts); PreFilter waits for the first sync instead.
	go p.pools.RunWithContext(ctx)
	go p.claims.RunWithContext(ctx)
	registerMetrics(p)
	return p, nil
}

// syncTimeout bounds how long one scheduling attempt waits for the IPPool/IPClaim caches.
const syncTimeout = 10 * time.Second

// waitSynced waits (bounded) until the pool and claim caches are filled; scheduling on a partial
// view could hand out an IP that is already claimed.
func (p *IPPool) waitSynced(ctx context.Context) error {
	if p.alloc.HasSynced() && p.pools.HasSynced() && p.claims.HasSynced() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), p.pools.HasSynced, p.claims.HasSynced, p.alloc.HasSynced) {
		return fmt.Errorf("%s: IPPool/IPClaim caches not synced after %s (is the network.ecloud.io CRD installed and readable?)", Name, syncTimeout)
	}
	klog.FromContext(ctx).Info("IPPool caches synced", "pools", len(p.pools.GetStore().ListKeys()), "claims", len(p.claims.GetStore().ListKeys()))
	return nil
}

// Name returns the plugin's name.
func (p *IPPool) Name() string { return Name }

// needsIP says whether the plugin constrains the pod: every pod except host-network ones.
func needsIP(pod *v1.Pod) bool { return !pod.Spec.HostNetwork }

// SignPod declines to sign pods that need an IP (each placement consumes a pool's free IPs, so
// results cannot be reused across pods) and signs host-network pods with no fragment.
func (p *IPPool) SignPod(_ context.Context, pod *v1.Pod) ([]fwk.SignFragment, *fwk.Status) {
	if needsIP(pod) {
		return nil, fwk.NewStatus(fwk.Unschedulable, "pods that need an IP from a pool are not signable")
	}
	return nil, nil
}
