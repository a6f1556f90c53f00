package locrelay

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/locations"
)

// indexLocatedOn indexes the relay's claims by the node they are located on.
const indexLocatedOn = "locrelay.locatedOn"

// claimSource derives the relay's slices from the IPClaims themselves: one slice per node,
// named after it, listing the IPs located there (IPClaim.LocatedOn) with their pools' VLANs and
// the node's tunnel endpoint. A claim's change reaches the followers without any write to the
// apiserver: the relay is the only watcher of the claims for its few hundred nodes.
//
// Its informers keep only what a location needs of each object (see strip*), about a tenth of
// a claim's JSON.
type claimSource struct {
	s      *Server
	claims cache.SharedIndexInformer
	pools  cache.SharedIndexInformer
	nodes  cache.SharedIndexInformer
	now    func() time.Time

	mu sync.Mutex
	// dirty is every node whose slice must be derived again; true when it gained an IP (its
	// slice goes out before those that lost one, so that a moving IP is never unlisted).
	dirty map[string]bool
	wake  chan struct{}
	// sent is each node's slice as last put, without its write time: a slice derived again
	// with the same locations is not sent.
	sent map[string]string
}

func newClaimSource(s *Server, ec *client.Clientset, kube kubernetes.Interface) (*claimSource, error) {
	cs := &claimSource{s: s, now: time.Now, dirty: map[string]bool{}, sent: map[string]string{}, wake: make(chan struct{}, 1),
		claims: client.NewIPClaimInformer(ec, 0, cache.Indexers{indexLocatedOn: locatedOnIndex}),
		pools:  client.NewIPPoolInformer(ec, 0),
		nodes:  informers.NewSharedInformerFactory(kube, 0).Core().V1().Nodes().Informer(),
	}
	for _, t := range []struct {
		inf cache.SharedIndexInformer
		fn  cache.TransformFunc
	}{{cs.claims, stripClaim}, {cs.pools, stripPool}, {cs.nodes, stripNode}} {
		if err := t.inf.SetTransform(t.fn); err != nil {
			return nil, err
		}
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{cs.claims, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { cs.claimChanged(nil, obj) },
			UpdateFunc: cs.claimChanged,
			DeleteFunc: func(obj any) { cs.claimChanged(obj, nil) },
		}},
		{cs.nodes, cache.ResourceEventHandlerFuncs{
			AddFunc: cs.nodeChanged, UpdateFunc: cs.nodeUpdated, DeleteFunc: cs.nodeChanged,
		}},
		{cs.pools, cache.ResourceEventHandlerFuncs{
			AddFunc: cs.poolChanged, DeleteFunc: cs.poolChanged,
			UpdateFunc: func(old, cur any) {
				if o, ok := old.(*v1alpha1.IPPool); ok && o.Spec.VLAN != cur.(*v1alpha1.IPPool).Spec.VLAN {
					cs.poolChanged(cur)
				}
			},
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// stripClaim keeps of a claim its name, IP, pool, phase, node and deletion mark.
func stripClaim(obj any) (any, error) {
	c, ok := obj.(*v1alpha1.IPClaim)
	if !ok {
		return obj, nil
	}
	out := &v1alpha1.IPClaim{}
	out.Name, out.ResourceVersion, out.DeletionTimestamp = c.Name, c.ResourceVersion, c.DeletionTimestamp
	out.Spec.IP, out.Spec.Pool = c.Spec.IP, c.Spec.Pool
	out.Status.Phase, out.Status.Node = c.Status.Phase, c.Status.Node
	return out, nil
}

// stripPool keeps of a pool its name and VLAN.
func stripPool(obj any) (any, error) {
	p, ok := obj.(*v1alpha1.IPPool)
	if !ok {
		return obj, nil
	}
	out := &v1alpha1.IPPool{}
	out.Name, out.ResourceVersion = p.Name, p.ResourceVersion
	out.Spec.VLAN = p.Spec.VLAN
	return out, nil
}

// stripNode keeps of a node its name and what its tunnel endpoint comes from.
func stripNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{}
	out.Name, out.ResourceVersion = n.Name, n.ResourceVersion
	if v, ok := n.Annotations[locations.TunnelIPAnnotation]; ok {
		out.Annotations = map[string]string{locations.TunnelIPAnnotation: v}
	}
	out.Status.Addresses = n.Status.Addresses
	return out, nil
}

func locatedOnIndex(obj any) ([]string, error) {
	if c, ok := obj.(*v1alpha1.IPClaim); ok {
		if n := c.LocatedOn(); n != "" {
			return []string{n}, nil
		}
	}
	return nil, nil
}

func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// mark notes that node's slice must be derived again and wakes the loop.
func (cs *claimSource) mark(node string, gained bool) {
	if node == "" {
		return
	}
	cs.mu.Lock()
	cs.dirty[node] = cs.dirty[node] || gained
	cs.mu.Unlock()
	select {
	case cs.wake <- struct{}{}:
	default:
	}
}

func (cs *claimSource) claimChanged(old, cur any) {
	o, _ := unwrap(old).(*v1alpha1.IPClaim)
	n, _ := unwrap(cur).(*v1alpha1.IPClaim)
	on, nn := o.LocatedOn(), n.LocatedOn()
	if o != nil && n != nil && on == nn && o.Spec.IP == n.Spec.IP && o.Spec.Pool == n.Spec.Pool {
		return // no location changed (a status or metadata update)
	}
	cs.mark(nn, true)
	cs.mark(on, false)
}

func (cs *claimSource) nodeChanged(obj any) {
	if n, ok := unwrap(obj).(*corev1.Node); ok {
		cs.mark(n.Name, true)
	}
}

// nodeUpdated derives the node's slice again only when its tunnel endpoint changed.
func (cs *claimSource) nodeUpdated(old, cur any) {
	o, ok1 := old.(*corev1.Node)
	c, ok2 := cur.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	ot, _ := locations.NodeTunnelIP(o)
	ct, _ := locations.NodeTunnelIP(c)
	if ot != ct {
		cs.nodeChanged(cur)
	}
}

// poolChanged derives again the slices of every node with an IP of the pool (its VLAN may have
// changed, or it appeared or went).
func (cs *claimSource) poolChanged(obj any) {
	p, ok := unwrap(obj).(*v1alpha1.IPPool)
	if !ok {
		return
	}
	for _, o := range cs.claims.GetStore().List() {
		if c := o.(*v1alpha1.IPClaim); c.Spec.Pool == p.Name {
			cs.mark(c.LocatedOn(), true)
		}
	}
}

// run starts the informers, publishes every node's slice once they have listed everything
// (then the relay is synced), and after that every node whose locations changed.
func (cs *claimSource) run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName(Name)
	for _, inf := range []cache.SharedIndexInformer{cs.claims, cs.pools, cs.nodes} {
		go inf.RunWithContext(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), cs.claims.HasSynced, cs.pools.HasSynced, cs.nodes.HasSynced) {
		return
	}
	start := time.Now()
	cs.publish()
	cs.s.synced.Store(true)
	logger.Info("Derived every node's locations from the IPClaims", "nodes", len(cs.nodes.GetStore().ListKeys()),
		"claims", len(cs.claims.GetStore().ListKeys()), "took", time.Since(start))
	for {
		select {
		case <-ctx.Done():
			return
		case <-cs.wake:
			cs.publish()
		}
	}
}

// publish derives the dirty nodes' slices and puts them: nodes that gained an IP first.
func (cs *claimSource) publish() {
	cs.mu.Lock()
	dirty := cs.dirty
	cs.dirty = map[string]bool{}
	cs.mu.Unlock()
	order := make([]string, 0, len(dirty))
	for n := range dirty {
		order = append(order, n)
	}
	slices.SortFunc(order, func(a, b string) int {
		if dirty[a] != dirty[b] {
			if dirty[a] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	now := cs.now()
	for _, n := range order {
		tunnel, ips, ok := cs.locate(n)
		if !ok {
			delete(cs.sent, n)
			cs.s.put(n, nil)
			continue
		}
		content := string(locations.EncodeLocations(n, n, tunnel, time.Time{}, ips))
		if cs.sent[n] == content {
			continue
		}
		cs.sent[n] = content
		cs.s.put(n, locations.EncodeLocations(n, n, tunnel, now, ips))
	}
}

// locate is node's tunnel endpoint and the IPs located there, sorted; ok is false when the
// node is gone or has no tunnel endpoint (it has no locations then, as in the ip-controller's
// slices).
func (cs *claimSource) locate(node string) (tunnel netip.Addr, ips []locations.LocatedIP, ok bool) {
	o, ok, _ := cs.nodes.GetStore().GetByKey(node)
	if !ok {
		return tunnel, nil, false
	}
	if tunnel, ok = locations.NodeTunnelIP(o.(*corev1.Node)); !ok {
		return tunnel, nil, false
	}
	objs, _ := cs.claims.GetIndexer().ByIndex(indexLocatedOn, node)
	ips = make([]locations.LocatedIP, 0, len(objs))
	for _, o := range objs {
		c := o.(*v1alpha1.IPClaim)
		po, ok, _ := cs.pools.GetStore().GetByKey(c.Spec.Pool)
		if !ok {
			continue // an unknown pool has no VLAN: as in the ip-controller's slices, left out
		}
		ip, err := netip.ParseAddr(c.Spec.IP)
		if err != nil {
			continue
		}
		ips = append(ips, locations.LocatedIP{IP: ip, VLAN: uint16(po.(*v1alpha1.IPPool).Spec.VLAN)})
	}
	slices.SortFunc(ips, func(a, b locations.LocatedIP) int { return a.IP.Compare(b.IP) })
	return tunnel, ips, true
}
