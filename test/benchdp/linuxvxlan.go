package benchdp

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// LinuxVXLAN is the reference path on one node, laid out as flannel's VXLAN backend lays it out:
// pods are network namespaces on veths in a Linux bridge that holds the first address of the
// node's pod subnet (their gateway); a Linux vxlan device (VNI 1, UDP port 8472, no learning)
// carries the other node's subnet, routed via that node's VTEP address (subnet.0) with a
// permanent neighbour and forwarding entry; the host forwards between bridge and vxlan device.
type LinuxVXLAN struct {
	// Prefix starts every device and netns name (at most 6 characters).
	Prefix string
	// Subnet is this node's pod subnet, PeerSubnet the other node's (/24 each).
	Subnet, PeerSubnet netip.Prefix
	// LocalIP and PeerIP are the nodes' underlay addresses.
	LocalIP, PeerIP string
	// Pods is the number of pods (netns <Prefix>p<i>, IP subnet.10+i).
	Pods int
	// MTU of the pods' interfaces (the same as ecloud's pods, so both carry equal segments).
	MTU int
}

// Bridge, VXLAN device and pod netns names.
func (l LinuxVXLAN) bridge() string       { return l.Prefix + "br" }
func (l LinuxVXLAN) vxlan() string        { return l.Prefix + "vx" }
func (l LinuxVXLAN) veth(i int) string    { return l.Prefix + "v" + strconv.Itoa(i) }
func (l LinuxVXLAN) PodNS(i int) string   { return l.Prefix + "p" + strconv.Itoa(i) }
func vtep(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr() }
func gatewayOf(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// PodIP is pod i's address.
func (l LinuxVXLAN) PodIP(i int) netip.Addr {
	a := l.Subnet.Masked().Addr().As4()
	a[3] = byte(10 + i)
	return netip.AddrFrom4(a)
}

// vtepMAC is the vxlan device's MAC, derived from its VTEP address so the peer knows it.
func vtepMAC(subnet netip.Prefix) string {
	a := vtep(subnet).As4()
	return fmt.Sprintf("0e:7a:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3])
}

// Commands are the commands that build the path, to run in the node's host netns.
func (l LinuxVXLAN) Commands() [][]string {
	mtu := strconv.Itoa(l.MTU)
	peerVTEP := vtep(l.PeerSubnet).String()
	cmds := [][]string{
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "link", "add", l.bridge(), "type", "bridge"},
		{"ip", "addr", "add", netip.PrefixFrom(gatewayOf(l.Subnet), l.Subnet.Bits()).String(), "dev", l.bridge()},
		{"ip", "link", "set", l.bridge(), "up"},
		{"ip", "link", "add", l.vxlan(), "address", vtepMAC(l.Subnet), "type", "vxlan", "id", "1", "local", l.LocalIP,
			"dstport", "8472", "nolearning"},
		{"ip", "addr", "add", vtep(l.Subnet).String() + "/32", "dev", l.vxlan()},
		{"ip", "link", "set", l.vxlan(), "up"},
		{"ip", "route", "add", l.PeerSubnet.Masked().String(), "via", peerVTEP, "dev", l.vxlan(), "onlink"},
		{"ip", "neigh", "replace", peerVTEP, "lladdr", vtepMAC(l.PeerSubnet), "dev", l.vxlan(), "nud", "permanent"},
		{"bridge", "fdb", "append", vtepMAC(l.PeerSubnet), "dev", l.vxlan(), "dst", l.PeerIP},
	}
	for i := range l.Pods {
		ns := l.PodNS(i)
		cmds = append(cmds,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", l.veth(i), "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu, "netns", ns},
			[]string{"ip", "link", "set", l.veth(i), "master", l.bridge(), "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(l.PodIP(i), l.Subnet.Bits()).String(), "dev", "eth0"},
			[]string{"ip", "-n", ns, "route", "add", "default", "via", gatewayOf(l.Subnet).String()},
		)
	}
	return cmds
}

// CleanupCommands remove what Commands made (errors ignored: parts may be missing).
func (l LinuxVXLAN) CleanupCommands() [][]string {
	cmds := [][]string{{"ip", "link", "del", l.vxlan()}, {"ip", "link", "del", l.bridge()}}
	for i := range l.Pods {
		cmds = append(cmds, []string{"ip", "netns", "del", l.PodNS(i)})
	}
	return cmds
}

// Setup runs Commands on node n in its host netns hostNS (after CleanupCommands, so a run
// left over by a crash does not get in the way).
func (l LinuxVXLAN) Setup(ctx context.Context, n *Node, hostNS string) error {
	l.Cleanup(ctx, n, hostNS)
	for _, c := range l.Commands() {
		if _, err := n.Runner.Run(ctx, hostNS, c...); err != nil {
			return fmt.Errorf("linux vxlan reference on %s: %w", n.Name, err)
		}
	}
	// Both ends of each pod's veth carry MTU: a pod with a larger one would send larger
	// segments than ecloud's pods (after a path MTU discovery round).
	want := fmt.Sprintf(" mtu %d ", l.MTU)
	for i := range l.Pods {
		out, err := n.Runner.Run(ctx, hostNS, "ip", "-n", l.PodNS(i), "-o", "link", "show", "eth0")
		if err != nil {
			return fmt.Errorf("linux vxlan reference on %s: %w", n.Name, err)
		}
		if !strings.Contains(string(out), want) {
			return fmt.Errorf("linux vxlan reference on %s: pod %s has not MTU %d: %s", n.Name, l.PodNS(i), l.MTU, out)
		}
	}
	return nil
}

// Cleanup runs CleanupCommands on node n.
func (l LinuxVXLAN) Cleanup(ctx context.Context, n *Node, hostNS string) {
	for _, c := range l.CleanupCommands() {
		_, _ = n.Runner.Run(ctx, hostNS, c...)
	}
}
