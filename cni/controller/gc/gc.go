// Package gc is the IP controller's garbage collector of leaked ephemeral claims: claims whose pod
// is gone without the release controller seeing it go (pod deleted or force-deleted while the
// controller was down, node deleted, CNI DEL never called). It follows Calico's discipline: a
// claim is freed only after it was seen leaked on two scans at least Grace apart, and after fresh
// reads of the pod (and node) confirm it. It never touches a Reserved claim inside its reservation
// window, a live pod's claim or a sticky claim (those follow their release policy).
package gc

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/controller/release"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// Name is the controller's name.
const Name = "ipclaim-gc"

var (
	collected = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "ecloud_ipam", Name: "gc_claims_total",
		Help: "Leaked ephemeral claims freed by the garbage collector, by reason.", StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	suspectsGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Subsystem: "ecloud_ipam", Name: "gc_suspected_claims",
		Help: "Ephemeral claims seen leaked once and waiting for confirmation.", StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once
)

// Config tunes the collector.
type Config struct {
	// Interval between scans.
	Interval time.Duration
	// Grace is the least time between the first sighting of a leak and its release.
	Grace time.Duration
	// ReservationWindow protects young Reserved claims.
	ReservationWindow time.Duration
}

// Controller collects leaked ephemeral claims.
type Controller struct {
	cfg      Config
	kube     kubernetes.Interface
	claims   ipam.ClaimClient
	claimInf cache.SharedIndexInformer
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	suspects map[string]suspect // claim name → first sighting
}

type suspect struct {
	uid   types.UID
	first time.Time
	seen  int
}

// New wires the collector.
func New(cfg Config, kube kubernetes.Interface, claims ipam.ClaimClient, claimInf cache.SharedIndexInformer,
	pods coreinformers.PodInformer, nodes coreinformers.NodeInformer, recorder record.EventRecorder) *Controller {
	registerOnce.Do(func() { legacyregistry.MustRegister(collected, suspectsGauge) })
	return &Controller{
		cfg: cfg, kube: kube, claims: claims, claimInf: claimInf, pods: pods.Lister(), nodes: nodes.Lister(),
		synced:   []cache.InformerSynced{claimInf.HasSynced, pods.Informer().HasSynced, nodes.Informer().HasSynced},
		recorder: recorder, suspects: map[string]suspect{},
	}
}

// Run scans every Interval until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	ctx = klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), Name))
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if err := c.Scan(ctx); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "GC scan failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scan runs one pass: note leaks, free those seen twice and past Grace.
func (c *Controller) Scan(ctx context.Context) error {
	now := time.Now()
	leaking := map[string]bool{}
	var errs []error
	for _, obj := range c.claimInf.GetStore().List() {
		cl := obj.(*v1alpha1.IPClaim)
		if cl.Spec.Mode != v1alpha1.ModeEphemeral || cl.DeletionTimestamp != nil {
			continue
		}
		o, err := c.observe(cl, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ipam.Decide(cl, o).Release {
			continue
		}
		leaking[cl.Name] = true
		s, ok := c.suspects[cl.Name]
		if !ok || s.uid != cl.UID {
			s = suspect{uid: cl.UID, first: now}
		}
		s.seen++
		c.suspects[cl.Name] = s
		if s.seen < 2 || now.Sub(s.first) < c.cfg.Grace {
			continue
		}
		v, err := release.Confirm(ctx, c.kube, c.claims, cl, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !v.Release {
			delete(c.suspects, cl.Name)
			continue
		}
		klog.FromContext(ctx).V(2).Info("Freeing leaked IP", "claim", cl.Name, "pod", klog.KRef(cl.Spec.Owner.Namespace, cl.Spec.Owner.PodName), "reason", v.Reason, "firstSeen", s.first)
		if err := release.Release(ctx, c.claims, c.recorder, cl, "GC"+v.Reason); err != nil {
			errs = append(errs, err)
			continue
		}
		collected.WithLabelValues(v.Reason).Inc()
		delete(c.suspects, cl.Name)
	}
	for name := range c.suspects {
		if !leaking[name] {
			delete(c.suspects, name)
		}
	}
	suspectsGauge.Set(float64(len(c.suspects)))
	if len(errs) > 0 {
		return fmt.Errorf("%d claims could not be checked, first: %w", len(errs), errs[0])
	}
	return nil
}

func (c *Controller) observe(cl *v1alpha1.IPClaim, now time.Time) (ipam.Observation, error) {
	o := ipam.Observation{Now: now, ReservationWindow: c.cfg.ReservationWindow}
	pod, err := c.pods.Pods(cl.Spec.Owner.Namespace).Get(cl.Spec.Owner.PodName)
	switch {
	case err == nil:
		o.Pod = pod
	case !apierrors.IsNotFound(err):
		return o, err
	}
	if o.Pod != nil && o.Pod.Spec.NodeName != "" {
		_, err := c.nodes.Get(o.Pod.Spec.NodeName)
		o.PodNodeGone = apierrors.IsNotFound(err)
	}
	return o, nil
}
