package netd

import (
	"net/netip"

	"github.com/ecloud-io/ecloud/cni/locations"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// remoteHop is where the flow of a pod IP on another host sends its packets: that host's
// IPv4 tunnel endpoint, with the IP's VLAN as the key (the VLAN is in the flow's match too).
type remoteHop struct {
	tunnel [4]byte
	vlan   uint16
}

func (h remoteHop) flow(ip netip.Addr, tunnelOFPort int) ovs.Flow {
	return remoteFlow(ip, int(h.vlan), netip.AddrFrom4(h.tunnel), tunnelOFPort)
}

// remoteFlows is what netd has programmed for other hosts' IPs: one flow per IP in hops, out
// of the tunnel port tunnelOFPort. It stands for the flows (≈ 10 bytes a flow instead of
// their text), so a sync renders only the flows that change.
type remoteFlows struct {
	tunnelOFPort int
	hops         map[netip.Addr]remoteHop
}

// hopOf is the hop of ip at location l (ok false: ip gets no remote flow).
func (d *Daemon) hopOf(ip netip.Addr, l locations.Location, local map[netip.Addr]bool, tunnelOFPort int) (remoteHop, bool) {
	if l.Node == d.cfg.NodeName || !tunnelled(l.TunnelIP, local[ip], tunnelOFPort) {
		return remoteHop{}, false
	}
	return remoteHop{tunnel: l.TunnelIP.As4(), vlan: uint16(l.VLAN)}, true
}

// allHops is the hop of every remote IP in the location table.
func (d *Daemon) allHops(local map[netip.Addr]bool, tunnelOFPort int) map[netip.Addr]remoteHop {
	hops := make(map[netip.Addr]remoteHop, d.locs.Len())
	d.locs.Range(func(ip netip.Addr, l locations.Location) bool {
		if h, ok := d.hopOf(ip, l, local, tunnelOFPort); ok {
			hops[ip] = h
		}
		return true
	})
	return hops
}

// maxMarkedIPs bounds the IPs marked between two syncs: past it (the follower's first list,
// a relist after a long disconnection) the next sync compares the whole location table
// instead, which costs no more than looking the IPs up one by one.
var maxMarkedIPs = 16384

// markChanged records IPs whose location changed (and whether the set of nodes changed), for
// the next flow sync to look at.
func (d *Daemon) markChanged(ips []netip.Addr, nodes bool) {
	d.dirtyMu.Lock()
	defer d.dirtyMu.Unlock()
	d.nodesChanged = d.nodesChanged || nodes
	if len(ips) == 0 || d.dirtyAll {
		return
	}
	if len(d.dirty)+len(ips) > maxMarkedIPs {
		d.dirty, d.dirtyAll = nil, true
		return
	}
	if d.dirty == nil {
		d.dirty = make(map[netip.Addr]struct{}, len(ips))
	}
	for _, ip := range ips {
		d.dirty[ip] = struct{}{}
	}
}

// marks is what changed since the last sync took the marks: IPs (all: too many to list, look
// at every IP) and whether the set of nodes changed.
type marks struct {
	ips   map[netip.Addr]struct{}
	all   bool
	nodes bool
}

// takeChanged returns the marks made since the last call. A change is marked after the
// location table applied it: what a sync reads from the table after taking the marks covers
// every change marked before, and the rest stay marked for the next sync.
func (d *Daemon) takeChanged() marks {
	d.dirtyMu.Lock()
	defer d.dirtyMu.Unlock()
	m := marks{ips: d.dirty, all: d.dirtyAll, nodes: d.nodesChanged}
	d.dirty, d.dirtyAll, d.nodesChanged = nil, false, false
	return m
}

// remoteChange is a remote IP's hop after a sync (ok false: no flow).
type remoteChange struct {
	ip  netip.Addr
	hop remoteHop
	ok  bool
}

// diffChanged lists the flows to add and delete for the IPs in changed, and the changes to
// make to r once they are programmed.
func (d *Daemon) diffChanged(r *remoteFlows, changed map[netip.Addr]struct{}, local map[netip.Addr]bool) (add, del []ovs.Flow, next []remoteChange) {
	next = make([]remoteChange, 0, len(changed))
	for ip := range changed {
		var h remoteHop
		ok := false
		if l, found := d.locs.Lookup(ip); found {
			h, ok = d.hopOf(ip, l, local, r.tunnelOFPort)
		}
		old, had := r.hops[ip]
		if had && (!ok || old.vlan != h.vlan) {
			del = append(del, old.flow(ip, r.tunnelOFPort))
		}
		if ok && (!had || old != h) {
			add = append(add, h.flow(ip, r.tunnelOFPort))
		}
		if had != ok || old != h {
			next = append(next, remoteChange{ip: ip, hop: h, ok: ok})
		}
	}
	return add, del, next
}

// diffAll lists the flows to add and delete to go from r to hops out of tunnelOFPort.
func diffAll(r *remoteFlows, hops map[netip.Addr]remoteHop, tunnelOFPort int) (add, del []ovs.Flow) {
	for ip, old := range r.hops {
		if h, ok := hops[ip]; !ok || h.vlan != old.vlan {
			del = append(del, old.flow(ip, r.tunnelOFPort))
		}
	}
	for ip, h := range hops {
		if old, ok := r.hops[ip]; !ok || old != h || r.tunnelOFPort != tunnelOFPort {
			add = append(add, h.flow(ip, tunnelOFPort))
		}
	}
	return add, del
}
