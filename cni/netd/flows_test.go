package netd

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/ovs"
)

func flowSet(fl []ovs.Flow) map[string]bool {
	m := map[string]bool{}
	for _, f := range fl {
		m[f.String()] = true
	}
	return m
}

func TestBuildFlows(t *testing.T) {
	gwMAC, _ := net.ParseMAC(gatewayMAC)
	nodeB, nodeC := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	st := FlowState{
		GatewayOFPort: 1, GatewayMAC: gwMAC, TunnelOFPort: 2, Peers: []netip.Addr{nodeB, nodeC},
		Pools: []PoolNet{{Name: "a", CIDR: netip.MustParsePrefix("10.61.0.0/24"), VLAN: 100}, {Name: "b", CIDR: netip.MustParsePrefix("10.62.0.0/24"), VLAN: 200}},
		Local: []LocalIP{{IP: netip.MustParseAddr("10.61.0.2"), VLAN: 100, OFPort: 3}},
		Remote: []RemoteIP{
			{IP: netip.MustParseAddr("10.61.0.3"), VLAN: 100, TunnelIP: nodeB},
			{IP: netip.MustParseAddr("10.62.0.4"), VLAN: 200, TunnelIP: nodeC},
			{IP: netip.MustParseAddr("10.61.0.2"), VLAN: 100, TunnelIP: nodeB}, // stale: the IP is local now
		},
	}
	fl := BuildFlows(st)
	got := flowSet(fl)
	want := []string{
		// anti-spoofing classification of the pod port
		"cookie=0xec10d,table=0,priority=200,in_port=3,ip,nw_src=10.61.0.2,actions=load:100->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,20)",
		"cookie=0xec10d,table=0,priority=200,in_port=3,arp,arp_spa=10.61.0.2,actions=load:100->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,10)",
		// the one tunnel port, from known peers only: the key carries the VLAN
		"cookie=0xec10d,table=0,priority=200,in_port=2,ip,tun_src=192.0.2.2,actions=move:NXM_NX_TUN_ID[0..12]->NXM_NX_REG0[0..12],load:4->NXM_NX_REG1[],resubmit(,20)",
		"cookie=0xec10d,table=0,priority=200,in_port=2,ip,tun_src=192.0.2.3,actions=move:NXM_NX_TUN_ID[0..12]->NXM_NX_REG0[0..12],load:4->NXM_NX_REG1[],resubmit(,20)",
		// the host: the destination's pool gives the network
		"cookie=0xec10d,table=0,priority=324,in_port=1,ip,nw_dst=10.61.0.0/24,actions=load:100->NXM_NX_REG0[],load:2->NXM_NX_REG1[],resubmit(,20)",
		"cookie=0xec10d,table=0,priority=324,in_port=1,ip,nw_dst=10.62.0.0/24,actions=load:200->NXM_NX_REG0[],load:2->NXM_NX_REG1[],resubmit(,20)",
		"cookie=0xec10d,table=0,priority=200,in_port=1,ip,actions=load:4096->NXM_NX_REG0[],load:2->NXM_NX_REG1[],resubmit(,20)",
		"cookie=0xec10d,table=0,priority=0,actions=drop",
		"cookie=0xec10d,table=10,priority=100,arp,arp_op=1,reg0=100,arp_tpa=10.61.0.0/24,actions=" + arpResponder,
		"cookie=0xec10d,table=10,priority=100,arp,arp_op=1,reg0=4096,arp_tpa=10.62.0.0/24,actions=" + arpResponder,
		// one flow per IP, local or remote, for pods and host alike
		"cookie=0xec10d,table=20,priority=200,ip,reg0=100,nw_dst=10.61.0.2,actions=mod_dl_dst:0a:58:0a:3d:00:02,output:3",
		"cookie=0xec10d,table=20,priority=200,ip,reg0=100,reg1=0/4,nw_dst=10.61.0.3,actions=set_field:192.0.2.2->tun_dst,set_field:100->tun_id,output:2",
		"cookie=0xec10d,table=20,priority=200,ip,reg0=200,reg1=0/4,nw_dst=10.62.0.4,actions=set_field:192.0.2.3->tun_dst,set_field:200->tun_id,output:2",
		"cookie=0xec10d,table=20,priority=100,ip,nw_dst=10.62.0.0/24,actions=drop",
		"cookie=0xec10d,table=20,priority=10,ip,reg1=1,actions=mod_dl_dst:0a:58:ff:00:00:01,output:1",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing flow %s", w)
		}
	}
	for f := range got {
		// The local port wins over a stale location pointing 10.61.0.2 at the tunnel.
		if strings.Contains(f, "nw_dst=10.61.0.2,") && strings.Contains(f, "tun_id") {
			t.Errorf("local IP routed to the tunnel: %s", f)
		}
		// Isolation: no flow sends VLAN 100 pod traffic to a VLAN 200 destination.
		if strings.Contains(f, "reg0=100") && strings.Contains(f, "10.62.") {
			t.Errorf("cross-VLAN flow: %s", f)
		}
		// Nothing that came through the tunnel goes back into it.
		if strings.Contains(f, "output:2") && !strings.Contains(f, "reg1=0/4") {
			t.Errorf("tunnel output reachable from the tunnel: %s", f)
		}
	}
	// Per-IP cost: one flow per remote IP (two per local: classification and ARP, plus one).
	perIP := 0
	for _, f := range fl {
		if strings.Contains(f.Match, "nw_dst=10.6") && !strings.Contains(f.Match, "/24") {
			perIP++
		}
	}
	if perIP != 3 {
		t.Errorf("%d per-IP forwarding flows for 1 local and 2 remote IPs, want 3", perIP)
	}
	if n := len(BuildFlows(FlowState{})); n != 3 {
		t.Errorf("empty state: %d flows, want the 3 table-miss drops", n)
	}
}

// TestBuildFlowsNodeJoin: a node joining (its first slice: a peer and its IPs) adds flows and
// changes no other flow; the state names no per-node port at all.
func TestBuildFlowsNodeJoin(t *testing.T) {
	base := FlowState{GatewayOFPort: 1, TunnelOFPort: 2, Peers: []netip.Addr{netip.MustParseAddr("192.0.2.2")},
		Pools:  []PoolNet{{Name: "a", CIDR: netip.MustParsePrefix("10.61.0.0/24"), VLAN: 100}},
		Remote: []RemoteIP{{IP: netip.MustParseAddr("10.61.0.3"), VLAN: 100, TunnelIP: netip.MustParseAddr("192.0.2.2")}}}
	joined := base
	joined.Peers = append(slices.Clone(base.Peers), netip.MustParseAddr("192.0.2.9"))
	joined.Remote = append(slices.Clone(base.Remote), RemoteIP{IP: netip.MustParseAddr("10.61.0.9"), VLAN: 100, TunnelIP: netip.MustParseAddr("192.0.2.9")})
	before, after := flowSet(BuildFlows(base)), flowSet(BuildFlows(joined))
	for f := range before {
		if !after[f] {
			t.Errorf("a node join changed or removed %s", f)
		}
	}
	var added []string
	for f := range after {
		if !before[f] {
			added = append(added, f)
		}
	}
	if len(added) != 2 {
		t.Errorf("a node join with one IP added %d flows, want 2 (its tunnel source and its IP): %v", len(added), added)
	}
}

func TestMACForIPInResponder(t *testing.T) {
	if got := macOf(netip.MustParseAddr("10.61.0.2")); got != "0a:58:0a:3d:00:02" {
		t.Errorf("macOf = %s", got)
	}
}

func TestDiffFlows(t *testing.T) {
	f := func(match, actions string) ovs.Flow {
		return ovs.Flow{Cookie: Cookie, Table: 20, Priority: 200, Match: match, Actions: actions}
	}
	index := func(fl ...ovs.Flow) map[string]ovs.Flow {
		m := map[string]ovs.Flow{}
		for _, x := range fl {
			m[x.Key()] = x
		}
		return m
	}
	have := index(f("ip,nw_dst=10.0.0.1", "output:1"), f("ip,nw_dst=10.0.0.2", "output:2"), f("ip,nw_dst=10.0.0.3", "output:3"))
	want := index(f("ip,nw_dst=10.0.0.1", "output:1"), f("ip,nw_dst=10.0.0.2", "output:9"), f("ip,nw_dst=10.0.0.4", "output:4"))
	add, del := diffFlows(have, want)
	var a, d []string
	for _, x := range add {
		a = append(a, x.Match+"→"+x.Actions)
	}
	for _, x := range del {
		d = append(d, x.Match)
	}
	slices.Sort(a)
	if !slices.Equal(a, []string{"ip,nw_dst=10.0.0.2→output:9", "ip,nw_dst=10.0.0.4→output:4"}) || !slices.Equal(d, []string{"ip,nw_dst=10.0.0.3"}) {
		t.Errorf("diffFlows: add %v del %v", a, d)
	}
	if add, del := diffFlows(want, want); len(add)+len(del) != 0 {
		t.Errorf("no change: add %v del %v", add, del)
	}
}
