package netd

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
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
	st := FlowState{
		GatewayOFPort: 1, GatewayMAC: gwMAC, TunnelOFPorts: []int{2},
		Pools:  []PoolNet{{Name: "a", CIDR: netip.MustParsePrefix("10.61.0.0/24"), VLAN: 100}, {Name: "b", CIDR: netip.MustParsePrefix("10.62.0.0/24"), VLAN: 200}},
		Local:  []LocalIP{{IP: netip.MustParseAddr("10.61.0.2"), VLAN: 100, OFPort: 3}},
		Remote: []RemoteIP{{IP: netip.MustParseAddr("10.61.0.3"), VLAN: 100, TunnelOFPort: 2}, {IP: netip.MustParseAddr("10.61.0.2"), VLAN: 100, TunnelOFPort: 2}},
	}
	got := flowSet(BuildFlows(st))
	want := []string{
		// anti-spoofing classification of the pod port
		"cookie=0xec10d,table=0,priority=200,in_port=3,ip,dl_src=0a:58:0a:3d:00:02,nw_src=10.61.0.2,actions=load:100->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,20)",
		"cookie=0xec10d,table=0,priority=200,in_port=3,arp,dl_src=0a:58:0a:3d:00:02,arp_spa=10.61.0.2,arp_sha=0a:58:0a:3d:00:02,actions=load:100->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,10)",
		// tunnel: the key carries the VLAN
		"cookie=0xec10d,table=0,priority=200,in_port=2,ip,actions=move:NXM_NX_TUN_ID[0..12]->NXM_NX_REG0[0..12],load:3->NXM_NX_REG1[],resubmit(,20)",
		"cookie=0xec10d,table=0,priority=200,in_port=1,ip,actions=load:4096->NXM_NX_REG0[],load:2->NXM_NX_REG1[],resubmit(,20)",
		"cookie=0xec10d,table=0,priority=0,actions=drop",
		"cookie=0xec10d,table=10,priority=100,arp,arp_op=1,reg0=100,arp_tpa=10.61.0.0/24,actions=" + arpResponder,
		"cookie=0xec10d,table=10,priority=100,arp,arp_op=1,reg0=4096,arp_tpa=10.62.0.0/24,actions=" + arpResponder,
		"cookie=0xec10d,table=20,priority=200,ip,reg0=100,nw_dst=10.61.0.2,actions=mod_dl_dst:0a:58:0a:3d:00:02,output:3",
		"cookie=0xec10d,table=20,priority=200,ip,reg0=4096,nw_dst=10.61.0.2,actions=mod_dl_dst:0a:58:0a:3d:00:02,output:3",
		"cookie=0xec10d,table=20,priority=200,ip,reg0=100,reg1=1,nw_dst=10.61.0.3,actions=set_field:100->tun_id,output:2",
		"cookie=0xec10d,table=20,priority=100,ip,nw_dst=10.62.0.0/24,actions=drop",
		"cookie=0xec10d,table=20,priority=10,ip,reg1=1,actions=mod_dl_dst:0a:58:ff:00:00:01,output:1",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing flow %s", w)
		}
	}
	for f := range got {
		// The local port wins over a stale claim pointing 10.61.0.2 at the tunnel.
		if strings.Contains(f, "nw_dst=10.61.0.2") && strings.Contains(f, "tun_id") {
			t.Errorf("local IP routed to the tunnel: %s", f)
		}
		// Isolation: no flow sends VLAN 100 pod traffic to a VLAN 200 destination.
		if strings.Contains(f, "reg0=100") && strings.Contains(f, "10.62.") {
			t.Errorf("cross-VLAN flow: %s", f)
		}
	}
	if n := len(BuildFlows(FlowState{})); n != 3 {
		t.Errorf("empty state: %d flows, want the 3 table-miss drops", n)
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

// TestBuildFlowsAntiSpoofing: every flow that admits a pod port's packets pins the pod's IP and
// its MAC (0a:58:<IPv4>), and admits only IPv4 and ARP; the rest of the port's traffic falls to
// the table-miss drop.
func TestBuildFlowsAntiSpoofing(t *testing.T) {
	gwMAC, _ := net.ParseMAC(gatewayMAC)
	local := []LocalIP{
		{IP: netip.MustParseAddr("10.61.0.2"), VLAN: 100, OFPort: 3},
		{IP: netip.MustParseAddr("10.61.0.9"), VLAN: 100, OFPort: 4},
		{IP: netip.MustParseAddr("10.62.0.5"), VLAN: 200, OFPort: 5},
	}
	fl := BuildFlows(FlowState{GatewayOFPort: 1, GatewayMAC: gwMAC, TunnelOFPorts: []int{2},
		Pools: []PoolNet{{Name: "a", CIDR: netip.MustParsePrefix("10.61.0.0/24"), VLAN: 100}, {Name: "b", CIDR: netip.MustParsePrefix("10.62.0.0/24"), VLAN: 200}},
		Local: local})
	classify := map[int][]ovs.Flow{} // pod port -> its table 0 flows
	for _, f := range fl {
		if f.Table != tableClassify {
			continue
		}
		for _, l := range local {
			if strings.HasPrefix(f.Match, "in_port="+strconv.Itoa(l.OFPort)+",") {
				classify[l.OFPort] = append(classify[l.OFPort], f)
			}
		}
	}
	for _, l := range local {
		mac := macOf(l.IP)
		tests := []struct {
			name    string
			proto   string   // the flow's protocol
			pinned  []string // match fields that must pin the pod's identity
			actions string
		}{
			{"IPv4 from the pod's IP and MAC", "ip", []string{"dl_src=" + mac, "nw_src=" + l.IP.String()},
				fmt.Sprintf("load:%d->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,20)", l.VLAN)},
			{"ARP from the pod's IP and MAC", "arp", []string{"dl_src=" + mac, "arp_spa=" + l.IP.String(), "arp_sha=" + mac},
				fmt.Sprintf("load:%d->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,10)", l.VLAN)},
		}
		for _, tc := range tests {
			t.Run(l.IP.String()+"/"+tc.name, func(t *testing.T) {
				var found []ovs.Flow
				for _, f := range classify[l.OFPort] {
					if slices.Contains(strings.Split(f.Match, ","), tc.proto) {
						found = append(found, f)
					}
				}
				if len(found) != 1 {
					t.Fatalf("port %d: %d %s flows, want 1: %v", l.OFPort, len(found), tc.proto, found)
				}
				fields := strings.Split(found[0].Match, ",")
				for _, p := range tc.pinned {
					if !slices.Contains(fields, p) {
						t.Errorf("flow %s does not match %s", found[0], p)
					}
				}
				if found[0].Actions != tc.actions {
					t.Errorf("flow %s: actions %s, want %s", found[0], found[0].Actions, tc.actions)
				}
			})
		}
		// Nothing else from the port: no IPv6, no other ethertype, no flow without the MAC.
		if n := len(classify[l.OFPort]); n != 2 {
			t.Errorf("port %d: %d classify flows, want the IPv4 and the ARP one: %v", l.OFPort, n, classify[l.OFPort])
		}
	}
	// The table-miss drop is what the unmatched packets meet.
	if !slices.ContainsFunc(fl, func(f ovs.Flow) bool {
		return f.Table == tableClassify && f.Priority == 0 && f.Match == "" && f.Actions == "drop"
	}) {
		t.Error("no table-miss drop in table 0")
	}
	// ARP replies never leave the responder table: only requests are answered, the rest dropped.
	for _, f := range fl {
		if f.Table == tableARP && f.Actions != "drop" && !strings.Contains(f.Match, "arp_op=1") {
			t.Errorf("ARP flow %s acts on more than requests", f)
		}
	}
}
