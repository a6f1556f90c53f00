package netd

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/cni/locations"
)

// wantTable is the flow table BuildFlows computes from d's state with every remote IP of
// locs: what the bridge must hold after any sync.
func wantTable(d *Daemon, locs *fakeLocations) map[string]bool {
	st := d.flowState(*d.view)
	st.Peers = d.peers()
	locs.Range(func(ip netip.Addr, l locations.Location) bool {
		if l.Node != d.cfg.NodeName {
			st.Remote = append(st.Remote, RemoteIP{IP: ip, VLAN: l.VLAN, TunnelIP: l.TunnelIP})
		}
		return true
	})
	return flowSet(BuildFlows(st))
}

func diffTables(got, want map[string]bool) (missing, extra []string) {
	for f := range want {
		if !got[f] {
			missing = append(missing, f)
		}
	}
	for f := range got {
		if !want[f] {
			extra = append(extra, f)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

// TestIncrementalFlowSync: after a light sync the bridge holds exactly the flows BuildFlows
// computes from the whole state, and the sync sent only the flows of the IPs that changed.
func TestIncrementalFlowSync(t *testing.T) {
	c := scaleCluster{nodes: 4, ips: 40} // node-0 is this node
	ip := func(i int) netip.Addr { return c.ip(i) }
	remote := ip(1)                // on node-1
	const localName = "ecni-local" // a local pod port
	setLocal := func(d *Daemon, a netip.Addr) {
		d.attachMu.Lock()
		defer d.attachMu.Unlock()
		if !a.IsValid() {
			delete(d.listed, localName)
			return
		}
		if d.listed == nil {
			d.listed = map[string]LocalIP{}
		}
		d.listed[localName] = LocalIP{IP: a, VLAN: 101, OFPort: 9}
	}
	errOVS := errors.New("ovs-ofctl failed")
	type step struct {
		name string
		// change changes the state (the location table through locs.set/remove and
		// d.markChanged, as the follower and locationChanged do).
		change func(t *testing.T, d *Daemon, locs *fakeLocations, sw *flowSwitch)
		full   bool // a full sync (pools or this node changed, or the resync period)
		// What the sync sends: flows added and deleted, replaces of the whole table; wantErr
		// is the sync's error.
		added, deleted, replaces int
		wantErr                  error
		// stale: the bridge is not yet expected to match the state (a change arrived during
		// the sync and is the next sync's).
		stale bool
	}
	move := func(i, node int) func(*testing.T, *Daemon, *fakeLocations, *flowSwitch) {
		return func(_ *testing.T, d *Daemon, locs *fakeLocations, _ *flowSwitch) {
			locs.set(ip(i), c.location(i, node))
			d.markChanged([]netip.Addr{ip(i)}, false)
		}
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"an IP moves to another node", []step{{name: "move", change: move(1, 2), added: 1}}},
		{"an IP changes VLAN", []step{{name: "vlan", change: func(_ *testing.T, d *Daemon, locs *fakeLocations, _ *flowSwitch) {
			l := c.location(1, 1)
			l.VLAN = 103
			locs.set(remote, l)
			d.markChanged([]netip.Addr{remote}, false)
		}, added: 1, deleted: 1}}},
		{"an IP is deleted", []step{{name: "delete", change: func(_ *testing.T, d *Daemon, locs *fakeLocations, _ *flowSwitch) {
			locs.remove(remote)
			d.markChanged([]netip.Addr{remote}, false)
		}, deleted: 1}}},
		{"a new IP", []step{{name: "new", change: move(1000, 3), added: 1}}},
		{"an IP moves to this node", []step{{name: "here", change: move(1, 0), deleted: 1}}},
		{"a change that moves nothing", []step{{name: "same", change: move(1, 1)}}},
		{"an IP of this node moves away and back", []step{
			{name: "away", change: move(4, 3), added: 1},
			{name: "back", change: move(4, 0), deleted: 1},
		}},
		{"a remote IP becomes local and then remote again", []step{
			// The local port's two classification flows and its forwarding flow come; the
			// remote flow goes.
			{name: "attach", change: func(_ *testing.T, d *Daemon, _ *fakeLocations, _ *flowSwitch) { setLocal(d, remote) }, added: 3, deleted: 1},
			{name: "detach", change: func(_ *testing.T, d *Daemon, _ *fakeLocations, _ *flowSwitch) { setLocal(d, netip.Addr{}) }, added: 1, deleted: 3},
		}},
		{"a node's first IP adds its tunnel peer", []step{{name: "join", change: func(_ *testing.T, d *Daemon, locs *fakeLocations, _ *flowSwitch) {
			l := c.location(1000, 7)
			locs.set(ip(1000), l)
			d.markChanged([]netip.Addr{ip(1000)}, true)
		}, added: 2}}},
		{"a node's last IP removes its tunnel peer", []step{{name: "leave", change: func(_ *testing.T, d *Daemon, locs *fakeLocations, _ *flowSwitch) {
			var gone []netip.Addr
			for i := range c.ips {
				if i%c.nodes == 3 {
					locs.remove(ip(i))
					gone = append(gone, ip(i))
				}
			}
			d.markChanged(gone, true)
		}, deleted: 11}}},
		{"a change arriving during a sync is the next sync's", []step{
			{name: "during", change: func(_ *testing.T, d *Daemon, locs *fakeLocations, sw *flowSwitch) {
				move(1, 2)(nil, d, locs, sw)
				sw.during = func() { move(5, 2)(nil, d, locs, sw) }
			}, added: 1, stale: true},
			{name: "next", added: 1},
		}},
		{"a change arriving during a full replace is the next sync's", []step{
			{name: "replace", change: func(_ *testing.T, d *Daemon, locs *fakeLocations, sw *flowSwitch) {
				d.remote = nil // as after an error
				sw.during = func() { move(5, 2)(nil, d, locs, sw) }
			}, replaces: 1, stale: true},
			{name: "next", added: 1},
		}},
		{"more changes than maxMarkedIPs: the sync compares every IP", []step{{name: "many", change: func(t *testing.T, d *Daemon, locs *fakeLocations, _ *flowSwitch) {
			var moved []netip.Addr
			for i := 1; i < c.ips; i += 4 { // node-1's IPs go to node-2
				locs.set(ip(i), c.location(i, 2))
				moved = append(moved, ip(i))
			}
			locs.set(ip(2), c.location(2, 3)) // not marked: found by the whole comparison
			old := maxMarkedIPs
			maxMarkedIPs = 4
			t.Cleanup(func() { maxMarkedIPs = old })
			d.markChanged(moved, true) // node-1 has no IP left
		}, added: 11, deleted: 1}}},
		{"a change nobody marked is found by the replace of the flow reconcile period, not by the full syncs before it", []step{
			{name: "unmarked", change: func(_ *testing.T, _ *Daemon, locs *fakeLocations, _ *flowSwitch) {
				locs.set(ip(1), c.location(1, 2))
			}, stale: true},
			{name: "full", full: true, stale: true},
			{name: "past", full: true, change: func(_ *testing.T, d *Daemon, _ *fakeLocations, _ *flowSwitch) {
				d.lastFullSync = time.Now().Add(-d.cfg.FlowReconcilePeriod)
			}, replaces: 1},
		}},
		{"a full sync replaces every flow once the flow reconcile period has passed, not before", []step{
			{name: "within", full: true},
			{name: "past", full: true, change: func(_ *testing.T, d *Daemon, _ *fakeLocations, _ *flowSwitch) {
				d.lastFullSync = time.Now().Add(-d.cfg.FlowReconcilePeriod)
			}, replaces: 1},
		}},
		{"an error makes the next sync replace every flow", []step{
			{name: "error", change: func(_ *testing.T, d *Daemon, locs *fakeLocations, sw *flowSwitch) {
				move(1, 2)(nil, d, locs, sw)
				sw.fail = errOVS
			}, wantErr: errOVS, stale: true},
			{name: "after", change: func(t *testing.T, d *Daemon, _ *fakeLocations, _ *flowSwitch) {
				if d.view != nil || d.remote != nil {
					t.Errorf("after a failed sync: view %v, remote record kept", d.view)
				}
				d.view = &datapathView{gatewayOFPort: 1, tunnelOFPort: 2} // what the full sync lists
			}, replaces: 1},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sw := newFlowSwitch()
			locs := scaleLocations(c)
			d := scaleDaemon(t, c, locs, sw)
			if missing, extra := diffTables(sw.table(), wantTable(d, locs)); len(missing)+len(extra) > 0 {
				t.Fatalf("first sync: missing %v, extra %v", missing, extra)
			}
			for _, s := range tt.steps {
				if s.change != nil {
					s.change(t, d, locs, sw)
				}
				sw.added, sw.deleted, sw.replaces = 0, 0, 0
				var err error
				if s.full {
					err = d.programFlows(context.Background(), d.flowState(*d.view), true)
				} else {
					err = d.syncDatapath(context.Background(), false)
				}
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("%s: sync error %v, want %v", s.name, err, s.wantErr)
				}
				if sw.added != s.added || sw.deleted != s.deleted || sw.replaces != s.replaces {
					t.Errorf("%s: sync added %d, deleted %d flows and replaced %d times; want %d, %d, %d",
						s.name, sw.added, sw.deleted, sw.replaces, s.added, s.deleted, s.replaces)
				}
				if s.stale || d.view == nil {
					continue
				}
				if missing, extra := diffTables(sw.table(), wantTable(d, locs)); len(missing)+len(extra) > 0 {
					t.Errorf("%s: bridge misses %v and has extra %v", s.name, missing, extra)
				}
			}
		})
	}
}

// TestLocationChangedMarks: every changed IP is marked, this node's too (an IP that moved
// here loses its remote flow), a change of nodes is marked, and each asks for a sync.
func TestLocationChangedMarks(t *testing.T) {
	d := newRecordDaemon()
	d.cfg.NodeName = "node-0"
	a, b := netip.MustParseAddr("10.64.0.1"), netip.MustParseAddr("10.64.0.2")
	d.locationChanged(locations.Change{Node: "node-1", IPs: []netip.Addr{a}})
	d.locationChanged(locations.Change{Node: "node-0", IPs: []netip.Addr{b}})
	d.locationChanged(locations.Change{Node: "node-2"}) // an update that moved nothing
	if m := d.takeChanged(); len(m.ips) != 2 || m.nodes || m.all || d.syncer.want != 2 {
		t.Errorf("marked %+v and requested %d syncs, want both IPs, no nodes, 2", m, d.syncer.want)
	}
	d.locationChanged(locations.Change{Node: "node-3", Nodes: true})
	if m := d.takeChanged(); len(m.ips) != 0 || !m.nodes || d.syncer.want != 3 {
		t.Errorf("a node joining: marked %+v, %d syncs requested", m, d.syncer.want)
	}
	if m := d.takeChanged(); len(m.ips) != 0 || m.nodes || m.all {
		t.Errorf("marks taken twice: %+v", m)
	}
	// Past maxMarkedIPs the marks say "every IP" instead of listing them.
	many := make([]netip.Addr, maxMarkedIPs)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 64, byte(i >> 8), byte(i)})
	}
	d.locationChanged(locations.Change{Node: "node-1", IPs: many[:maxMarkedIPs-1]})
	d.locationChanged(locations.Change{Node: "node-1", IPs: many[maxMarkedIPs-2:]})
	d.locationChanged(locations.Change{Node: "node-1", IPs: []netip.Addr{a}})
	if m := d.takeChanged(); m.ips != nil || !m.all {
		t.Errorf("%d IPs marked: %d listed, all %v; want none listed, all", maxMarkedIPs+1, len(m.ips), m.all)
	}
	if m := d.takeChanged(); m.all {
		t.Error("all marked twice")
	}
}
