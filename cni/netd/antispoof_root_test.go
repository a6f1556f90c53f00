package netd

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/cni/ovs/ovstest"
)

// TestAntiSpoofingAgainstRealOVS installs BuildFlows on a private ovs-vswitchd (userspace
// datapath) with three pod ports — a and b in pool VLAN 100, x in VLAN 200 — and traces what a pod
// with CAP_NET_ADMIN could send from port a: only IPv4 and ARP with a's own IP and MAC pass;
// another pod's IP or MAC, forged ARP, IPv6, other ethertypes and other VLANs are dropped.
func TestAntiSpoofingAgainstRealOVS(t *testing.T) {
	inst := ovstest.StartT(t, "")
	sw := inst.Switch()
	ctx := context.Background()
	const br = "ecni-spoof"
	if err := sw.EnsureBridge(ctx, br, ovs.Netdev); err != nil {
		t.Fatal(err)
	}
	ofport := map[string]int{}
	for _, name := range []string{"ecnigw", "ecnia", "ecnib", "ecnix"} {
		n, err := sw.AddPort(ctx, br, ovs.Port{Name: name, Type: "internal"})
		if err != nil {
			t.Fatal(err)
		}
		ofport[name] = n
	}
	a, b, x := netip.MustParseAddr("10.61.0.2"), netip.MustParseAddr("10.61.0.3"), netip.MustParseAddr("10.62.0.5")
	gwMAC, _ := net.ParseMAC(gatewayMAC)
	flows := BuildFlows(FlowState{GatewayOFPort: ofport["ecnigw"], GatewayMAC: gwMAC,
		Pools: []PoolNet{{Name: "a", CIDR: netip.MustParsePrefix("10.61.0.0/24"), VLAN: 100}, {Name: "x", CIDR: netip.MustParsePrefix("10.62.0.0/24"), VLAN: 200}},
		Local: []LocalIP{{IP: a, VLAN: 100, OFPort: ofport["ecnia"]}, {IP: b, VLAN: 100, OFPort: ofport["ecnib"]}, {IP: x, VLAN: 200, OFPort: ofport["ecnix"]}}})
	if err := sw.ReplaceFlows(ctx, br, Cookie, len(flows), slices.Values(flows)); err != nil {
		t.Fatal(err)
	}
	from := "in_port=" + strconv.Itoa(ofport["ecnia"]) + ","
	macA, macB, other := macOf(a), macOf(b), "02:00:00:00:00:01"
	tests := []struct {
		name, packet string
		pass         bool
	}{
		{"own IP and MAC to a pod of the VLAN", "icmp,dl_src=" + macA + ",nw_src=" + a.String() + ",nw_dst=" + b.String(), true},
		{"own IP and MAC to outside the overlay", "udp,dl_src=" + macA + ",nw_src=" + a.String() + ",nw_dst=192.0.2.1", true},
		{"own ARP request", "arp,arp_op=1,dl_src=" + macA + ",arp_sha=" + macA + ",arp_spa=" + a.String() + ",arp_tpa=" + b.String(), true},
		{"another pod's IP of the same pool", "icmp,dl_src=" + macA + ",nw_src=" + b.String() + ",nw_dst=192.0.2.1", false},
		{"another pod's IP and MAC", "udp,dl_src=" + macB + ",nw_src=" + b.String() + ",nw_dst=" + b.String() + "", false},
		{"a pod's IP of another VLAN", "udp,dl_src=" + macA + ",nw_src=" + x.String() + ",nw_dst=192.0.2.1", false},
		{"own IP from a changed MAC", "icmp,dl_src=" + other + ",nw_src=" + a.String() + ",nw_dst=" + b.String(), false},
		{"own IP and MAC to another VLAN", "icmp,dl_src=" + macA + ",nw_src=" + a.String() + ",nw_dst=" + x.String(), false},
		{"forged ARP reply for another pod's IP", "arp,arp_op=2,dl_src=" + macA + ",arp_sha=" + macA + ",arp_spa=" + b.String() + ",arp_tpa=" + x.String(), false},
		{"gratuitous ARP for another pod's IP", "arp,arp_op=1,dl_dst=ff:ff:ff:ff:ff:ff,dl_src=" + macA + ",arp_sha=" + macA + ",arp_spa=" + b.String() + ",arp_tpa=" + b.String(), false},
		{"ARP reply for its own IP", "arp,arp_op=2,dl_src=" + macA + ",arp_sha=" + macA + ",arp_spa=" + a.String() + ",arp_tpa=" + b.String(), false},
		{"ARP request with a forged sender MAC", "arp,arp_op=1,dl_src=" + macA + ",arp_sha=" + other + ",arp_spa=" + a.String() + ",arp_tpa=" + b.String(), false},
		{"IPv6", "udp6,dl_src=" + macA + ",ipv6_src=fe80::858:aff:fe3d:2,ipv6_dst=ff02::1", false},
		{"another ethertype", "dl_type=0x88b5,dl_src=" + macA + ",dl_dst=ff:ff:ff:ff:ff:ff", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := sw.Trace(ctx, br, from+tc.packet)
			if err != nil {
				t.Fatal(err)
			}
			_, actions, ok := strings.Cut(out, "Datapath actions: ")
			if !ok {
				t.Fatalf("trace without datapath actions:\n%s", out)
			}
			actions, _, _ = strings.Cut(actions, "\n")
			if dropped := actions == "drop"; dropped == tc.pass {
				t.Errorf("pass=%v, datapath actions %q, want pass=%v:\n%s", !dropped, actions, tc.pass, out)
			}
		})
	}
}
