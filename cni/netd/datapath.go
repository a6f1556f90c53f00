package netd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"k8s.io/klog/v2"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// external_ids keys on ecloud's ports.
const (
	extRole      = "ecloud-role"
	extContainer = "ecloud-container"
	extIfName    = "ecloud-ifname"
	extPodNS     = "ecloud-pod-namespace"
	extPodName   = "ecloud-pod-name"
	extPodUID    = "ecloud-pod-uid"
	extIP        = "ecloud-ip"
	extPool      = "ecloud-pool"
	extVLAN      = "ecloud-vlan"

	rolePod     = "pod"
	roleTunnel  = "tunnel"
	roleGateway = "gateway"
)

// gatewayMAC is the gateway port's MAC: pods' off-subnet traffic is rewritten to it.
const gatewayMAC = "0a:58:ff:00:00:01"

// tunnelPortName is the one flow-based tunnel port of an encapsulation type: tun-vxlan or
// tun-geneve.
func tunnelPortName(t ovs.TunnelType) string { return "tun-" + string(t) }

// tunnelPort is the flow-based tunnel port netd keeps on br-int: the remote endpoint and the key
// come from the flows (set_field:...->tun_dst, ->tun_id), so nodes joining or leaving never
// change a port.
func tunnelPort(t ovs.TunnelType) ovs.Port {
	return ovs.Port{Name: tunnelPortName(t), Type: string(t),
		Options:     map[string]string{"remote_ip": "flow", "key": "flow"},
		ExternalIDs: map[string]string{extRole: roleTunnel}}
}

// ensureBridge creates the bridge and the gateway port and brings the gateway up.
func (d *Daemon) ensureBridge(ctx context.Context) error {
	if err := d.sw.EnsureBridge(ctx, d.cfg.Bridge, d.cfg.Datapath); err != nil {
		return err
	}
	ports, err := d.sw.ListPorts(ctx, d.cfg.Bridge, map[string]string{extRole: roleGateway})
	if err != nil {
		return err
	}
	if len(ports) != 1 || ports[0].Name != d.cfg.GatewayPort || ports[0].OFPort <= 0 {
		if _, err := d.sw.AddPort(ctx, d.cfg.Bridge, ovs.Port{Name: d.cfg.GatewayPort, Type: "internal", MAC: gatewayMAC,
			ExternalIDs: map[string]string{extRole: roleGateway}}); err != nil {
			return err
		}
	}
	return d.gatewayUp()
}

// gatewayUp waits for the gateway's tap to appear in the host netns and sets it up.
func (d *Daemon) gatewayUp() error {
	var link netlink.Link
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if link, err = d.nl.LinkByName(d.cfg.GatewayPort); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("gateway port %s has no device in the host netns: %w", d.cfg.GatewayPort, err)
	}
	if err := d.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("set gateway %s up: %w", d.cfg.GatewayPort, err)
	}
	d.gwIndex = link.Attrs().Index
	d.gwMAC = link.Attrs().HardwareAddr
	return nil
}

// datapathView is what a full sync learned from OVS and flow-only syncs reuse (owned by the
// syncer goroutine).
type datapathView struct {
	gatewayOFPort int
	tunnelOFPort  int // the flow-based tunnel port
}

// syncDatapath brings the datapath in line with the cluster state. A full sync lists the
// bridge's ports from OVS, repairs the gateway, reconciles tunnel ports, removes stale pod
// ports, then programs flows and host routes: it runs at start, every resync period and when
// this node or pools change or GC removes ports. A flow-only sync (CNI ADD/DEL, IP locations
// of other nodes, nodes joining or leaving) computes the flows from what the last full sync saw plus the attachments made since,
// and sends only the difference: no exec but one ovs-ofctl bundle. Both remove what is stale
// (reconcile, not replay).
func (d *Daemon) syncDatapath(ctx context.Context, full bool) (err error) {
	start := time.Now()
	kind := "flows"
	if full || d.view == nil {
		kind = "full"
	}
	defer func() {
		observeSync(kind, start, err)
		d.observePhase("sync", kind, "", start)
	}()
	if kind == "full" {
		return d.fullSync(ctx)
	}
	if err := d.programFlows(ctx, d.flowState(*d.view), false); err != nil {
		d.view = nil // the next sync starts over from OVS
		return err
	}
	return nil
}

func (d *Daemon) fullSync(ctx context.Context) error {
	d.view = nil
	d.beginListing()
	view, err := d.listPorts(ctx)
	if err != nil {
		return err
	}
	st := d.flowState(view)
	if err := d.programFlows(ctx, st, true); err != nil {
		return err
	}
	d.view = &view
	defer d.observePhase("sync", "routes", "", time.Now())
	return d.syncRoutes(st.Pools)
}

// listPorts lists the bridge's ports (repairing the gateway), reconciles the tunnel port and
// stale pod ports and records the live pod ports: between beginListing and this, ports deleted
// are left out.
func (d *Daemon) listPorts(ctx context.Context) (view datapathView, err error) {
	var listed map[string]LocalIP
	var used map[int]bool
	defer func() { d.endListing(listed, used) }()
	start := time.Now()
	ports, err := d.sw.ListPorts(ctx, d.cfg.Bridge, nil)
	if err != nil {
		return view, err
	}
	if !hasGateway(ports) {
		// Someone removed the gateway (or the bridge): put them back first.
		if err := d.ensureBridge(ctx); err != nil {
			return view, err
		}
		if ports, err = d.sw.ListPorts(ctx, d.cfg.Bridge, nil); err != nil {
			return view, err
		}
	}
	d.observePhase("sync", "list_ports", "", start)
	view, listed, used, err = d.syncPorts(ctx, ports)
	return view, err
}

func hasGateway(ports []ovs.Port) bool {
	for _, p := range ports {
		if p.ExternalIDs[extRole] == roleGateway && p.OFPort > 0 {
			return true
		}
	}
	return false
}

// syncPorts makes the flow-based tunnel port the only tunnel port and removes stale pod ports;
// it returns the view flows are computed from, the live pod ports by name and the OpenFlow
// numbers in use.
func (d *Daemon) syncPorts(ctx context.Context, ports []ovs.Port) (view datapathView, listed map[string]LocalIP, used map[int]bool, err error) {
	logger := klog.FromContext(ctx)
	var gw *ovs.Port
	var tunnels, pods []ovs.Port
	for _, p := range ports {
		switch p.ExternalIDs[extRole] {
		case roleGateway:
			gw = &p
		case roleTunnel:
			tunnels = append(tunnels, p)
		case rolePod:
			pods = append(pods, p)
		}
	}
	if gw == nil || gw.OFPort <= 0 {
		return view, nil, nil, fmt.Errorf("gateway port %s is missing from %s after re-creating it", d.cfg.GatewayPort, d.cfg.Bridge)
	}
	view = datapathView{gatewayOFPort: gw.OFPort}

	want := tunnelPort(d.cfg.TunnelType)
	for _, p := range tunnels {
		if p.Name == want.Name && p.OFPort > 0 && p.Type == want.Type && p.Options["remote_ip"] == "flow" && p.Options["key"] == "flow" {
			view.tunnelOFPort = p.OFPort
			continue
		}
		// Per-node ports of older versions, the other encapsulation's port, or a broken one.
		if err := d.sw.DeletePort(ctx, d.cfg.Bridge, p.Name); err != nil {
			return view, nil, nil, err
		}
		logger.Info("Removed stale tunnel port", "port", p.Name, "type", p.Type, "remoteIP", p.Options["remote_ip"])
	}
	if view.tunnelOFPort == 0 {
		n, err := d.sw.AddPort(ctx, d.cfg.Bridge, want)
		if err != nil {
			return view, nil, nil, err
		}
		logger.Info("Tunnel port ready", "port", want.Name, "type", want.Type)
		view.tunnelOFPort = n
	}

	used = map[int]bool{}
	for _, p := range ports {
		used[p.OFPort], used[p.OFPortRequest] = true, true
	}
	// The host links are listed after the ports: a port's veth exists before the port is added,
	// so a port whose link is missing from this list lost its veth.
	links, err := d.hostLinkNames()
	if err != nil {
		return view, nil, nil, err
	}
	listed = map[string]LocalIP{}
	for _, p := range pods {
		l, ok := podLocal(p)
		attaching := d.isAttaching(p.Name)
		if p.OFPort == 0 && p.OFPortRequest <= 0 || ((p.OFPort < 0 || !links[p.Name]) && attaching) {
			continue // being added right now: ovs-vswitchd has not given it a number yet
		}
		if p.OFPort < 0 || !links[p.Name] || !ok {
			// The veth is gone (or the row is not ours to understand): the port is stale. The
			// kernel datapath reports ofport -1; the userspace datapath keeps the number of a
			// device that vanished, so the host's links are the evidence.
			if err := d.sw.DeletePort(ctx, d.cfg.Bridge, p.Name); err != nil {
				return view, nil, nil, err
			}
			d.dropPort(p.Name)
			logger.Info("Removed stale pod port", "port", p.Name, "container", p.ExternalIDs[extContainer])
			continue
		}
		listed[p.Name] = l
	}
	return view, listed, used, nil
}

// podLocal is the local IP a pod port carries; its OpenFlow number is the one OVS reports or,
// before ovs-vswitchd has numbered it, the one netd requested.
func podLocal(p ovs.Port) (LocalIP, bool) {
	ip, err1 := netip.ParseAddr(p.ExternalIDs[extIP])
	vlan, err2 := strconv.Atoi(p.ExternalIDs[extVLAN])
	n := p.OFPort
	if n == 0 {
		n = p.OFPortRequest
	}
	return LocalIP{IP: ip, VLAN: vlan, OFPort: n}, err1 == nil && err2 == nil && n > 0
}

// flowState is what the flows are computed from: the view of the last full sync, the pod
// ports it listed plus those attached since and the pools from their informer. Peers and
// Remote are left empty: programFlows takes the other nodes' endpoints and IPs from the
// location table itself.
func (d *Daemon) flowState(view datapathView) FlowState {
	st := FlowState{GatewayOFPort: view.gatewayOFPort, GatewayMAC: d.gwMAC, TunnelOFPort: view.tunnelOFPort, Local: d.localIPs()}
	var all []*v1alpha1.IPPool
	for _, o := range d.pools.List() {
		all = append(all, o.(*v1alpha1.IPPool))
	}
	overlapping := ipam.Overlapping(all)
	for _, pool := range all {
		pfx, err := netip.ParsePrefix(pool.Spec.CIDR)
		if err != nil || overlapping[pool.Name] != "" {
			continue // nothing is allocated from a pool overlapping an older one
		}
		st.Pools = append(st.Pools, PoolNet{Name: pool.Name, CIDR: pfx, VLAN: int(pool.Spec.VLAN)})
	}
	sortPools(st.Pools)
	return st
}

// peers are the other nodes' tunnel endpoints.
func (d *Daemon) peers() []netip.Addr {
	var out []netip.Addr
	for _, n := range d.locs.Nodes() {
		if n.Node != d.cfg.NodeName {
			out = append(out, n.TunnelIP)
		}
	}
	return out
}

// syncRoutes routes every pool's CIDR into the gateway port, so the host reaches pods, and
// removes routes of pools that are gone.
func (d *Daemon) syncRoutes(pools []PoolNet) error {
	want := map[string]bool{}
	for _, p := range pools {
		if !p.CIDR.Addr().Is4() {
			continue
		}
		dst := &net.IPNet{IP: p.CIDR.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.CIDR.Bits(), 32)}
		want[dst.String()] = true
		r := &netlink.Route{LinkIndex: d.gwIndex, Dst: dst, Scope: netlink.SCOPE_LINK}
		if err := d.nl.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via gateway %s: %w", dst, d.cfg.GatewayPort, err)
		}
	}
	link, err := d.nl.LinkByIndex(d.gwIndex)
	if err != nil {
		return fmt.Errorf("gateway %s: %w", d.cfg.GatewayPort, err)
	}
	routes, err := d.nl.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("routes on gateway %s: %w", d.cfg.GatewayPort, err)
	}
	for _, r := range routes {
		if r.Dst != nil && !want[r.Dst.String()] && r.Protocol != unix.RTPROT_KERNEL {
			if err := d.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("remove stale route %s: %w", r.Dst, err)
			}
		}
	}
	return nil
}

// hostLinkNames are the names of the host's network interfaces.
func (d *Daemon) hostLinkNames() (map[string]bool, error) {
	links, err := d.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	names := make(map[string]bool, len(links))
	for _, l := range links {
		names[l.Attrs().Name] = true
	}
	return names, nil
}

// deleteHostLink removes a pod's host veth (GC); one that is gone is fine.
func (d *Daemon) deleteHostLink(name string) error {
	l, err := d.nl.LinkByName(name)
	if err != nil {
		return nil
	}
	if err := d.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete host veth %s: %w", name, err)
	}
	return nil
}

// programFlows makes the bridge's flows those of st (whose Peers and Remote are left empty:
// the other nodes' endpoints and IPs come from the location table). A full reconcile (dump,
// diff, replace; stale flows from before a restart go) runs first, after an error and then
// every flow reconcile period (at a reconcile); in between, only the difference to what netd last programmed is sent,
// in one atomic bundle. The flows of pools, the gateway and local pods are built and diffed
// whole; the flows of peers (one per node) only when the set of nodes changed or at a full
// reconcile; a remote IP's flow is rendered only when it changes: a sync looks at the IPs whose
// location changed since the last sync and those that became or stopped being local. Only the
// replace compares the whole location table (at 150k IPs that costs seconds of CPU, and location
// changes would wait for it at every full reconcile).
func (d *Daemon) programFlows(ctx context.Context, st FlowState, full bool) error {
	local := make(map[netip.Addr]bool, len(st.Local))
	for _, l := range st.Local {
		local[l.IP] = true
	}
	want := indexFlows(BuildFlows(st))
	tunnelOFPort := st.TunnelOFPort
	// Marks are taken before the table is read (takeChanged).
	marked := d.takeChanged()
	changed := marked.ips
	replace := d.remote == nil || d.restFlows == nil || time.Since(d.lastFullSync) >= d.cfg.FlowReconcilePeriod
	peers := d.peerFlows
	if replace || full || marked.nodes || peers == nil {
		peers = indexFlows(peerFlows(d.peers(), tunnelOFPort))
	}
	if replace {
		defer d.observePhase("sync", "replace_flows", "", time.Now())
		d.remote, d.restFlows, d.peerFlows = nil, nil, nil
		hops := d.allHops(local, tunnelOFPort)
		all := func(yield func(ovs.Flow) bool) {
			for _, fs := range []map[string]ovs.Flow{want, peers} {
				for _, f := range fs {
					if !yield(f) {
						return
					}
				}
			}
			for ip, h := range hops {
				if !yield(h.flow(ip, tunnelOFPort)) {
					return
				}
			}
		}
		if err := d.sw.ReplaceFlows(ctx, d.cfg.Bridge, Cookie, len(want)+len(peers)+len(hops), all); err != nil {
			return err
		}
		d.remote, d.restFlows, d.peerFlows, d.localFlows, d.lastFullSync = &remoteFlows{tunnelOFPort: tunnelOFPort, hops: hops}, want, peers, local, time.Now()
		return nil
	}
	add, del := diffFlows(d.restFlows, want)
	if a, dl := diffFlows(d.peerFlows, peers); len(a)+len(dl) > 0 {
		add, del = append(add, a...), append(del, dl...)
	}
	var hops map[netip.Addr]remoteHop
	var next []remoteChange
	if marked.all || d.remote.tunnelOFPort != tunnelOFPort {
		hops = d.allHops(local, tunnelOFPort)
		a, dl := diffAll(d.remote, hops, tunnelOFPort)
		add, del = append(add, a...), append(del, dl...)
	} else {
		// An IP that became local loses its remote flow, one that stopped being local may get
		// it back.
		for ip := range d.localFlows {
			if !local[ip] {
				changed = addIP(changed, ip)
			}
		}
		for ip := range local {
			if !d.localFlows[ip] {
				changed = addIP(changed, ip)
			}
		}
		a, dl, n := d.diffChanged(d.remote, changed, local)
		add, del, next = append(add, a...), append(del, dl...), n
	}
	if len(add)+len(del) > 0 {
		defer d.observePhase("sync", "apply_flows", "", time.Now())
	}
	if err := d.sw.ApplyFlows(ctx, d.cfg.Bridge, add, del); err != nil {
		d.remote, d.restFlows, d.peerFlows = nil, nil, nil // unknown state: the next sync does a full reconcile
		return err
	}
	if hops != nil {
		d.remote = &remoteFlows{tunnelOFPort: tunnelOFPort, hops: hops}
	}
	for _, c := range next {
		if c.ok {
			d.remote.hops[c.ip] = c.hop
		} else {
			delete(d.remote.hops, c.ip)
		}
	}
	d.restFlows, d.peerFlows, d.localFlows = want, peers, local
	return nil
}

// indexFlows indexes flows by Key.
func indexFlows(flows []ovs.Flow) map[string]ovs.Flow {
	m := make(map[string]ovs.Flow, len(flows))
	for _, f := range flows {
		m[f.Key()] = f
	}
	return m
}

func addIP(set map[netip.Addr]struct{}, ip netip.Addr) map[netip.Addr]struct{} {
	if set == nil {
		set = map[netip.Addr]struct{}{}
	}
	set[ip] = struct{}{}
	return set
}

// diffFlows lists the flows to add (new, or with changed actions) and to delete.
func diffFlows(have, want map[string]ovs.Flow) (add, del []ovs.Flow) {
	for k, f := range want {
		if h, ok := have[k]; !ok || h.Actions != f.Actions || h.Cookie != f.Cookie {
			add = append(add, f)
		}
	}
	for k, f := range have {
		if _, ok := want[k]; !ok {
			del = append(del, f)
		}
	}
	return add, del
}
