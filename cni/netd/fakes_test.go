package netd

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"slices"
	"sync"

	"github.com/ecloud-io/ecloud/cni/locations"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// fakeLocations is a location table in memory.
type fakeLocations struct {
	mu    sync.RWMutex
	table map[netip.Addr]locations.Location
}

func newFakeLocations() *fakeLocations {
	return &fakeLocations{table: map[netip.Addr]locations.Location{}}
}

func (f *fakeLocations) set(ip netip.Addr, l locations.Location) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table[ip] = l
}

func (f *fakeLocations) remove(ip netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.table, ip)
}

func (f *fakeLocations) Lookup(ip netip.Addr) (locations.Location, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	l, ok := f.table[ip]
	return l, ok
}

func (f *fakeLocations) Range(fn func(netip.Addr, locations.Location) bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for ip, l := range f.table {
		if !fn(ip, l) {
			return
		}
	}
}

func (f *fakeLocations) Nodes() []locations.NodeEndpoint {
	f.mu.RLock()
	defer f.mu.RUnlock()
	seen := map[string]netip.Addr{}
	for _, l := range f.table {
		seen[l.Node] = l.TunnelIP
	}
	out := make([]locations.NodeEndpoint, 0, len(seen))
	for n, t := range seen {
		out = append(out, locations.NodeEndpoint{Node: n, TunnelIP: t})
	}
	slices.SortFunc(out, func(a, b locations.NodeEndpoint) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	return out
}

func (f *fakeLocations) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.table)
}

// flowSwitch is an ovs.Switch that keeps the flows of one bridge (or, with discard, only
// renders them as ovs-ofctl would read them) and counts the flow calls.
type flowSwitch struct {
	ovs.Switch
	discard bool

	mu              sync.Mutex
	flows           map[string]ovs.Flow
	replaces, apply int
	added, deleted  int
	// fail, when set, is the error the next flow call returns.
	fail error
	// during, when set, runs inside the next flow call (a change arriving mid-sync).
	during func()
}

func newFlowSwitch() *flowSwitch { return &flowSwitch{flows: map[string]ovs.Flow{}} }

func (s *flowSwitch) hook() error {
	if f := s.during; f != nil {
		s.during = nil
		f()
	}
	if err := s.fail; err != nil {
		s.fail = nil
		return err
	}
	return nil
}

func (s *flowSwitch) ApplyFlows(_ context.Context, _ string, add, del []ovs.Flow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.hook(); err != nil {
		return err
	}
	s.apply++
	s.added += len(add)
	s.deleted += len(del)
	if s.discard {
		for _, f := range append(slices.Clip(del), add...) {
			_, _ = io.WriteString(io.Discard, f.String())
		}
		return nil
	}
	for _, f := range del {
		if _, ok := s.flows[f.Key()]; !ok {
			return fmt.Errorf("delete of a flow that is not there: %s", f.Key())
		}
		delete(s.flows, f.Key())
	}
	for _, f := range add {
		s.flows[f.Key()] = f
	}
	return nil
}

// table is the bridge's flows in ovs-ofctl syntax.
func (s *flowSwitch) table() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.flows))
	for _, f := range s.flows {
		out[f.String()] = true
	}
	return out
}

func (s *flowSwitch) ReplaceFlows(_ context.Context, _ string, cookie uint64, n int, flows iter.Seq[ovs.Flow]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.hook(); err != nil {
		return err
	}
	s.replaces++
	if s.discard {
		var b []byte
		for f := range flows {
			b = f.AppendTo(b[:0])
		}
		return nil
	}
	s.flows = make(map[string]ovs.Flow, n)
	for f := range flows {
		f.Cookie = cookie
		s.flows[f.Key()] = f
	}
	return nil
}
