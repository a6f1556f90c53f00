// Package guestdp builds a host's br-int as netd does, without the apiserver (Setup: netd's OVS
// driver, pods as netns on veths tagged with the pool's VLAN, a flow-based tunnel port, netd's
// gateway port and flow table from netd.BuildFlows), for hosts where no apiserver runs: the QEMU
// guests of hack/guest-datapath and of make bench-datapath. Its test is one side of a pod-to-pod
// check between two hosts whose Open vSwitch runs different datapaths (a QEMU guest on Debian's
// kernel with the kernel datapath, a namespace host with the userspace datapath): each side pings
// the other side's pod and opens a TCP connection to it. It runs only when hack/guest-datapath
// sets ECLOUD_DP_DATAPATH and the other ECLOUD_DP_* variables.
package guestdp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ecloud-io/ecloud/cni/netd"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// NodeConfig is one host's br-int as netd builds it, without the apiserver: the pool, the local
// pods, the other host's pods behind one flow-based tunnel port, and optionally netd's gateway
// port (the host reaches the pods through it).
type NodeConfig struct {
	// Datapath is br-int's datapath_type; Tunnel the tunnel port's type.
	Datapath ovs.DatapathType
	Tunnel   ovs.TunnelType
	// PeerTEP is the other host's tunnel endpoint IP.
	PeerTEP string
	// Pool is the pods' network; its first address is their gateway. VLAN is the pool's tag.
	Pool netip.Prefix
	VLAN int
	// Pods are the local pods: a netns each (created here, named as given) with eth0 on a veth.
	Pods []PodConfig
	// RemotePods are the other host's pod IPs.
	RemotePods []netip.Addr
	// Gateway adds netd's gateway port (internal, named GatewayPort) and routes Pool into it.
	Gateway bool
	// MTU of the pods' interfaces (netd's default 1400 when 0).
	MTU int
	// OVS is how to reach this host's Open vSwitch.
	OVS ovs.Config
}

// PodConfig is one local pod.
type PodConfig struct {
	NetNS string
	IP    netip.Addr
}

// Bridge, GatewayPort and GatewayMAC are netd's defaults.
const (
	Bridge      = "br-int"
	GatewayPort = "ecloud-gw"
	GatewayMAC  = "0a:58:ff:00:00:01"
)

// Node is a built host; Close removes what Setup made.
type Node struct {
	cfg   NodeConfig
	sw    *ovs.Exec
	ports []string
	// TunnelPort is the tunnel port's name; Flows the number of flows programmed.
	TunnelPort string
	Flows      int
}

// hostVeth is the host end of the i-th pod's veth.
func hostVeth(i int) string { return "dpv" + strconv.Itoa(i) }

// Setup builds br-int, the pods, the tunnel port, the gateway and netd's flow table
// (netd.BuildFlows) as described by cfg.
func Setup(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.MTU == 0 {
		cfg.MTU = 1400
	}
	n := &Node{cfg: cfg, sw: ovs.NewExec(cfg.OVS)}
	if err := n.setup(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) setup(ctx context.Context) error {
	cfg := n.cfg
	if err := n.sw.EnsureBridge(ctx, Bridge, cfg.Datapath); err != nil {
		return err
	}
	gw := cfg.Pool.Masked().Addr().Next()
	var local []netd.LocalIP
	for i, p := range cfg.Pods {
		if err := plumbPod(i, p, gw, cfg); err != nil {
			return err
		}
		n.ports = append(n.ports, hostVeth(i))
		ofport, err := n.sw.AddPort(ctx, Bridge, ovs.Port{Name: hostVeth(i), Tag: cfg.VLAN, ExternalIDs: map[string]string{"ecloud-role": "pod"}})
		if err != nil {
			return err
		}
		local = append(local, netd.LocalIP{IP: p.IP, VLAN: cfg.VLAN, OFPort: ofport})
	}
	// netd's one flow-based tunnel port: the flows name the other host (set_field:...->tun_dst).
	peer, err := netip.ParseAddr(cfg.PeerTEP)
	if err != nil {
		return fmt.Errorf("peer tunnel endpoint %q: %w", cfg.PeerTEP, err)
	}
	n.TunnelPort = "tun-" + string(cfg.Tunnel)
	tunPort, err := n.sw.AddPort(ctx, Bridge, ovs.Port{Name: n.TunnelPort, Type: string(cfg.Tunnel),
		Options: map[string]string{"remote_ip": "flow", "key": "flow"}, ExternalIDs: map[string]string{"ecloud-role": "tunnel"}})
	if err != nil {
		return err
	}
	n.ports = append(n.ports, n.TunnelPort)
	st := netd.FlowState{
		TunnelOFPort: tunPort,
		Peers:        []netip.Addr{peer},
		Pools:        []netd.PoolNet{{Name: "dp", CIDR: cfg.Pool, VLAN: cfg.VLAN}},
		Local:        local,
	}
	for _, ip := range cfg.RemotePods {
		st.Remote = append(st.Remote, netd.RemoteIP{IP: ip, VLAN: cfg.VLAN, TunnelIP: peer})
	}
	if cfg.Gateway {
		if st.GatewayOFPort, st.GatewayMAC, err = n.gateway(ctx); err != nil {
			return err
		}
	}
	flows := netd.BuildFlows(st)
	n.Flows = len(flows)
	return n.sw.ReplaceFlows(ctx, Bridge, netd.Cookie, len(flows), slices.Values(flows))
}

// plumbPod makes pod i's netns and veth as netd's plugin does: MAC 0a:58:<IPv4>, the MTU, a
// default route via the pool's gateway, and tx checksums computed in software on the
// userspace datapath.
func plumbPod(i int, p PodConfig, gw netip.Addr, cfg NodeConfig) error {
	_ = exec.Command("ip", "netns", "del", p.NetNS).Run()
	_ = exec.Command("ip", "link", "del", hostVeth(i)).Run()
	mac, err := nodeapi.MACForIP(p.IP)
	if err != nil {
		return fmt.Errorf("pod %s: %w", p.IP, err)
	}
	mtu := strconv.Itoa(cfg.MTU)
	cmds := [][]string{
		{"ip", "netns", "add", p.NetNS},
		{"ip", "link", "add", hostVeth(i), "mtu", mtu, "type", "veth", "peer", "name", "eth0", "netns", p.NetNS},
		{"ip", "-n", p.NetNS, "link", "set", "eth0", "address", mac.String(), "mtu", mtu, "up"},
		{"ip", "-n", p.NetNS, "link", "set", "lo", "up"},
		{"ip", "-n", p.NetNS, "addr", "add", netip.PrefixFrom(p.IP, cfg.Pool.Bits()).String(), "dev", "eth0"},
		{"ip", "-n", p.NetNS, "route", "add", "default", "via", gw.String(), "dev", "eth0"},
		{"ip", "link", "set", hostVeth(i), "up"},
	}
	if cfg.Datapath == ovs.Netdev {
		cmds = append(cmds, []string{"ip", "netns", "exec", p.NetNS, "ethtool", "-K", "eth0", "tx", "off"})
	}
	for _, c := range cmds {
		if err := run(c...); err != nil {
			return fmt.Errorf("pod %s in %s: %w", p.IP, p.NetNS, err)
		}
	}
	return nil
}

// gateway adds netd's gateway port, brings its device up and routes the pool into it.
func (n *Node) gateway(ctx context.Context) (int, net.HardwareAddr, error) {
	ofport, err := n.sw.AddPort(ctx, Bridge, ovs.Port{Name: GatewayPort, Type: "internal", MAC: GatewayMAC,
		ExternalIDs: map[string]string{"ecloud-role": "gateway"}})
	if err != nil {
		return 0, nil, err
	}
	n.ports = append(n.ports, GatewayPort)
	for deadline := time.Now().Add(10 * time.Second); run("ip", "link", "show", GatewayPort) != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("gateway port %s has no device", GatewayPort)
		}
	}
	if err := run("ip", "link", "set", GatewayPort, "up"); err != nil {
		return 0, nil, err
	}
	if err := run("ip", "route", "replace", n.cfg.Pool.Masked().String(), "dev", GatewayPort, "scope", "link"); err != nil {
		return 0, nil, err
	}
	mac, _ := net.ParseMAC(GatewayMAC)
	return ofport, mac, nil
}

// Close deletes the ports and the pods' netns.
func (n *Node) Close() {
	ctx := context.Background()
	for _, p := range n.ports {
		_ = n.sw.DeletePort(ctx, Bridge, p)
	}
	for _, p := range n.cfg.Pods {
		_ = exec.Command("ip", "netns", "del", p.NetNS).Run()
	}
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
