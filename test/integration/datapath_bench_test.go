package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/test/benchdp"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestDatapathBench is the namespace-host part of make bench-datapath: two hosts with their own
// OVS on the userspace datapath (netdev) and an in-process netd, pods plumbed by the real plugin
// binary, against two baselines on the same hosts: the hosts' own addresses on the underlay (the
// wire) and a Linux bridge + vxlan reference path (benchdp.LinuxVXLAN, flannel's layout). Each
// path's TCP throughput (iperf3) and 1-byte request/response round trips are measured in rotated,
// mirrored order (benchdp.Measure); it prints one line per path, RESULT lines and the ratios to
// the baselines last. It runs only under make bench-datapath (ECLOUD_BENCH=datapath).
func TestDatapathBench(t *testing.T) {
	if os.Getenv("ECLOUD_BENCH") != "datapath" {
		t.Skip("benchmark: run with make bench-datapath (ECLOUD_BENCH=datapath)")
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatal("needs iperf3 (hack/install-deps.sh bench-datapath)")
	}
	e := newCNIEnv(t, 2, "")
	h1, h2 := e.hosts[0], e.hosts[1]
	e.createPool("ecni-dp", "10.82.0.0/24", "10.82.0.1", 100, true)
	a1, a2, b1 := e.newPod(h1, "dp-a1", nil), e.newPod(h1, "dp-a2", nil), e.newPod(h2, "dp-b1", nil)
	for _, p := range []*pod{a1, a2, b1} {
		p.add(t)
	}
	harness.Eventually(t, 20*time.Second, func() (bool, error) { return ping(a1.NS, b1.IP) == nil, nil }, "ping %s -> %s", a1.IP, b1.IP)

	cmd := exec.Command("go", "build", "-o", e.bins+"/", "github.com/ecloud-io/ecloud/test/benchdp/cmd/benchdp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build benchdp: %v: %s", err, out)
	}
	local := &benchdp.Local{}
	tool := filepath.Join(e.bins, "benchdp")
	n1 := &benchdp.Node{Name: h1.Node, Runner: local, Tool: tool}
	n2 := &benchdp.Node{Name: h2.Node, Runner: local, Tool: tool}
	ctx := context.Background()
	defer benchdp.StopServers(ctx, n1, n2)

	mtu := h1.netdConfig()
	mtu.Default()
	subnets := []netip.Prefix{netip.MustParsePrefix("10.83.1.0/24"), netip.MustParsePrefix("10.83.2.0/24")}
	var ref [2]benchdp.LinuxVXLAN
	for i, h := range e.hosts {
		other := e.hosts[1-i]
		ref[i] = benchdp.LinuxVXLAN{Prefix: fmt.Sprintf("%s-r%d", e.id, i+1), Subnet: subnets[i], PeerSubnet: subnets[1-i],
			LocalIP: h.IP, PeerIP: other.IP, Pods: 2, MTU: mtu.MTU}
		if err := ref[i].Setup(ctx, []*benchdp.Node{n1, n2}[i], h.NS); err != nil {
			t.Fatal(err)
		}
	}
	podEP := func(n *benchdp.Node, p *pod) benchdp.Endpoint {
		return benchdp.Endpoint{Node: n, NetNS: p.NS, IP: p.IP}
	}
	host := func(n *benchdp.Node, h *cniHost) benchdp.Endpoint {
		return benchdp.Endpoint{Node: n, NetNS: h.NS, IP: h.IP}
	}
	refPod := func(n *benchdp.Node, i, j int) benchdp.Endpoint {
		return benchdp.Endpoint{Node: n, NetNS: ref[i].PodNS(j), IP: ref[i].PodIP(j).String()}
	}
	paths := []benchdp.Path{
		{Key: "netdev_same_node", Client: podEP(n1, a1), Server: podEP(n1, a2)},
		{Key: "netdev_cross_node", Client: podEP(n1, a1), Server: podEP(n2, b1)},
		{Key: "netdev_host_to_pod", Client: host(n1, h1), Server: podEP(n1, a2)},
		{Key: "netns_linux_vxlan_same_node", Client: refPod(n1, 0, 0), Server: refPod(n1, 0, 1)},
		{Key: "netns_linux_vxlan_cross_node", Client: refPod(n1, 0, 0), Server: refPod(n2, 1, 0)},
		{Key: "netns_linux_vxlan_host_to_pod", Client: host(n1, h1), Server: refPod(n1, 0, 1)},
		{Key: "netns_wire_cross_node", Client: host(n1, h1), Server: host(n2, h2)},
	}
	opt := benchdp.Options{Iterations: 4, TputSeconds: 3, RRRequests: 2000, Log: os.Stdout}
	fmt.Printf("datapath netns hosts: %d paths x %d iterations, iperf3 %ds (+1 s omitted), %d round trips per RR run; pod MTU %d on both overlays\n",
		len(paths), opt.Iterations, opt.TputSeconds, opt.RRRequests, mtu.MTU)
	res, err := benchdp.Measure(ctx, paths, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range e.hosts {
		ctl := filepath.Join(h.OVS.Dir, "ovs-vswitchd.ctl")
		benchdp.Diagnose(ctx, os.Stdout, []*benchdp.Node{n1, n2}[i], h.NS, []string{"ovs-appctl", "-t", ctl, "dpif-netdev/pmd-stats-show"},
			[]string{"sh", "-c", "echo megaflows: $(ovs-appctl -t " + ctl + " dpctl/dump-flows | wc -l)"}, []string{"ovs-appctl", "-t", ctl, "upcall/show"})
	}
	benchdp.Report(os.Stdout, res)
	if err := benchdp.ReportRatios(os.Stdout, res, []benchdp.Ratio{
		{Name: "netdev_vs_wire_tput", Num: "netdev_cross_node", Den: "netns_wire_cross_node"},
		{Name: "netdev_vs_linux_vxlan_tput", Num: "netdev_cross_node", Den: "netns_linux_vxlan_cross_node"},
		{Name: "netdev_vs_linux_vxlan_rr_p99", Num: "netdev_cross_node", Den: "netns_linux_vxlan_cross_node", RRp99: true},
	}); err != nil {
		t.Fatal(err)
	}
}
