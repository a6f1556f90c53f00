package netd

import (
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// The testdata/trace-*.txt files are the output of ovs-appctl ofproto/trace (Open vSwitch 3.1,
// userspace datapath) on a bridge with netd's pipeline: pod port 5 (10.20.0.10), pod port 6
// (10.20.0.11), tunnel port 7, gateway port 2. trace-tunnel-underlay.txt adds the section of a
// second bridge, as a trace of a tunnelled packet shows when the host routes it over a bridge.
func TestParseTrace(t *testing.T) {
	ports := []ovs.Port{
		{Name: "veth-a", OFPort: 5, ExternalIDs: map[string]string{extRole: rolePod, extPodNS: "shop", extPodName: "a", extIP: "10.20.0.10"}},
		{Name: "veth-b", OFPort: 6, ExternalIDs: map[string]string{extRole: rolePod, extPodNS: "shop", extPodName: "b", extIP: "10.20.0.11"}},
		{Name: "tun-vxlan", OFPort: 7, Type: "vxlan", Options: map[string]string{"remote_ip": "flow", "key": "flow"}, ExternalIDs: map[string]string{extRole: roleTunnel}},
		{Name: "ecloud-gw", OFPort: 2, ExternalIDs: map[string]string{extRole: roleGateway}},
	}
	tests := []struct {
		file, verdict, outName, outDetail string
		rules                             int
		lastMatch                         string
	}{
		{"tunnel", nodeapi.TraceTunnel, "tun-vxlan", "192.168.7.2", 2, "ip,reg0=0x64,reg1=0/0x4,nw_dst=10.21.0.10"},
		{"tunnel-underlay", nodeapi.TraceTunnel, "tun-vxlan", "192.168.7.2", 2, "ip,reg0=0x64,reg1=0/0x4,nw_dst=10.21.0.10"},
		{"local", nodeapi.TraceLocal, "veth-b", "shop/b", 2, "ip,reg0=0x64,nw_dst=10.20.0.11"},
		{"gateway", nodeapi.TraceGateway, "ecloud-gw", "", 2, "ip,reg1=0x1"},
		{"pooldrop", nodeapi.TraceDrop, "", "", 2, "ip,nw_dst=10.21.0.0/24"},
		{"spoofed", nodeapi.TraceDrop, "", "", 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			out, err := os.ReadFile("testdata/trace-" + tc.file + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			res := ParseTrace(string(out), "br-int", ports)
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %q, want %q", res.Verdict, tc.verdict)
			}
			if len(res.Rules) != tc.rules {
				t.Fatalf("%d rules, want %d: %+v", len(res.Rules), tc.rules, res.Rules)
			}
			last := res.Rules[len(res.Rules)-1]
			if last.Match != tc.lastMatch || last.Cookie != "0xec10d" {
				t.Errorf("last rule %+v, want match %q with cookie 0xec10d", last, tc.lastMatch)
			}
			if res.Rules[0].Table != 0 || (tc.rules > 1 && last.Table != tableForward) {
				t.Errorf("tables %d..%d, want 0..%d", res.Rules[0].Table, last.Table, tableForward)
			}
			if tc.verdict == nodeapi.TraceDrop {
				if res.Out != nil || last.Actions[len(last.Actions)-1] != "drop" {
					t.Errorf("drop: out %+v, last actions %v", res.Out, last.Actions)
				}
				return
			}
			if res.Out == nil {
				t.Fatalf("no output port, want %s", tc.outName)
			}
			detail := res.Out.Pod
			if res.Out.Role == roleTunnel {
				detail = res.Out.RemoteIP // the flow's tunnel destination
			}
			if res.Out.Name != tc.outName || detail != tc.outDetail {
				t.Errorf("out %+v, want port %s (%s)", res.Out, tc.outName, tc.outDetail)
			}
			if res.DatapathActions == "" {
				t.Error("no datapath actions")
			}
		})
	}
}

func TestParseTraceQuery(t *testing.T) {
	tests := []struct {
		query, flow, err string
	}{
		{"namespace=shop&pod=a&dst=10.21.0.10", "in_port=5,icmp,dl_src=0a:58:0a:14:00:0a,dl_dst=0a:58:ff:00:00:01,nw_src=10.20.0.10,nw_dst=10.21.0.10,nw_ttl=64", ""},
		{"namespace=shop&pod=a&dst=10.21.0.10&protocol=tcp&port=443", "in_port=5,tcp,dl_src=0a:58:0a:14:00:0a,dl_dst=0a:58:ff:00:00:01,nw_src=10.20.0.10,nw_dst=10.21.0.10,nw_ttl=64,tp_src=40000,tp_dst=443", ""},
		{"namespace=shop&dst=10.21.0.10", "", "namespace and pod are required"},
		{"namespace=shop&pod=a&dst=10.21.0.10,actions=drop", "", `dst="10.21.0.10,actions=drop": want an IPv4 address`},
		{"namespace=shop&pod=a&dst=fd00::1", "", "want an IPv4 address"},
		{"namespace=shop&pod=a&dst=10.21.0.10&protocol=arp", "", `protocol="arp"`},
		{"namespace=shop&pod=a&dst=10.21.0.10&protocol=udp&port=0", "", `port="0"`},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			req, err := parseTraceQuery(q)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := traceFlow(5, netip.MustParseAddr("10.20.0.10"), req); got != tc.flow {
				t.Errorf("flow\n %s\nwant\n %s", got, tc.flow)
			}
		})
	}
}
