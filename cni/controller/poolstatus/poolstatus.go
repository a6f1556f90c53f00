// Package poolstatus is the IP controller's pool status controller: it keeps every IPPool's
// status (total, allocated, reserved, free; the Ready, Overlapping and LowOnIPs conditions) and
// the ecloud_ipam_pool_free_ips gauge.
package poolstatus

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/controller/internal/worker"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// Name is the controller's name (logs, queue metrics).
const Name = "ippool-status"

// LowOnIPsPercent: a pool with fewer free addresses than this percentage of its total is LowOnIPs.
const LowOnIPsPercent = 10

var (
	freeIPs = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: "ecloud_ipam", Name: "pool_free_ips",
		Help: "Free IPs of each pool (total minus claimed), as last written to its status.", StabilityLevel: metrics.ALPHA,
	}, []string{"pool"})
	totalIPs = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: "ecloud_ipam", Name: "pool_total_ips",
		Help: "Assignable IPs of each pool (its status.total).", StabilityLevel: metrics.ALPHA,
	}, []string{"pool"})
	allocatedIPs = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: "ecloud_ipam", Name: "pool_allocated_ips",
		Help: "IPs of each pool held by claims, Reserved or Bound (its status.allocated).", StabilityLevel: metrics.ALPHA,
	}, []string{"pool"})
	reservedIPs = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem: "ecloud_ipam", Name: "pool_reserved_ips",
		Help: "Part of the allocated IPs of each pool still Reserved: scheduled, not yet plumbed (its status.reserved).", StabilityLevel: metrics.ALPHA,
	}, []string{"pool"})
	poolGauges   = []*metrics.GaugeVec{freeIPs, totalIPs, allocatedIPs, reservedIPs}
	registerOnce sync.Once
)

// Controller keeps IPPool status.
type Controller struct {
	pools    *client.IPPoolClient
	poolInf  cache.SharedIndexInformer
	claimInf cache.SharedIndexInformer
	recorder record.EventRecorder
	queue    worker.Queue
}

// New wires the controller to the pool and claim informers (the claim informer gets ipam's
// indexes; call before the informers start).
func New(c *client.Clientset, pools, claims cache.SharedIndexInformer, recorder record.EventRecorder) (*Controller, error) {
	registerOnce.Do(func() { legacyregistry.MustRegister(freeIPs, totalIPs, allocatedIPs, reservedIPs) })
	if err := ipam.EnsureClaimIndexers(claims); err != nil {
		return nil, err
	}
	ctl := &Controller{pools: c.IPPools(), poolInf: pools, claimInf: claims, recorder: recorder, queue: worker.NewQueue(Name)}
	// Any pool change may change overlaps of others: requeue all pools.
	if _, err := pools.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { ctl.enqueueAll() },
		UpdateFunc: func(old, cur any) { ctl.enqueuePool(cur) },
		DeleteFunc: func(obj any) { ctl.enqueueAll(); ctl.forget(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: pool handler: %w", Name, err)
	}
	if _, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    ctl.enqueueClaimPool,
		UpdateFunc: func(_, cur any) { ctl.enqueueClaimPool(cur) },
		DeleteFunc: ctl.enqueueClaimPool,
	}); err != nil {
		return nil, fmt.Errorf("%s: claim handler: %w", Name, err)
	}
	return ctl, nil
}

func (c *Controller) enqueueAll() {
	for _, k := range c.poolInf.GetStore().ListKeys() {
		c.queue.Add(k)
	}
}

func (c *Controller) enqueuePool(obj any) {
	if p, ok := obj.(*v1alpha1.IPPool); ok {
		c.queue.Add(p.Name)
	}
}

func (c *Controller) forget(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if p, ok := obj.(*v1alpha1.IPPool); ok {
		for _, g := range poolGauges {
			g.DeleteLabelValues(p.Name)
		}
	}
}

func (c *Controller) enqueueClaimPool(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if cl, ok := obj.(*v1alpha1.IPClaim); ok {
		c.queue.Add(cl.Spec.Pool)
	}
}

// Run syncs pools with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	ctx = klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), Name))
	if !cache.WaitForCacheSync(ctx.Done(), c.poolInf.HasSynced, c.claimInf.HasSynced) {
		return
	}
	c.enqueueAll()
	worker.Run(ctx, c.queue, workers, c.sync)
}

// Compute returns the status pool should have given its claims and every pool (for overlaps).
func Compute(pool *v1alpha1.IPPool, claims []*v1alpha1.IPClaim, all []*v1alpha1.IPPool) v1alpha1.IPPoolStatus {
	st := v1alpha1.IPPoolStatus{ObservedGeneration: pool.Generation, Conditions: append([]metav1.Condition(nil), pool.Status.Conditions...)}
	ranges, err := ipam.ParseRanges(&pool.Spec)
	if err == nil {
		st.Total = ranges.Size()
	}
	for _, cl := range claims {
		if cl.Status.Phase == v1alpha1.PhaseReleased {
			continue
		}
		st.Allocated++
		if cl.Status.Phase == v1alpha1.PhaseReserved {
			st.Reserved++
		}
	}
	st.Free = max(0, st.Total-st.Allocated)
	older := ipam.Overlapping(all)[pool.Name]
	cond := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: pool.Generation})
	}
	if older != "" {
		cond(v1alpha1.PoolOverlapping, true, "CIDROverlaps", fmt.Sprintf("CIDR %s overlaps the older pool %s; nothing is allocated from this pool", pool.Spec.CIDR, older))
	} else {
		cond(v1alpha1.PoolOverlapping, false, "NoOverlap", "")
	}
	low := st.Free*100 < st.Total*LowOnIPsPercent
	cond(v1alpha1.PoolLowOnIPs, low, map[bool]string{true: "FewFreeIPs", false: "EnoughFreeIPs"}[low],
		fmt.Sprintf("%d of %d IPs free", st.Free, st.Total))
	switch {
	case err != nil:
		cond(v1alpha1.PoolReady, false, "InvalidSpec", err.Error())
	case older != "":
		cond(v1alpha1.PoolReady, false, "Overlapping", "overlaps pool "+older)
	default:
		cond(v1alpha1.PoolReady, true, "Allocating", "")
	}
	return st
}

func (c *Controller) sync(ctx context.Context, name string) error {
	obj, ok, err := c.poolInf.GetStore().GetByKey(name)
	if err != nil || !ok {
		return err
	}
	pool := obj.(*v1alpha1.IPPool)
	var all []*v1alpha1.IPPool
	for _, o := range c.poolInf.GetStore().List() {
		all = append(all, o.(*v1alpha1.IPPool))
	}
	st := Compute(pool, ipam.ClaimsByIndex(c.claimInf, ipam.IndexPool, name), all)
	freeIPs.WithLabelValues(name).Set(float64(st.Free))
	totalIPs.WithLabelValues(name).Set(float64(st.Total))
	allocatedIPs.WithLabelValues(name).Set(float64(st.Allocated))
	reservedIPs.WithLabelValues(name).Set(float64(st.Reserved))
	if apiequality.Semantic.DeepEqual(st, pool.Status) {
		return nil
	}
	c.recordTransitions(pool, &st)
	u := pool.DeepCopy()
	u.Status = st
	if _, err := c.pools.UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil // a newer version is on its way through the informer
		}
		return fmt.Errorf("update status of IP pool %s: %w", name, err)
	}
	return nil
}

// recordTransitions records a Warning Event when the pool becomes Overlapping or LowOnIPs.
func (c *Controller) recordTransitions(pool *v1alpha1.IPPool, st *v1alpha1.IPPoolStatus) {
	if c.recorder == nil {
		return
	}
	for _, t := range []string{v1alpha1.PoolOverlapping, v1alpha1.PoolLowOnIPs} {
		now := meta.FindStatusCondition(st.Conditions, t)
		if now != nil && now.Status == metav1.ConditionTrue && !meta.IsStatusConditionTrue(pool.Status.Conditions, t) {
			c.recorder.Event(pool, corev1.EventTypeWarning, t, now.Message)
		}
	}
}
