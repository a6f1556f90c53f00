package ipam

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Config builds an Allocator.
type Config struct {
	// Claims writes claims (client.Clientset.IPClaims()). Required.
	Claims ClaimClient
	// Pools and ClaimsInformer are the informers the allocator's in-memory view is kept from
	// (client.NewIPPoolInformer, client.NewIPClaimInformer). Required; New must run before they
	// start. The caller starts them and waits for HasSynced.
	Pools          cache.SharedIndexInformer
	ClaimsInformer cache.SharedIndexInformer
	// Namespaces resolves namespace labels (spec.namespaceSelector) and the namespace default
	// pools (ecloud.io/ip-pools on the Namespace). Optional: without it only spec.namespaces
	// grants access and namespaces name no pools.
	Namespaces corelisters.NamespaceLister
	// Recorder, if set, records a Warning Event on the pod for every refusal.
	Recorder record.EventRecorder
	// RecordAllocations also records a Normal Event (IPAllocated) on the pod for every successful
	// Allocate (the event correlator folds repeats into one Event with a count).
	// Off by default: it doubles the writes on the apiserver of an allocation.
	RecordAllocations bool
	// PendingTTL is how long an IP this allocator reserved or saw taken stays off its free set
	// while its informer has not seen the claim yet (default 1m).
	PendingTTL time.Duration
}

// Allocator hands out IPs of IPPools by creating IPClaims. Its free sets come from informers;
// uniqueness comes from the apiserver (one claim per IP, named after it). It is safe for
// concurrent use; calls for different pods never wait for each other.
type Allocator struct {
	cfg        Config
	claimsInf  cache.SharedIndexInformer
	podLocks   podLocks
	mu         sync.Mutex
	pools      map[string]*poolState
	held       map[netip.Addr]string  // IP → pool, for every claim the informer has
	heldByPool map[string]int64       // pool → claims the informer has
	pending    map[netip.Addr]pending // IPs taken but not yet seen by the informer
	pendByPool map[string]int64       // pool → len(pending of that pool)
	holdByPool map[string]int64       // pool → holds taken and not yet spent (TakeHold)
	recent     map[string]recentClaim // claim name → what this allocator wrote last, until seen
	uncertain  map[string]time.Time   // owner key → a create of unknown outcome happened, until
	now        func() time.Time
}

type poolState struct {
	pool        *v1alpha1.IPPool
	ranges      *Ranges
	err         error  // spec does not parse
	overlapping string // name of the older pool it overlaps, if any
	cursor      netip.Addr
}

type pending struct {
	pool    string
	expires time.Time
}

type recentClaim struct {
	claim   *v1alpha1.IPClaim // nil: deleted by this allocator
	expires time.Time
}

// New builds an Allocator and registers its handlers and indexes on the informers.
func New(cfg Config) (*Allocator, error) {
	if cfg.Claims == nil || cfg.Pools == nil || cfg.ClaimsInformer == nil {
		return nil, errors.New("ipam: Config needs Claims, Pools and ClaimsInformer")
	}
	if cfg.PendingTTL <= 0 {
		cfg.PendingTTL = time.Minute
	}
	RegisterMetrics()
	a := &Allocator{
		cfg: cfg, claimsInf: cfg.ClaimsInformer,
		pools: map[string]*poolState{}, held: map[netip.Addr]string{}, heldByPool: map[string]int64{},
		pending: map[netip.Addr]pending{}, pendByPool: map[string]int64{}, holdByPool: map[string]int64{}, recent: map[string]recentClaim{}, uncertain: map[string]time.Time{},
		now: time.Now,
	}
	if err := EnsureClaimIndexers(cfg.ClaimsInformer); err != nil {
		return nil, err
	}
	if _, err := cfg.Pools.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.setPool(obj) },
		UpdateFunc: func(_, obj any) { a.setPool(obj) },
		DeleteFunc: func(obj any) { a.deletePool(obj) },
	}); err != nil {
		return nil, fmt.Errorf("ipam: pool informer handler: %w", err)
	}
	if _, err := cfg.ClaimsInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.claimSeen(obj, true) },
		UpdateFunc: func(_, obj any) { a.claimSeen(obj, true) },
		DeleteFunc: func(obj any) { a.claimSeen(obj, false) },
	}); err != nil {
		return nil, fmt.Errorf("ipam: claim informer handler: %w", err)
	}
	return a, nil
}

// EnsureClaimIndexers adds ClaimIndexers to a claim informer that lacks them.
func EnsureClaimIndexers(inf cache.SharedIndexInformer) error {
	have := inf.GetIndexer().GetIndexers()
	missing := cache.Indexers{}
	for k, f := range ClaimIndexers() {
		if _, ok := have[k]; !ok {
			missing[k] = f
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := inf.AddIndexers(missing); err != nil {
		return fmt.Errorf("ipam: claim informer indexes: %w", err)
	}
	return nil
}

// HasSynced reports whether both informers have synced; allocate only after it is true.
func (a *Allocator) HasSynced() bool {
	return a.cfg.Pools.HasSynced() && a.claimsInf.HasSynced()
}

func (a *Allocator) setPool(obj any) {
	p, ok := obj.(*v1alpha1.IPPool)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.pools[p.Name]
	if st == nil || st.pool.Spec.CIDR != p.Spec.CIDR || !specRangesEqual(st.pool, p) {
		st = &poolState{}
		st.ranges, st.err = ParseRanges(&p.Spec)
		if st.err == nil && st.ranges.Size() > 0 {
			st.cursor = st.ranges.Nth(rand.Uint64())
		}
	}
	st.pool = p
	a.pools[p.Name] = st
	a.recomputeOverlapsLocked()
}

func specRangesEqual(a, b *v1alpha1.IPPool) bool {
	return a.Spec.Gateway == b.Spec.Gateway && slices.Equal(a.Spec.IncludeRanges, b.Spec.IncludeRanges) &&
		slices.Equal(a.Spec.ExcludeIPs, b.Spec.ExcludeIPs)
}

func (a *Allocator) deletePool(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*v1alpha1.IPPool)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pools, p.Name)
	a.recomputeOverlapsLocked()
}

func (a *Allocator) recomputeOverlapsLocked() {
	list := make([]*v1alpha1.IPPool, 0, len(a.pools))
	for _, st := range a.pools {
		list = append(list, st.pool)
	}
	over := Overlapping(list)
	for name, st := range a.pools {
		st.overlapping = over[name]
	}
}

// Overlapping returns, for every pool whose CIDR overlaps an older pool's, the name of that older
// pool. Older means created earlier (the name breaks ties); the older pool stays usable, so adding
// a bad pool never takes IPs away from a live one. Pools whose CIDR does not parse are skipped.
func Overlapping(pools []*v1alpha1.IPPool) map[string]string {
	type entry struct {
		p      *v1alpha1.IPPool
		prefix netip.Prefix
	}
	var es []entry
	for _, p := range pools {
		if pr, err := netip.ParsePrefix(p.Spec.CIDR); err == nil {
			es = append(es, entry{p, pr.Masked()})
		}
	}
	slices.SortFunc(es, func(x, y entry) int {
		if c := x.p.CreationTimestamp.Compare(y.p.CreationTimestamp.Time); c != 0 {
			return c
		}
		if x.p.Name < y.p.Name {
			return -1
		}
		return 1
	})
	out := map[string]string{}
	for i, e := range es {
		for _, older := range es[:i] {
			if e.prefix.Overlaps(older.prefix) {
				out[e.p.Name] = older.p.Name
				break
			}
		}
	}
	return out
}

func (a *Allocator) claimSeen(obj any, present bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	c, ok := obj.(*v1alpha1.IPClaim)
	if !ok {
		return
	}
	ip, err := netip.ParseAddr(c.Spec.IP)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.recent, c.Name)
	a.unpendLocked(ip)
	_, had := a.held[ip]
	switch {
	case present && !had:
		a.held[ip] = c.Spec.Pool
		a.heldByPool[c.Spec.Pool]++
	case !present && had:
		a.heldByPool[a.held[ip]]--
		delete(a.held, ip)
	}
}

func (a *Allocator) unpendLocked(ip netip.Addr) {
	if p, ok := a.pending[ip]; ok {
		a.pendByPool[p.pool]--
		delete(a.pending, ip)
	}
}

// takenLocked reports whether ip is held by a claim or pending, dropping an expired pending mark.
func (a *Allocator) takenLocked(ip netip.Addr, now time.Time) bool {
	if _, ok := a.held[ip]; ok {
		return true
	}
	if p, ok := a.pending[ip]; ok {
		if now.Before(p.expires) {
			return true
		}
		a.unpendLocked(ip)
	}
	return false
}

// reserve takes a free IP of pool off the free set (pending until the informer sees a claim for
// it). ok is false when the pool has none.
func (a *Allocator) reserve(pool string, h *Hold) (ip netip.Addr, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h != nil && h.pool == pool {
		a.spendLocked(h) // the hold becomes the IP chosen below, under the same lock
	}
	st := a.pools[pool]
	if st == nil || st.err != nil || st.overlapping != "" || st.ranges.Size() == 0 {
		return netip.Addr{}, false
	}
	used := a.heldByPool[pool] + a.pendByPool[pool] + a.holdByPool[pool]
	size := st.ranges.Size()
	if used >= size {
		return netip.Addr{}, false
	}
	now := a.now()
	// Among used+1 consecutive allocatable addresses at least one is free; a small slack covers
	// claims of this pool whose IP lies outside its ranges (and so do not block any address).
	steps := min(size, used+16)
	cur := st.cursor
	for i := int64(0); i < steps; i++ {
		if !st.ranges.Contains(cur) {
			cur = st.ranges.Next(cur)
		}
		if !a.takenLocked(cur, now) {
			a.pending[cur] = pending{pool: pool, expires: now.Add(a.cfg.PendingTTL)}
			a.pendByPool[pool]++
			st.cursor = st.ranges.Next(cur)
			return cur, true
		}
		cur = st.ranges.Next(cur)
	}
	st.cursor = cur
	return netip.Addr{}, false
}

// markTaken keeps ip off the free set until the informer catches up (another allocator took it).
func (a *Allocator) markTaken(ip netip.Addr, pool string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.held[ip]; ok {
		return
	}
	if _, ok := a.pending[ip]; !ok {
		a.pendByPool[pool]++
	}
	a.pending[ip] = pending{pool: pool, expires: a.now().Add(a.cfg.PendingTTL)}
}

// unreserve puts back an IP that reserve took but no claim was created for.
func (a *Allocator) unreserve(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unpendLocked(ip)
}

// remember records a claim this allocator wrote (nil: deleted), so lookups see it before the
// informer does. A write the informer has already delivered (its watch event can beat the
// response) is not recorded: claimSeen, which forgets recorded writes, has run for it, and the
// entry would stay until it expires, making every claimsOf walk it.
func (a *Allocator) remember(name string, c *v1alpha1.IPClaim) {
	a.mu.Lock()
	defer a.mu.Unlock()
	obj, seen, _ := a.claimsInf.GetIndexer().GetByKey(name)
	if c == nil && !seen {
		return
	}
	if cached, ok := obj.(*v1alpha1.IPClaim); ok && c != nil && cached.ResourceVersion == c.ResourceVersion {
		return
	}
	a.recent[name] = recentClaim{claim: c, expires: a.now().Add(a.cfg.PendingTTL)}
}

// setUncertain records that a claim may have been created for the owner although the create call
// failed (connection lost, timeout): its next lookup must ask the apiserver, not the cache.
func (a *Allocator) setUncertain(owner string, on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if on {
		a.uncertain[owner] = a.now().Add(a.cfg.PendingTTL)
	} else {
		delete(a.uncertain, owner)
	}
}

func (a *Allocator) isUncertain(owner string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.uncertain[owner]
	if ok && a.now().After(until) {
		delete(a.uncertain, owner)
		return false
	}
	return ok
}

// Free is the number of free IPs of pool, counting IPs reserved in flight and holds taken by this
// allocator as used; 0 for an unknown, unparsable or overlapping pool.
func (a *Allocator) Free(pool string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.freeLocked(pool)
}

func (a *Allocator) freeLocked(pool string) int64 {
	st := a.pools[pool]
	if st == nil || st.err != nil || st.overlapping != "" {
		return 0
	}
	return max(0, st.ranges.Size()-a.heldByPool[pool]-a.pendByPool[pool]-a.holdByPool[pool])
}

// Pool returns the informer's copy of a pool (read-only) and whether it is usable: parsed and
// not overlapping an older pool (the error says why not).
func (a *Allocator) Pool(name string) (*v1alpha1.IPPool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.pools[name]
	if st == nil {
		return nil, &Error{Reason: ReasonUnknownPool, Pool: name, Detail: fmt.Sprintf("IP pool %q does not exist", name)}
	}
	return st.pool, poolUnusableLocked(st)
}

func poolUnusableLocked(st *poolState) error {
	switch {
	case st.err != nil:
		return &Error{Reason: ReasonPoolUnusable, Pool: st.pool.Name, Detail: fmt.Sprintf("IP pool %q is unusable: %v", st.pool.Name, st.err)}
	case st.overlapping != "":
		return &Error{Reason: ReasonPoolUnusable, Pool: st.pool.Name,
			Detail: fmt.Sprintf("IP pool %q is unusable: its CIDR %s overlaps the older pool %q", st.pool.Name, st.pool.Spec.CIDR, st.overlapping)}
	}
	return nil
}

// poolOf returns the usable pool whose ranges hold ip, or "".
func (a *Allocator) poolOf(ip netip.Addr) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.pools))
	for name, st := range a.pools {
		if st.err == nil && st.overlapping == "" && st.ranges.Contains(ip) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// claimsOf returns the claims of a pod identity: the informer's, overridden by what this
// allocator wrote since.
func (a *Allocator) claimsOf(namespace, name string) []*v1alpha1.IPClaim {
	cached := ClaimsByIndex(a.claimsInf, IndexOwner, OwnerKey(namespace, name))
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	byName := map[string]*v1alpha1.IPClaim{}
	for _, c := range cached {
		byName[c.Name] = c
	}
	for n, r := range a.recent {
		switch {
		case now.After(r.expires):
			delete(a.recent, n)
		case r.claim == nil:
			delete(byName, n)
		case r.claim.Spec.Owner.Namespace == namespace && r.claim.Spec.Owner.PodName == name:
			byName[n] = r.claim
		}
	}
	out := make([]*v1alpha1.IPClaim, 0, len(byName))
	for _, c := range byName {
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y *v1alpha1.IPClaim) int { return x.CreationTimestamp.Compare(y.CreationTimestamp.Time) })
	return out
}

// heldClaim returns the informer's claim for ip, if any.
func (a *Allocator) heldClaim(ip netip.Addr) *v1alpha1.IPClaim {
	obj, ok, err := a.claimsInf.GetIndexer().GetByKey(v1alpha1.ClaimName(ip.String()))
	if err != nil || !ok {
		return nil
	}
	c, _ := obj.(*v1alpha1.IPClaim)
	return c
}

// lockPod serialises calls for one pod identity. Calls for different identities never wait for
// each other: a lock shared by several identities (a stripe) would make one pod's allocation
// wait for another's apiserver round trip.
func (a *Allocator) lockPod(namespace, name string) func() {
	return a.podLocks.lock(OwnerKey(namespace, name))
}

// Candidates returns the pools a pod of namespace with intent may draw from, in order of
// preference: the pools the pod names, else the pools its namespace names (ecloud.io/ip-pools on
// the Namespace), else every pool with spec.default that the namespace may use (by name). Named
// pools must exist, be usable and allow the namespace, or Candidates fails with ReasonUnknownPool,
// ReasonPoolUnusable or ReasonNamespaceNotAllowed; with no candidate at all it fails with
// ReasonNoPool.
func (a *Allocator) Candidates(namespace string, in Intent) ([]*v1alpha1.IPPool, error) {
	var nsLabels map[string]string
	var nsPools []string
	if a.cfg.Namespaces != nil {
		ns, err := a.cfg.Namespaces.Get(namespace)
		switch {
		case err == nil:
			nsLabels = ns.Labels
			if v, ok := ns.Annotations[v1alpha1.AnnotationIPPools]; ok {
				if nsPools, err = ParsePoolList(v1alpha1.AnnotationIPPools, v); err != nil {
					var e *Error
					errors.As(err, &e)
					e.Namespace = namespace
					e.Detail = "namespace " + namespace + ": " + e.Detail
					return nil, e
				}
			}
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("ipam: namespace %s: %w", namespace, err)
		}
	}
	named, source := in.Pools, "pod annotation "+v1alpha1.AnnotationIPPools
	if named == nil {
		named, source = nsPools, "namespace annotation "+v1alpha1.AnnotationIPPools
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*v1alpha1.IPPool
	for _, name := range named {
		st := a.pools[name]
		if st == nil {
			return nil, unknownPool(name, source)
		}
		if err := poolUnusableLocked(st); err != nil {
			return nil, err
		}
		ok, err := NamespaceAllowed(st.pool, namespace, nsLabels)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, namespaceNotAllowed(name, namespace)
		}
		out = append(out, st.pool)
	}
	if named != nil {
		return out, nil
	}
	for _, st := range a.pools {
		if !st.pool.Spec.Default || poolUnusableLocked(st) != nil {
			continue
		}
		if ok, err := NamespaceAllowed(st.pool, namespace, nsLabels); err == nil && ok {
			out = append(out, st.pool)
		}
	}
	if len(out) == 0 {
		return nil, &Error{Reason: ReasonNoPool, Namespace: namespace,
			Detail: fmt.Sprintf("no IP pool for namespace %q: the pod and its namespace name none (annotation %s) and no default pool allows it", namespace, v1alpha1.AnnotationIPPools)}
	}
	slices.SortFunc(out, func(x, y *v1alpha1.IPPool) int {
		if x.Name < y.Name {
			return -1
		}
		return 1
	})
	return out, nil
}

// PoolsForNode filters pools to those reaching node; it fails with ReasonNodeNotReached (naming
// the pools and the node) when none does.
func PoolsForNode(pools []*v1alpha1.IPPool, node *corev1.Node) ([]*v1alpha1.IPPool, error) {
	var out []*v1alpha1.IPPool
	names := make([]string, 0, len(pools))
	for _, p := range pools {
		names = append(names, p.Name)
		ok, err := PoolReachesNode(p, node)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	if len(out) == 0 && node != nil {
		return nil, &Error{Reason: ReasonNodeNotReached, Pool: fmt.Sprint(names),
			Detail: fmt.Sprintf("no candidate IP pool %v reaches node %s", names, node.Name)}
	}
	return out, nil
}
