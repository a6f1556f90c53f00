package netd

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// Cookie marks every flow netd owns on the bridge.
const Cookie uint64 = 0xec10d

// OpenFlow tables of the pipeline.
const (
	tableClassify = 0  // where did the packet come from: pod (anti-spoofing), gateway, tunnel
	tableARP      = 10 // ARP answered locally: every overlay IP has MAC 0a:58:<IPv4>
	tableForward  = 20 // IP forwarding by destination: local port, tunnel, gateway, drop
)

// Registers: reg0 is the packet's network (the pool VLAN; for the host, the VLAN of the pool
// the destination belongs to, else gatewayNet), reg1 its origin. fromTunnel is the only origin
// with bit 2 set: remote flows match reg1=0/4, so a packet that came through the tunnel is never
// sent back into it.
const (
	gatewayNet = 4096
	fromPod    = 1
	fromHost   = 2
	fromTunnel = 4
)

// notFromTunnel matches the origins that may be tunnelled (pod and host).
const notFromTunnel = "reg1=0/4"

// PoolNet is a pool as the datapath sees it.
type PoolNet struct {
	Name string
	CIDR netip.Prefix
	VLAN int
}

// LocalIP is a pod IP attached to a port of this host.
type LocalIP struct {
	IP     netip.Addr
	VLAN   int
	OFPort int
}

// RemoteIP is a pod IP bound on another host, reached through the tunnel port with that
// host's tunnel endpoint as the destination.
type RemoteIP struct {
	IP       netip.Addr
	VLAN     int
	TunnelIP netip.Addr
}

// FlowState is everything the flows are computed from.
type FlowState struct {
	GatewayOFPort int
	GatewayMAC    net.HardwareAddr
	// TunnelOFPort is the one flow-based tunnel port (remote_ip=flow, key=flow; 0: none).
	TunnelOFPort int
	// Peers are the other nodes' tunnel endpoints: tunnel packets from anywhere else are dropped.
	Peers  []netip.Addr
	Pools  []PoolNet
	Local  []LocalIP
	Remote []RemoteIP
}

// BuildFlows computes the bridge's complete flow table (all with Cookie) from s. Isolation:
// a pod's packets carry its pool's VLAN in reg0 (and in the tunnel key across hosts) and only
// reach IPs of the same VLAN; other overlay destinations are dropped; everything else leaves
// through the gateway port into the host stack. The host (gateway) reaches every pod: its
// packets get the VLAN of the destination's pool, so one flow per IP serves pods and host.
// Every remote IP is one flow that sets the tunnel destination and key and outputs to the one
// tunnel port: a node joining or leaving changes flows, never ports.
func BuildFlows(s FlowState) []ovs.Flow {
	var fl []ovs.Flow
	add := func(table, prio int, match, actions string) {
		fl = append(fl, ovs.Flow{Cookie: Cookie, Table: table, Priority: prio, Match: match, Actions: actions})
	}
	setNet := func(net, origin int) string {
		return fmt.Sprintf("load:%d->NXM_NX_REG0[],load:%d->NXM_NX_REG1[]", net, origin)
	}
	// Classification. Anti-spoofing: a pod port's packets pass only with the pod's own IP and
	// the MAC the plugin gave its interface (0a:58:<IPv4>), as IPv4 or ARP; the table-miss drop
	// takes everything else (another pod's IP or MAC, IPv6, other ethertypes).
	for _, l := range s.Local {
		mac := macOf(l.IP)
		add(tableClassify, 200, fmt.Sprintf("in_port=%d,ip,dl_src=%s,nw_src=%s", l.OFPort, mac, l.IP), setNet(l.VLAN, fromPod)+fmt.Sprintf(",resubmit(,%d)", tableForward))
		add(tableClassify, 200, fmt.Sprintf("in_port=%d,arp,dl_src=%s,arp_spa=%s,arp_sha=%s", l.OFPort, mac, l.IP, mac), setNet(l.VLAN, fromPod)+fmt.Sprintf(",resubmit(,%d)", tableARP))
	}
	if s.GatewayOFPort > 0 {
		seen := map[netip.Prefix]bool{}
		for _, p := range s.Pools {
			if c := p.CIDR.Masked(); c.Addr().Is4() && !seen[c] {
				seen[c] = true
				// Longer prefixes first, should pools nest.
				add(tableClassify, 300+c.Bits(), fmt.Sprintf("in_port=%d,ip,nw_dst=%s", s.GatewayOFPort, c), setNet(p.VLAN, fromHost)+fmt.Sprintf(",resubmit(,%d)", tableForward))
			}
		}
		add(tableClassify, 200, fmt.Sprintf("in_port=%d,ip", s.GatewayOFPort), setNet(gatewayNet, fromHost)+fmt.Sprintf(",resubmit(,%d)", tableForward))
		add(tableClassify, 200, fmt.Sprintf("in_port=%d,arp", s.GatewayOFPort), setNet(gatewayNet, fromHost)+fmt.Sprintf(",resubmit(,%d)", tableARP))
	}
	fl = append(fl, peerFlows(s.Peers, s.TunnelOFPort)...)
	add(tableClassify, 0, "", "drop")

	// ARP responder: the reply's MAC is 0a:58 followed by the asked IPv4 address.
	seen := map[string]bool{}
	for _, p := range s.Pools {
		if !p.CIDR.Addr().Is4() {
			continue
		}
		for _, net := range []int{p.VLAN, gatewayNet} {
			m := fmt.Sprintf("arp,arp_op=1,reg0=%d,arp_tpa=%s", net, p.CIDR.Masked())
			if !seen[m] {
				seen[m] = true
				add(tableARP, 100, m, arpResponder)
			}
		}
	}
	add(tableARP, 0, "", "drop")

	// Forwarding.
	local := make(map[netip.Addr]bool, len(s.Local))
	for _, l := range s.Local {
		local[l.IP] = true
		add(tableForward, 200, fmt.Sprintf("ip,reg0=%d,nw_dst=%s", l.VLAN, l.IP), fmt.Sprintf("mod_dl_dst:%s,output:%d", macOf(l.IP), l.OFPort))
	}
	for _, r := range s.Remote {
		if tunnelled(r.TunnelIP, local[r.IP], s.TunnelOFPort) {
			fl = append(fl, remoteFlow(r.IP, r.VLAN, r.TunnelIP, s.TunnelOFPort))
		}
	}
	seen = map[string]bool{}
	for _, p := range s.Pools {
		m := fmt.Sprintf("ip,nw_dst=%s", p.CIDR.Masked())
		if p.CIDR.Addr().Is4() && !seen[m] {
			seen[m] = true
			add(tableForward, 100, m, "drop")
		}
	}
	if s.GatewayOFPort > 0 && s.GatewayMAC != nil {
		add(tableForward, 10, fmt.Sprintf("ip,reg1=%d", fromPod), fmt.Sprintf("mod_dl_dst:%s,output:%d", s.GatewayMAC, s.GatewayOFPort))
	}
	add(tableForward, 0, "", "drop")
	return fl
}

// peerFlows admit packets from the tunnel port only from the other nodes' endpoints (IPv4),
// with the VLAN the key carries.
func peerFlows(peers []netip.Addr, tunnelOFPort int) []ovs.Flow {
	if tunnelOFPort <= 0 {
		return nil
	}
	fl := make([]ovs.Flow, 0, len(peers))
	seen := make(map[netip.Addr]bool, len(peers))
	match := "in_port=" + strconv.Itoa(tunnelOFPort) + ",ip,tun_src="
	actions := fmt.Sprintf("move:NXM_NX_TUN_ID[0..12]->NXM_NX_REG0[0..12],load:%d->NXM_NX_REG1[],resubmit(,%d)", fromTunnel, tableForward)
	for _, peer := range peers {
		if peer.Is4() && !seen[peer] {
			seen[peer] = true
			fl = append(fl, ovs.Flow{Cookie: Cookie, Table: tableClassify, Priority: 200, Match: match + peer.String(), Actions: actions})
		}
	}
	return fl
}

// tunnelled reports whether a remote IP whose node has tunnel endpoint tunnel gets a flow: not
// when the IP is also on a port of this host (the port wins over a location that has not
// caught up yet), nor without a tunnel port or an IPv4 endpoint.
func tunnelled(tunnel netip.Addr, local bool, tunnelOFPort int) bool {
	return !local && tunnelOFPort > 0 && tunnel.Is4()
}

// remoteFlow sends packets for ip, a pod IP on another host, into the tunnel port with that
// host's endpoint as the destination and the VLAN as the key.
func remoteFlow(ip netip.Addr, vlan int, tunnel netip.Addr, tunnelOFPort int) ovs.Flow {
	v := strconv.Itoa(vlan)
	return ovs.Flow{Cookie: Cookie, Table: tableForward, Priority: 200,
		Match:   "ip,reg0=" + v + "," + notFromTunnel + ",nw_dst=" + ip.String(),
		Actions: "set_field:" + tunnel.String() + "->tun_dst,set_field:" + v + "->tun_id,output:" + strconv.Itoa(tunnelOFPort)}
}

// arpResponder turns an ARP request into the reply for arp_tpa with MAC 0a:58:<arp_tpa>.
const arpResponder = "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]," +
	"load:0xa58->NXM_OF_ETH_SRC[32..47],move:NXM_OF_ARP_TPA[]->NXM_OF_ETH_SRC[0..31]," +
	"load:0x2->NXM_OF_ARP_OP[]," +
	"move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]," +
	"move:NXM_OF_ETH_SRC[]->NXM_NX_ARP_SHA[]," +
	"move:NXM_OF_ARP_TPA[]->NXM_NX_REG2[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG2[]->NXM_OF_ARP_SPA[]," +
	"IN_PORT"

func macOf(ip netip.Addr) string {
	m, err := nodeapi.MACForIP(ip)
	if err != nil {
		return "00:00:00:00:00:00"
	}
	return m.String()
}

// sortPools orders pools by name so the flow table does not churn.
func sortPools(p []PoolNet) {
	slices.SortFunc(p, func(a, b PoolNet) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
}
