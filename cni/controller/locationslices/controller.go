// Package locationslices is the IP controller's location controller: it derives, from the
// IPClaims' status.node, one or a few IPLocationSlices per node that list the IPs bound there
// and the node's tunnel endpoint. Every netd follows these slices (cni/locations) instead of
// every IPClaim. Changes are batched per node for a short delay, so a burst of claim changes on
// a node costs one write; slices of a deleted node are deleted. It is the only writer of slices.
package locationslices

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/controller/internal/worker"
	"github.com/ecloud-io/ecloud/cni/locations"
)

// Name is the controller's name (logs, queue metrics).
const Name = "iplocation-slices"

// DefaultBatchDelay is how long the controller collects a node's changes before writing.
const DefaultBatchDelay = 100 * time.Millisecond

// Index names on the informers.
const (
	indexBoundNode = "locationslices.boundNode" // claims: status.node of Bound claims
	indexSliceNode = "locationslices.node"      // slices: spec.node
)

// Config tunes the controller.
type Config struct {
	// BatchDelay is how long a node's changes are collected before its slices are written
	// (default DefaultBatchDelay).
	BatchDelay time.Duration
	// MaxPerSlice is the most IPs a slice lists (default v1alpha1.MaxLocationsPerSlice).
	MaxPerSlice int
}

// Controller writes the IPLocationSlices.
type Controller struct {
	cfg    Config
	client *client.IPLocationSliceClient
	claims cache.SharedIndexInformer
	pools  cache.SharedIndexInformer
	nodes  cache.SharedIndexInformer
	slices cache.SharedIndexInformer
	queue  worker.Queue
	now    func() time.Time
	// tracker holds the slices as the controller's own writes left them.
	tracker *tracker

	mu      sync.Mutex
	pending map[string]time.Time // node → the first change not yet written
}

// New wires the controller to the informers (it adds indexes: call before they start); slices
// is an informer over every IPLocationSlice (client.NewIPLocationSliceInformer).
func New(c *client.Clientset, claims, pools, nodes, slices cache.SharedIndexInformer, cfg Config) (*Controller, error) {
	if cfg.BatchDelay <= 0 {
		cfg.BatchDelay = DefaultBatchDelay
	}
	if cfg.MaxPerSlice <= 0 || cfg.MaxPerSlice > v1alpha1.MaxLocationsPerSlice {
		cfg.MaxPerSlice = v1alpha1.MaxLocationsPerSlice
	}
	registerMetrics()
	ctl := &Controller{cfg: cfg, client: c.IPLocationSlices(), claims: claims, pools: pools, nodes: nodes, slices: slices,
		queue: worker.NewQueue(Name), now: time.Now, pending: map[string]time.Time{}, tracker: newTracker()}
	if err := claims.AddIndexers(cache.Indexers{indexBoundNode: boundNode}); err != nil {
		return nil, fmt.Errorf("%s: claim index: %w", Name, err)
	}
	if err := slices.AddIndexers(cache.Indexers{indexSliceNode: sliceNode}); err != nil {
		return nil, fmt.Errorf("%s: slice index: %w", Name, err)
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{claims, cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { ctl.claimChanged(nil, obj) }, UpdateFunc: ctl.claimChanged,
			DeleteFunc: func(obj any) { ctl.claimChanged(obj, nil) },
		}},
		{nodes, cache.ResourceEventHandlerFuncs{
			AddFunc: ctl.nodeChanged, DeleteFunc: ctl.nodeChanged,
			UpdateFunc: func(old, cur any) {
				o, c := old.(*corev1.Node), cur.(*corev1.Node)
				ot, _ := locations.NodeTunnelIP(o)
				ct, _ := locations.NodeTunnelIP(c)
				if ot != ct || o.UID != c.UID {
					ctl.nodeChanged(cur)
				}
			},
		}},
		{pools, cache.ResourceEventHandlerFuncs{
			AddFunc: ctl.poolChanged, DeleteFunc: ctl.poolChanged,
			UpdateFunc: func(old, cur any) {
				if old.(*v1alpha1.IPPool).Spec.VLAN != cur.(*v1alpha1.IPPool).Spec.VLAN {
					ctl.poolChanged(cur)
				}
			},
		}},
		// Slices changed by anyone else (or deleted) are put back; the echoes of the
		// controller's own writes are not work.
		{slices, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { ctl.sliceChanged(obj, false) },
			UpdateFunc: func(_, cur any) { ctl.sliceChanged(cur, false) },
			DeleteFunc: func(obj any) { ctl.sliceChanged(obj, true) },
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("%s: handler: %w", Name, err)
		}
	}
	return ctl, nil
}

func boundNode(obj any) ([]string, error) {
	c, ok := obj.(*v1alpha1.IPClaim)
	if !ok || c.Status.Phase != v1alpha1.PhaseBound || c.Status.Node == "" {
		return nil, nil
	}
	return []string{c.Status.Node}, nil
}

func sliceNode(obj any) ([]string, error) {
	s, ok := obj.(*v1alpha1.IPLocationSlice)
	if !ok {
		return nil, nil
	}
	return []string{s.Spec.Node}, nil
}

func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// enqueue notes a change of node's locations and schedules its write after the batch delay.
func (c *Controller) enqueue(node string) {
	if node == "" {
		return
	}
	c.mu.Lock()
	if _, ok := c.pending[node]; !ok {
		c.pending[node] = c.now()
	}
	c.mu.Unlock()
	c.queue.AddAfter(node, c.cfg.BatchDelay)
}

func (c *Controller) claimChanged(old, cur any) {
	o, _ := unwrap(old).(*v1alpha1.IPClaim)
	n, _ := unwrap(cur).(*v1alpha1.IPClaim)
	located := func(c *v1alpha1.IPClaim) (string, string, string) {
		if c == nil || c.Status.Phase != v1alpha1.PhaseBound {
			return "", "", ""
		}
		return c.Status.Node, c.Spec.IP, c.Spec.Pool
	}
	on, oip, opool := located(o)
	nn, nip, npool := located(n)
	if on == nn && oip == nip && opool == npool {
		return // no location changed (a status or metadata update)
	}
	c.enqueue(on)
	c.enqueue(nn)
}

func (c *Controller) nodeChanged(obj any) {
	if n, ok := unwrap(obj).(*corev1.Node); ok {
		c.enqueue(n.Name)
	}
}

func (c *Controller) poolChanged(obj any) {
	p, ok := unwrap(obj).(*v1alpha1.IPPool)
	if !ok {
		return
	}
	nodes := map[string]bool{}
	for _, o := range c.claims.GetStore().List() {
		if cl := o.(*v1alpha1.IPClaim); cl.Spec.Pool == p.Name && cl.Status.Phase == v1alpha1.PhaseBound {
			nodes[cl.Status.Node] = true
		}
	}
	for n := range nodes {
		c.enqueue(n)
	}
}

func (c *Controller) sliceChanged(obj any, gone bool) {
	if s, ok := unwrap(obj).(*v1alpha1.IPLocationSlice); ok && !c.tracker.observed(s, gone) {
		c.queue.AddAfter(s.Spec.Node, c.cfg.BatchDelay)
	}
}

// Run writes slices with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	ctx = klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), Name))
	if !cache.WaitForCacheSync(ctx.Done(), c.claims.HasSynced, c.pools.HasSynced, c.nodes.HasSynced, c.slices.HasSynced) {
		return
	}
	for _, k := range c.nodes.GetStore().ListKeys() {
		c.queue.Add(k)
	}
	worker.Run(ctx, c.queue, workers, c.sync)
}

// sync writes node's slices.
func (c *Controller) sync(ctx context.Context, node string) error {
	c.mu.Lock()
	since, changed := c.pending[node]
	delete(c.pending, node)
	c.mu.Unlock()
	// A write that found the slice changed (the tracker then holds a fresh read of it) is
	// planned again at once, not after the queue's backoff.
	err := c.syncNode(ctx, node)
	for attempt := 1; errors.Is(err, errStale) && attempt < staleRetries; attempt++ {
		klog.FromContext(ctx).V(4).Info("Slice changed under a write, planning again", "node", node, "err", err)
		err = c.syncNode(ctx, node)
	}
	if err != nil && changed {
		c.mu.Lock()
		if t, ok := c.pending[node]; !ok || since.Before(t) {
			c.pending[node] = since // still unwritten: the retry reports the whole delay
		}
		c.mu.Unlock()
	}
	if err == nil && changed {
		propagation.Observe(c.now().Sub(since).Seconds())
	}
	return err
}

func (c *Controller) syncNode(ctx context.Context, name string) error {
	var cached []*v1alpha1.IPLocationSlice
	objs, err := c.slices.GetIndexer().ByIndex(indexSliceNode, name)
	if err != nil {
		return err
	}
	for _, o := range objs {
		cached = append(cached, o.(*v1alpha1.IPLocationSlice))
	}
	current := c.tracker.current(name, cached)
	var node *corev1.Node
	if o, ok, _ := c.nodes.GetStore().GetByKey(name); ok {
		node = o.(*corev1.Node)
	}
	tunnel, reachable := netipString(node)
	if node == nil || !reachable {
		// A node that is gone (or has no tunnel endpoint) has no locations.
		for _, s := range current {
			if err := c.delete(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
	desired, err := c.desired(name)
	if err != nil {
		return err
	}
	keep, drop := Plan(name, current, desired, c.cfg.MaxPerSlice)
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
	for _, p := range keep {
		spec := v1alpha1.IPLocationSliceSpec{Node: name, TunnelIP: tunnel, Networks: p.networks()}
		if p.current != nil {
			have := p.current.Spec
			have.WriteTime = nil
			if apiequality.Semantic.DeepEqual(have, spec) && apiequality.Semantic.DeepEqual(p.current.OwnerReferences, owner) {
				continue
			}
		}
		wt := metav1.NewMicroTime(c.now())
		spec.WriteTime = &wt
		if p.current == nil {
			s := &v1alpha1.IPLocationSlice{ObjectMeta: metav1.ObjectMeta{Name: p.name, OwnerReferences: owner}, Spec: spec}
			created, err := c.client.Create(ctx, s, metav1.CreateOptions{})
			countWrite("create", err)
			if apierrors.IsAlreadyExists(err) {
				return c.refresh(ctx, name, p.name, "", fmt.Errorf("create IPLocationSlice %s of node %s: %w", p.name, name, err))
			}
			if err != nil {
				return fmt.Errorf("create IPLocationSlice %s of node %s: %w", p.name, name, err)
			}
			c.tracker.wrote(created)
			continue
		}
		u := p.current.DeepCopy()
		u.Spec, u.OwnerReferences = spec, owner
		updated, err := c.client.Update(ctx, u, metav1.UpdateOptions{})
		countWrite("update", err)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return c.refresh(ctx, name, p.name, p.current.UID, fmt.Errorf("update IPLocationSlice %s of node %s: %w", p.name, name, err))
		}
		if err != nil {
			return fmt.Errorf("update IPLocationSlice %s of node %s: %w", p.name, name, err)
		}
		c.tracker.wrote(updated)
	}
	for _, s := range drop {
		if err := c.delete(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (c *Controller) delete(ctx context.Context, s *v1alpha1.IPLocationSlice) error {
	err := c.client.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	countWrite("delete", err)
	if apierrors.IsConflict(err) {
		return c.refresh(ctx, s.Spec.Node, s.Name, s.UID, fmt.Errorf("delete IPLocationSlice %s of node %s: %w", s.Name, s.Spec.Node, err))
	}
	if err != nil {
		return fmt.Errorf("delete IPLocationSlice %s of node %s: %w", s.Name, s.Spec.Node, err)
	}
	c.tracker.deletedSlice(s.Spec.Node, s.Name, s.UID)
	return nil
}

// errStale marks a write refused because the slice had changed (or gone, or appeared) since
// the copy it was planned from: the tracker holds a fresh read, so planning again is the retry.
var errStale = errors.New("slice changed since it was read")

// staleRetries is how many times one sync plans a node again after stale writes before the
// node goes back to the queue with backoff.
const staleRetries = 4

// refresh reads slice name of node after a stale write (cause) and keeps the read in the
// tracker; gone (the UID of the copy written from) is recorded as deleted if the slice no
// longer exists. It returns cause marked with errStale, or the read's error.
func (c *Controller) refresh(ctx context.Context, node, name string, gone types.UID, cause error) error {
	c.tracker.forget(node, name)
	s, err := c.client.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if gone != "" {
			c.tracker.deletedSlice(node, name, gone)
		}
	case err != nil:
		return fmt.Errorf("%w; read of IPLocationSlice %s after it: %w", cause, name, err)
	case s.Spec.Node != node:
		// A slice of another node under this node's name: planned again, the update conflicts
		// and the error is reported through the backoff.
		return fmt.Errorf("%w; IPLocationSlice %s belongs to node %q", cause, name, s.Spec.Node)
	default:
		c.tracker.wrote(s)
	}
	return fmt.Errorf("%w: %w", errStale, cause)
}

// desired is every IP bound on node with its pool and VLAN; claims of unknown pools are left out.
func (c *Controller) desired(node string) (map[string]network, error) {
	objs, err := c.claims.GetIndexer().ByIndex(indexBoundNode, node)
	if err != nil {
		return nil, err
	}
	out := make(map[string]network, len(objs))
	for _, o := range objs {
		cl := o.(*v1alpha1.IPClaim)
		po, ok, _ := c.pools.GetStore().GetByKey(cl.Spec.Pool)
		if !ok || cl.DeletionTimestamp != nil {
			continue
		}
		out[cl.Spec.IP] = network{pool: cl.Spec.Pool, vlan: po.(*v1alpha1.IPPool).Spec.VLAN}
	}
	return out, nil
}

func netipString(n *corev1.Node) (string, bool) {
	if n == nil {
		return "", false
	}
	ip, ok := locations.NodeTunnelIP(n)
	if !ok {
		return "", false
	}
	return ip.String(), true
}
