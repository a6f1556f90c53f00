// Command benchdp is the tool of make bench-datapath: the request/response server and client,
// the agent that runs commands on a QEMU guest for the driver, the guest's br-int as netd
// builds it, and the driver of the guest (kernel datapath) part.
//
//	benchdp rr-server -listen IP:PORT
//	benchdp rr-client -addr IP:PORT -n N        prints the round trips (JSON, nanoseconds)
//	benchdp agent -listen IP:PORT               serves commands (benchdp.Agent)
//	benchdp ovs-node -index 0|1 -peer-tep IP    br-int, two pods, tunnel, gateway, flows
//	benchdp guests -nodes IP0,IP1 -tool PATH    measures between two guests, prints RESULT lines
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/test/benchdp"
	"github.com/ecloud-io/ecloud/test/guestdp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchdp rr-server|rr-client|agent|ovs-node|guests [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string) error{
		"rr-server": rrServer, "rr-client": rrClient, "agent": agent, "ovs-node": ovsNode, "guests": guests,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "benchdp: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := run(ctx, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchdp %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func rrServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rr-server", flag.ExitOnError)
	listen := fs.String("listen", "", "IP:PORT to listen on")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); _ = ln.Close() }()
	return benchdp.ServeRR(ln)
}

func rrClient(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rr-client", flag.ExitOnError)
	addr := fs.String("addr", "", "server IP:PORT")
	n := fs.Int("n", 1000, "round trips")
	timeout := fs.Duration("timeout", time.Minute, "bound on the whole run")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ds, err := benchdp.RR(ctx, *addr, *n)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(benchdp.EncodeRR(ds), '\n'))
	return err
}

func agent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	listen := fs.String("listen", "", "IP:PORT to serve on")
	_ = fs.Parse(args)
	a := &benchdp.Agent{}
	defer func() { _ = a.Local.StopAll(context.Background()) }()
	return a.ListenAndServe(ctx, *listen)
}

// The guests' networks: ecloud's pool (both nodes), the reference's per-node subnets.
var (
	ecloudPool = netip.MustParsePrefix("10.70.0.0/24")
	refSubnets = [2]netip.Prefix{netip.MustParsePrefix("10.71.1.0/24"), netip.MustParsePrefix("10.71.2.0/24")}
)

// ecloudPod is pod i of node idx in ecloud's pool, and its netns name.
func ecloudPod(idx, i int) (string, netip.Addr) {
	return fmt.Sprintf("ecp%d", i), netip.AddrFrom4([4]byte{10, 70, 0, byte(10 + 10*idx + i)})
}

const podsPerNode = 2

func ovsNode(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ovs-node", flag.ExitOnError)
	idx := fs.Int("index", 0, "node index (0 or 1)")
	peer := fs.String("peer-tep", "", "the other node's tunnel endpoint IP")
	dp := fs.String("datapath", string(ovs.System), "br-int's datapath")
	tun := fs.String("tunnel", string(ovs.VXLAN), "tunnel type")
	_ = fs.Parse(args)
	cfg := guestdp.NodeConfig{Datapath: ovs.DatapathType(*dp), Tunnel: ovs.TunnelType(*tun), PeerTEP: *peer,
		Pool: ecloudPool, VLAN: 100, Gateway: true, OVS: ovs.Config{Timeout: time.Minute}}
	for i := range podsPerNode {
		ns, ip := ecloudPod(*idx, i)
		cfg.Pods = append(cfg.Pods, guestdp.PodConfig{NetNS: ns, IP: ip})
		_, rip := ecloudPod(1-*idx, i)
		cfg.RemotePods = append(cfg.RemotePods, rip)
	}
	n, err := guestdp.Setup(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("br-int (%s): %d pods, %s tunnel port %s to %s, %d flows\n", *dp, podsPerNode, *tun, n.TunnelPort, *peer, n.Flows)
	return nil
}

func guests(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("guests", flag.ExitOnError)
	nodes := fs.String("nodes", "", "the two guests' IPs (agent on port 7000)")
	tool := fs.String("tool", "/mnt/payload/benchdp", "the benchdp binary in the guests")
	iters := fs.Int("iterations", 4, "iterations over all paths")
	secs := fs.Int("tput-seconds", 3, "seconds per iperf3 run")
	reqs := fs.Int("rr-requests", 2000, "round trips per RR run (4 iterations: n=8000 per path, as on the namespace hosts)")
	_ = fs.Parse(args)
	ips := strings.Split(*nodes, ",")
	if len(ips) != 2 {
		return fmt.Errorf("-nodes wants two IPs, got %q", *nodes)
	}
	var n [2]*benchdp.Node
	for i, ip := range ips {
		r := &benchdp.Remote{Addr: net.JoinHostPort(ip, "7000")}
		if err := r.WaitReady(ctx, 5*time.Minute); err != nil {
			return err
		}
		n[i] = &benchdp.Node{Name: fmt.Sprintf("guest%d", i), Runner: r, Tool: *tool}
	}
	defer benchdp.StopServers(context.Background(), n[0], n[1])
	var ref [2]benchdp.LinuxVXLAN
	for i := range 2 {
		out, err := n[i].Runner.Run(ctx, "", *tool, "ovs-node", "-index", fmt.Sprint(i), "-peer-tep", ips[1-i])
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s", n[i].Name, out)
		ref[i] = benchdp.LinuxVXLAN{Prefix: "lvx", Subnet: refSubnets[i], PeerSubnet: refSubnets[1-i],
			LocalIP: ips[i], PeerIP: ips[1-i], Pods: podsPerNode, MTU: 1400}
		if err := ref[i].Setup(ctx, n[i], ""); err != nil {
			return err
		}
	}
	ep := func(node int, ns string, ip netip.Addr) benchdp.Endpoint {
		return benchdp.Endpoint{Node: n[node], NetNS: ns, IP: ip.String()}
	}
	e00ns, e00 := ecloudPod(0, 0)
	e01ns, e01 := ecloudPod(0, 1)
	e10ns, e10 := ecloudPod(1, 0)
	paths := []benchdp.Path{
		{Key: "system_same_node", Client: ep(0, e00ns, e00), Server: ep(0, e01ns, e01)},
		{Key: "system_cross_node", Client: ep(0, e00ns, e00), Server: ep(1, e10ns, e10)},
		{Key: "system_host_to_pod", Client: benchdp.Endpoint{Node: n[0], IP: ips[0]}, Server: ep(0, e01ns, e01)},
		{Key: "guest_linux_vxlan_same_node", Client: ep(0, ref[0].PodNS(0), ref[0].PodIP(0)), Server: ep(0, ref[0].PodNS(1), ref[0].PodIP(1))},
		{Key: "guest_linux_vxlan_cross_node", Client: ep(0, ref[0].PodNS(0), ref[0].PodIP(0)), Server: ep(1, ref[1].PodNS(0), ref[1].PodIP(0))},
		{Key: "guest_linux_vxlan_host_to_pod", Client: benchdp.Endpoint{Node: n[0], IP: ips[0]}, Server: ep(0, ref[0].PodNS(1), ref[0].PodIP(1))},
		{Key: "guest_wire_cross_node", Client: benchdp.Endpoint{Node: n[0], IP: ips[0]}, Server: benchdp.Endpoint{Node: n[1], IP: ips[1]}},
		// The wire with one frame per TCP segment on the NIC, as the overlays' VXLAN packets
		// cross it (the emulated NIC has no UDP-tunnel segmentation offload).
		{Key: "guest_wire_segmented_cross_node", Client: benchdp.Endpoint{Node: n[0], IP: ips[0]}, Server: benchdp.Endpoint{Node: n[1], IP: ips[1]},
			Setting: benchdp.WithoutTSO("eth0", n[0], n[1])},
	}
	res, err := benchdp.Measure(ctx, paths, benchdp.Options{Iterations: *iters, TputSeconds: *secs, RRRequests: *reqs, Log: os.Stdout})
	for i := range 2 { // also after a failure: the kernel datapath's counters and megaflows say why
		benchdp.Diagnose(ctx, os.Stdout, n[i], "", []string{"ovs-dpctl", "show"},
			[]string{"sh", "-c", "echo megaflows: $(ovs-dpctl dump-flows | wc -l)"}, []string{"ovs-appctl", "-t", "/run/openvswitch/ovs-vswitchd.ctl", "upcall/show"},
			// The reference's pods: TCP counters and the bridge ports' drops.
			[]string{"sh", "-c", "for p in lvxp0 lvxp1; do echo $p $(ip netns exec $p nstat -az TcpOutSegs TcpRetransSegs TcpExtTCPTimeouts TcpExtTCPLossProbes | awk 'NR>1{printf \"%s=%s \", $1, $2}'); done; ip -s -o link show master lvxbr"},
			[]string{"sh", "-c", "echo conntrack: $(cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null); cut -d' ' -f1-3 /proc/loadavg"})
	}
	if err != nil {
		return err
	}
	benchdp.Report(os.Stdout, res)
	return benchdp.ReportRatios(os.Stdout, res, []benchdp.Ratio{
		{Name: "system_vs_linux_vxlan_tput", Num: "system_cross_node", Den: "guest_linux_vxlan_cross_node"},
		{Name: "system_vs_wire_segmented_tput", Num: "system_cross_node", Den: "guest_wire_segmented_cross_node"},
		{Name: "system_vs_wire_tput", Num: "system_cross_node", Den: "guest_wire_cross_node"},
		{Name: "system_vs_linux_vxlan_rr_p99", Num: "system_cross_node", Den: "guest_linux_vxlan_cross_node", RRp99: true},
	})
}
