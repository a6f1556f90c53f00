package netd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
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
	extNode      = "ecloud-node"

	rolePod     = "pod"
	roleTunnel  = "tunnel"
	roleGateway = "gateway"
)

// gatewayMAC is the gateway port's MAC: pods' off-subnet traffic is rewritten to it.
const gatewayMAC = "0a:58:ff:00:00:01"

// tunnelPortName is the tunnel port towards node: stable, 11 characters.
func tunnelPortName(node string) string {
	sum := sha256.Sum256([]byte(node))
	return "ect" + hex.EncodeToString(sum[:])[:8]
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
	tunnelPorts   map[string]int // node → OpenFlow port
}

// syncDatapath brings the datapath in line with the cluster state. A full sync lists the
// bridge's ports from OVS, repairs the gateway, reconciles tunnel ports, removes stale pod
// ports, then programs flows and host routes: it runs at start, every resync period and when
// nodes, pools or GC change what is there. A flow-only sync (CNI ADD/DEL, claims of other
// nodes) computes the flows from what the last full sync saw plus the attachments made since,
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
	if err := d.programFlows(ctx, BuildFlows(d.flowState(*d.view))); err != nil {
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
	if err := d.programFlows(ctx, BuildFlows(st)); err != nil {
		return err
	}
	d.view = &view
	defer d.observePhase("sync", "routes", "", time.Now())
	return d.syncRoutes(st.Pools)
}

// listPorts lists the bridge's ports (repairing the gateway), reconciles tunnel and stale
// pod ports and records the live pod ports: between beginListing and this, ports deleted
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

// syncPorts reconciles the tunnel ports with the nodes and removes stale pod ports; it returns
// the view flows are computed from, the live pod ports by name and the OpenFlow numbers in use.
func (d *Daemon) syncPorts(ctx context.Context, ports []ovs.Port) (view datapathView, listed map[string]LocalIP, used map[int]bool, err error) {
	logger := klog.FromContext(ctx)
	var gw *ovs.Port
	tunnels := map[string]ovs.Port{}
	var pods []ovs.Port
	for _, p := range ports {
		switch p.ExternalIDs[extRole] {
		case roleGateway:
			gw = &p
		case roleTunnel:
			tunnels[p.ExternalIDs[extNode]] = p
		case rolePod:
			pods = append(pods, p)
		}
	}
	if gw == nil || gw.OFPort <= 0 {
		return view, nil, nil, fmt.Errorf("gateway port %s is missing from %s after re-creating it", d.cfg.GatewayPort, d.cfg.Bridge)
	}
	view = datapathView{gatewayOFPort: gw.OFPort, tunnelPorts: map[string]int{}}

	want := d.remoteHosts()
	for node, ip := range want {
		have, ok := tunnels[node]
		if ok && have.OFPort > 0 && have.Type == string(d.cfg.TunnelType) && have.Options["remote_ip"] == ip.String() && have.Name == tunnelPortName(node) {
			view.tunnelPorts[node] = have.OFPort
			continue
		}
		n, err := d.sw.AddPort(ctx, d.cfg.Bridge, ovs.Port{
			Name: tunnelPortName(node), Type: string(d.cfg.TunnelType),
			Options:     map[string]string{"remote_ip": ip.String(), "key": "flow"},
			ExternalIDs: map[string]string{extRole: roleTunnel, extNode: node},
		})
		if err != nil {
			return view, nil, nil, err
		}
		logger.Info("Tunnel port ready", "node", node, "remoteIP", ip, "port", tunnelPortName(node))
		view.tunnelPorts[node] = n
	}
	for node, p := range tunnels {
		if _, ok := want[node]; !ok || p.Name != tunnelPortName(node) {
			if err := d.sw.DeletePort(ctx, d.cfg.Bridge, p.Name); err != nil {
				return view, nil, nil, err
			}
			logger.Info("Removed stale tunnel port", "node", node, "port", p.Name)
		}
	}

	used = map[int]bool{}
	for _, p := range ports {
		used[p.OFPort], used[p.OFPortRequest] = true, true
	}
	listed = map[string]LocalIP{}
	for _, p := range pods {
		l, ok := podLocal(p)
		if p.OFPort == 0 && p.OFPortRequest <= 0 || (p.OFPort < 0 && d.isAttaching(p.Name)) {
			continue // being added right now: ovs-vswitchd has not given it a number yet
		}
		if p.OFPort < 0 || !ok {
			// The veth is gone (or the row is not ours to understand): the port is stale.
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
// ports it listed plus those attached since, and the pools and claims from the informers.
func (d *Daemon) flowState(view datapathView) FlowState {
	st := FlowState{GatewayOFPort: view.gatewayOFPort, GatewayMAC: d.gwMAC, Local: d.localIPs()}
	for _, n := range view.tunnelPorts {
		st.TunnelOFPorts = append(st.TunnelOFPorts, n)
	}
	slices.Sort(st.TunnelOFPorts)
	vlans := map[string]int{}
	for _, o := range d.pools.List() {
		pool := o.(*v1alpha1.IPPool)
		pfx, err := netip.ParsePrefix(pool.Spec.CIDR)
		if err != nil {
			continue
		}
		vlans[pool.Name] = int(pool.Spec.VLAN)
		st.Pools = append(st.Pools, PoolNet{Name: pool.Name, CIDR: pfx, VLAN: int(pool.Spec.VLAN)})
	}
	sortPools(st.Pools)
	for _, o := range d.claims.List() {
		c := o.(*v1alpha1.IPClaim)
		vlan, okPool := vlans[c.Spec.Pool]
		port, okNode := view.tunnelPorts[c.Status.Node]
		ip, err := netip.ParseAddr(c.Spec.IP)
		if c.Status.Phase != v1alpha1.PhaseBound || !okPool || !okNode || err != nil {
			continue
		}
		st.Remote = append(st.Remote, RemoteIP{IP: ip, VLAN: vlan, TunnelOFPort: port})
	}
	return st
}

// remoteHosts maps every other node to its tunnel endpoint.
func (d *Daemon) remoteHosts() map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for _, o := range d.nodes.List() {
		n := o.(*corev1.Node)
		if n.Name == d.cfg.NodeName {
			continue
		}
		if ip, ok := nodeTunnelIP(n); ok {
			out[n.Name] = ip
		}
	}
	return out
}

func nodeTunnelIP(n *corev1.Node) (netip.Addr, bool) {
	if ip, ok := tunnelIP(n.Annotations[TunnelIPAnnotation]); ok {
		return ip, true
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip, ok := tunnelIP(a.Address); ok {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
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

// programFlows makes the bridge's flows the desired ones. A full reconcile (dump, diff,
// replace; stale flows from before a restart go) runs first and then every resync period;
// in between, only the difference to what netd last programmed is sent, in one atomic bundle.
func (d *Daemon) programFlows(ctx context.Context, desired []ovs.Flow) error {
	want := make(map[string]ovs.Flow, len(desired))
	for _, f := range desired {
		want[f.Key()] = f
	}
	if d.flowCache == nil || time.Since(d.lastFullSync) >= d.cfg.ResyncPeriod {
		defer d.observePhase("sync", "replace_flows", "", time.Now())
		if err := d.sw.ReplaceFlows(ctx, d.cfg.Bridge, Cookie, desired); err != nil {
			d.flowCache = nil
			return err
		}
		d.flowCache, d.lastFullSync = want, time.Now()
		return nil
	}
	add, del := diffFlows(d.flowCache, want)
	if len(add)+len(del) > 0 {
		defer d.observePhase("sync", "apply_flows", "", time.Now())
	}
	if err := d.sw.ApplyFlows(ctx, d.cfg.Bridge, add, del); err != nil {
		d.flowCache = nil // unknown state: the next sync does a full reconcile
		return err
	}
	d.flowCache = want
	return nil
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
