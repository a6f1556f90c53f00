package locations

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
)

// Name identifies the follower in logs (its reflector's name).
const Name = "ip-locations"

// Location is where one IP lives.
type Location struct {
	// Node holds the IP.
	Node string
	// TunnelIP is the node's tunnel endpoint.
	TunnelIP netip.Addr
	// VLAN is the IP's pool VLAN (the tunnel key).
	VLAN int
}

// Entry is one located IP.
type Entry struct {
	IP netip.Addr
	Location
}

// NodeEndpoint is a node with at least one slice and its tunnel endpoint.
type NodeEndpoint struct {
	Node     string
	TunnelIP netip.Addr
}

// Change is what one slice event changed in the table.
type Change struct {
	// Slice and Node are the slice's name and node.
	Slice, Node string
	// IPs are the addresses whose location changed: new, moved (node, tunnel endpoint or VLAN)
	// or gone. An update that changes no location still reports a Change, with no IPs.
	IPs []netip.Addr
	// Nodes is true when the set of node endpoints changed (a node's first or last slice, or a
	// new tunnel endpoint).
	Nodes bool
	// Written is the slice's spec.writeTime (zero for deletions and slices without one).
	Written time.Time
	// Seen is when the follower applied the change.
	Seen time.Time
}

// Options tune a Follower.
type Options struct {
	// OnChange, if set, is called after every change of the table, one at a time from the
	// follower's goroutine: keep it short (netd only requests a flow sync).
	OnChange func(Change)
}

// Follower keeps the table of IP locations from the IPLocationSlices. Lookups are safe for
// concurrent use with the updates Run applies.
type Follower struct {
	// run fills the table until ctx ends: a reflector over lw, or a relay's stream.
	run  func(ctx context.Context)
	lw   cache.ListerWatcher
	opts Options

	mu sync.RWMutex
	// table is every located IP's winning location; extra holds the others while an IP is
	// listed by more than one slice (for the moment a move takes: the newer write wins).
	table  map[netip.Addr]loc
	extra  map[netip.Addr][]loc
	slices []sliceState // by id; a free slot has an empty name
	free   []uint32
	byName map[string]uint32
	nodes  map[string]*nodeRef
	// scratch and scratch2 are apply's sets of entries, kept between calls (under mu).
	scratch, scratch2 map[entry]struct{}

	synced atomic.Bool
}

// loc is a table value: the slice that lists the IP and the IP's VLAN.
type loc struct {
	slice uint32
	vlan  uint16
}

type sliceState struct {
	name, node string
	tunnel     netip.Addr
	written    time.Time
	entries    []entry
}

type entry struct {
	ip   netip.Addr
	vlan uint16
}

type nodeRef struct {
	tunnel netip.Addr
	slices int
}

// New makes a follower of every IPLocationSlice through c.
func New(c *client.Clientset, opts Options) *Follower {
	return NewFromListerWatcher(SliceListerWatcher(c), opts)
}

// SliceListerWatcher lists and watches every IPLocationSlice through c.
func SliceListerWatcher(c *client.Clientset) cache.ListerWatcher {
	s := c.IPLocationSlices()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return s.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return s.Watch(ctx, o)
		},
	}
}

// NewFromListerWatcher makes a follower of the IPLocationSlices lw lists and watches.
func NewFromListerWatcher(lw cache.ListerWatcher, opts Options) *Follower {
	f := newFollower(opts)
	f.lw = lw
	f.run = f.reflect
	return f
}

func newFollower(opts Options) *Follower {
	return &Follower{opts: opts, table: map[netip.Addr]loc{}, extra: map[netip.Addr][]loc{},
		byName: map[string]uint32{}, nodes: map[string]*nodeRef{}, scratch: map[entry]struct{}{}, scratch2: map[entry]struct{}{}}
}

// Run follows the slices until ctx ends.
func (f *Follower) Run(ctx context.Context) { f.run(ctx) }

// reflect lists and watches the slices through the apiserver.
func (f *Follower) reflect(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName(Name)
	r := cache.NewReflectorWithOptions(f.lw, &v1alpha1.IPLocationSlice{}, store{f}, cache.ReflectorOptions{Name: Name, Logger: &logger})
	r.RunWithContext(ctx)
}

// set replaces the slice called name by st (nil: deletes it) and tells OnChange.
func (f *Follower) set(name string, st *sliceState) { f.notify(f.apply(name, st)) }

// dropExcept deletes every slice not in keep (after a complete list) and marks the table synced.
func (f *Follower) dropExcept(keep map[string]bool) {
	f.mu.RLock()
	var gone []string
	for name := range f.byName {
		if !keep[name] {
			gone = append(gone, name)
		}
	}
	f.mu.RUnlock()
	for _, name := range gone {
		f.set(name, nil)
	}
	f.synced.Store(true)
}

// HasSynced reports whether the first complete list has been applied.
func (f *Follower) HasSynced() bool { return f.synced.Load() }

// Lookup is where ip lives.
func (f *Follower) Lookup(ip netip.Addr) (Location, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.lookupLocked(ip)
}

// Len is the number of located IPs.
func (f *Follower) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.table)
}

// Range calls fn for every located IP (in no order) until fn returns false. The table is
// read-locked meanwhile: fn must not block on the follower's updates.
func (f *Follower) Range(fn func(ip netip.Addr, l Location) bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for ip, l := range f.table {
		s := &f.slices[l.slice]
		if !fn(ip, Location{Node: s.node, TunnelIP: s.tunnel, VLAN: int(l.vlan)}) {
			return
		}
	}
}

// Snapshot is every located IP, sorted by address.
func (f *Follower) Snapshot() []Entry {
	f.mu.RLock()
	out := make([]Entry, 0, len(f.table))
	f.mu.RUnlock()
	f.Range(func(ip netip.Addr, l Location) bool {
		out = append(out, Entry{IP: ip, Location: l})
		return true
	})
	slices.SortFunc(out, func(a, b Entry) int { return a.IP.Compare(b.IP) })
	return out
}

// Nodes is every node with a slice and its tunnel endpoint, sorted by name.
func (f *Follower) Nodes() []NodeEndpoint {
	f.mu.RLock()
	out := make([]NodeEndpoint, 0, len(f.nodes))
	for n, r := range f.nodes {
		out = append(out, NodeEndpoint{Node: n, TunnelIP: r.tunnel})
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b NodeEndpoint) int {
		switch {
		case a.Node < b.Node:
			return -1
		case a.Node > b.Node:
			return 1
		}
		return 0
	})
	return out
}

func (f *Follower) lookupLocked(ip netip.Addr) (Location, bool) {
	l, ok := f.table[ip]
	if !ok {
		return Location{}, false
	}
	s := &f.slices[l.slice]
	return Location{Node: s.node, TunnelIP: s.tunnel, VLAN: int(l.vlan)}, true
}

// parse turns a slice into its compact state; addresses that do not parse are skipped (the
// CRD's validation keeps them out).
func parse(s *v1alpha1.IPLocationSlice) sliceState {
	st := sliceState{name: s.Name, node: s.Spec.Node}
	st.tunnel, _ = netip.ParseAddr(s.Spec.TunnelIP)
	if s.Spec.WriteTime != nil {
		st.written = s.Spec.WriteTime.Time
	}
	st.entries = make([]entry, 0, s.Spec.Len())
	for _, nw := range s.Spec.Networks {
		for _, raw := range nw.IPs {
			if ip, err := netip.ParseAddr(raw); err == nil {
				st.entries = append(st.entries, entry{ip: ip, vlan: uint16(nw.VLAN)})
			}
		}
	}
	return st
}

// apply replaces the slice called name by next (nil: deletes it) and says what changed.
func (f *Follower) apply(name string, next *sliceState) (Change, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, exists := f.byName[name]
	if !exists && next == nil {
		return Change{}, false
	}
	ch := Change{Slice: name, Seen: time.Now()}
	var touched []netip.Addr
	var before []Location
	oldNode := ""
	// kept are the entries an update leaves as they are: listed before and after with the same
	// VLAN, on the same node and tunnel endpoint, by no other slice. Their table values stay
	// (the slice keeps its id), so an update costs what it changes, not the slice's size.
	kept := f.scratch
	clear(kept)
	note := func(es []entry) {
		for _, e := range es {
			if _, ok := kept[e]; ok {
				continue
			}
			touched = append(touched, e.ip)
			l, _ := f.lookupLocked(e.ip)
			before = append(before, l)
		}
	}
	if exists {
		old := &f.slices[id]
		ch.Node, oldNode = old.node, old.node
		if next != nil && next.node == old.node && next.tunnel == old.tunnel {
			for _, e := range old.entries {
				if len(f.extra[e.ip]) == 0 {
					kept[e] = struct{}{}
				}
			}
			listed := f.scratch2
			clear(listed)
			for _, e := range next.entries {
				listed[e] = struct{}{}
			}
			for e := range kept {
				if _, ok := listed[e]; !ok {
					delete(kept, e)
				}
			}
		}
		note(old.entries)
		if next != nil {
			note(next.entries)
		}
		for _, e := range old.entries {
			if _, ok := kept[e]; !ok {
				f.removeLocked(e.ip, id)
			}
		}
		ch.Nodes = f.unrefNodeLocked(old.node, next)
	} else {
		note(next.entries)
		if n := len(f.free); n > 0 {
			id, f.free = f.free[n-1], f.free[:n-1]
		} else {
			id = uint32(len(f.slices))
			f.slices = append(f.slices, sliceState{})
		}
		f.byName[name] = id
	}
	if next == nil {
		f.slices[id] = sliceState{}
		f.free = append(f.free, id)
		delete(f.byName, name)
	} else {
		ch.Node, ch.Written = next.node, next.written
		f.slices[id] = *next
		for _, e := range next.entries {
			if _, ok := kept[e]; !ok {
				f.addLocked(e.ip, loc{slice: id, vlan: e.vlan})
			}
		}
		ch.Nodes = f.refNodeLocked(next, exists && oldNode == next.node) || ch.Nodes
	}
	for i, ip := range touched {
		if l, _ := f.lookupLocked(ip); l != before[i] && !slices.Contains(ch.IPs, ip) {
			ch.IPs = append(ch.IPs, ip)
		}
	}
	return ch, true
}

// unrefNodeLocked drops a slice's reference to its node before it is replaced by next (nil:
// deleted); it reports whether the node endpoint went away.
func (f *Follower) unrefNodeLocked(node string, next *sliceState) bool {
	if next != nil && next.node == node {
		return false // refNodeLocked updates the same reference
	}
	r := f.nodes[node]
	if r == nil {
		return false
	}
	if r.slices--; r.slices <= 0 {
		delete(f.nodes, node)
		return true
	}
	return false
}

// refNodeLocked adds (or, for a slice that kept its node, refreshes) a slice's node reference;
// it reports whether the node's endpoint is new or moved.
func (f *Follower) refNodeLocked(s *sliceState, updated bool) bool {
	r := f.nodes[s.node]
	if r == nil {
		f.nodes[s.node] = &nodeRef{tunnel: s.tunnel, slices: 1}
		return true
	}
	if !updated {
		r.slices++
	}
	if r.tunnel != s.tunnel {
		r.tunnel = s.tunnel
		return true
	}
	return false
}

// newer reports whether a's slice wins over b's for an IP both list: the later write, then the
// greater name.
func (f *Follower) newer(a, b loc) bool {
	sa, sb := &f.slices[a.slice], &f.slices[b.slice]
	if !sa.written.Equal(sb.written) {
		return sa.written.After(sb.written)
	}
	return sa.name > sb.name
}

func (f *Follower) addLocked(ip netip.Addr, l loc) {
	cur, ok := f.table[ip]
	switch {
	case !ok || cur.slice == l.slice:
		f.table[ip] = l
	case f.newer(l, cur):
		f.extra[ip] = append(f.extra[ip], cur)
		f.table[ip] = l
	default:
		f.extra[ip] = append(f.extra[ip], l)
	}
}

func (f *Follower) removeLocked(ip netip.Addr, id uint32) {
	others := f.extra[ip]
	if cur, ok := f.table[ip]; ok && cur.slice == id {
		if len(others) == 0 {
			delete(f.table, ip)
			return
		}
		best := 0
		for i := range others {
			if f.newer(others[i], others[best]) {
				best = i
			}
		}
		f.table[ip] = others[best]
		others = slices.Delete(others, best, best+1)
	} else {
		others = slices.DeleteFunc(others, func(l loc) bool { return l.slice == id })
	}
	if len(others) == 0 {
		delete(f.extra, ip)
	} else {
		f.extra[ip] = others
	}
}

func (f *Follower) notify(ch Change, ok bool) {
	if ok && f.opts.OnChange != nil {
		f.opts.OnChange(ch)
	}
}

// store is the follower as its reflector's store: objects are applied and not kept.
type store struct{ f *Follower }

var _ cache.ReflectorStore = store{}

func sliceOf(obj any) (*v1alpha1.IPLocationSlice, error) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*v1alpha1.IPLocationSlice)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected object %T", Name, obj)
	}
	return s, nil
}

func (s store) Add(obj any) error { return s.Update(obj) }

func (s store) Update(obj any) error {
	sl, err := sliceOf(obj)
	if err != nil {
		return err
	}
	st := parse(sl)
	s.f.set(sl.Name, &st)
	return nil
}

func (s store) Delete(obj any) error {
	sl, err := sliceOf(obj)
	if err != nil {
		return err
	}
	s.f.set(sl.Name, nil)
	return nil
}

// Replace applies a complete list: slices missing from it are deleted.
func (s store) Replace(list []any, _ string) error {
	seen := make(map[string]bool, len(list))
	for _, obj := range list {
		sl, err := sliceOf(obj)
		if err != nil {
			return err
		}
		seen[sl.Name] = true
		st := parse(sl)
		s.f.set(sl.Name, &st)
	}
	s.f.dropExcept(seen)
	return nil
}

func (s store) Resync() error { return nil }

// SliceCount is how many slices the follower holds.
func (f *Follower) SliceCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.byName)
}
