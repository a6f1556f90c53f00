// Package guestdp is one side of a pod-to-pod check between two hosts whose Open vSwitch runs
// different datapaths (hack/guest-datapath: a QEMU guest on Debian's kernel with the kernel
// datapath, and a namespace host with the userspace datapath). Each side builds br-int with
// netd's OVS driver, one pod (a netns on a veth, tagged with the pool's VLAN), netd's one
// flow-based tunnel port (remote_ip=flow, key=flow: the flows name the other host), and netd's
// flow table (netd.BuildFlows), then pings the other
// side's pod and opens a TCP connection to it. It runs only when hack/guest-datapath sets
// ECLOUD_DP_DATAPATH and the other ECLOUD_DP_* variables.
package guestdp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ecloud-io/ecloud/cni/netd"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

func env(t *testing.T, k string) string {
	v := os.Getenv(k)
	if v == "" {
		t.Fatalf("%s is not set", k)
	}
	return v
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPodAcrossDatapaths(t *testing.T) {
	if os.Getenv("ECLOUD_DP_DATAPATH") == "" {
		t.Skip("one side of hack/guest-datapath/run.sh: set ECLOUD_DP_DATAPATH and the other ECLOUD_DP_* variables")
	}
	dp := ovs.DatapathType(env(t, "ECLOUD_DP_DATAPATH"))
	tun := ovs.TunnelType(env(t, "ECLOUD_DP_TUNNEL"))
	peerTEP := netip.MustParseAddr(env(t, "ECLOUD_DP_PEER_TEP"))
	localPod := netip.MustParseAddr(env(t, "ECLOUD_DP_LOCAL_POD"))
	peerPod := netip.MustParseAddr(env(t, "ECLOUD_DP_PEER_POD"))
	linger, _ := time.ParseDuration(os.Getenv("ECLOUD_DP_LINGER"))
	const br, vlan, podNS, hostVeth = "br-int", 100, "dppod", "dpv0"
	pool := netip.MustParsePrefix("10.70.0.0/24")
	sw := ovs.NewExec(ovs.Config{DB: os.Getenv("ECLOUD_DP_OVSDB"), RunDir: os.Getenv("ECLOUD_DP_OVS_RUNDIR"), Timeout: 60 * time.Second})
	ctx := context.Background()

	if err := sw.EnsureBridge(ctx, br, dp); err != nil {
		t.Fatal(err)
	}
	// The pod: a netns on a veth, MAC and ARP as netd's plugin makes them.
	_ = exec.Command("ip", "netns", "del", podNS).Run()
	_ = exec.Command("ip", "link", "del", hostVeth).Run()
	sh(t, "ip", "netns", "add", podNS)
	defer exec.Command("ip", "netns", "del", podNS).Run()
	sh(t, "ip", "link", "add", hostVeth, "mtu", "1400", "type", "veth", "peer", "name", "eth0", "netns", podNS)
	mac, _ := nodeapi.MACForIP(localPod)
	sh(t, "ip", "-n", podNS, "link", "set", "eth0", "address", mac.String(), "mtu", "1400", "up")
	sh(t, "ip", "-n", podNS, "link", "set", "lo", "up")
	sh(t, "ip", "-n", podNS, "addr", "add", localPod.String()+"/24", "dev", "eth0")
	if dp == ovs.Netdev { // the plugin's datapath=netdev setting
		sh(t, "ip", "netns", "exec", podNS, "ethtool", "-K", "eth0", "tx", "off")
	}
	sh(t, "ip", "link", "set", hostVeth, "up")
	podPort, err := sw.AddPort(ctx, br, ovs.Port{Name: hostVeth, Tag: vlan, ExternalIDs: map[string]string{"ecloud-role": "pod"}})
	if err != nil {
		t.Fatal(err)
	}
	tunName := "tun-" + string(tun)
	tunPort, err := sw.AddPort(ctx, br, ovs.Port{Name: tunName, Type: string(tun),
		Options: map[string]string{"remote_ip": "flow", "key": "flow"}, ExternalIDs: map[string]string{"ecloud-role": "tunnel"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sw.DeletePort(ctx, br, tunName); _ = sw.DeletePort(ctx, br, hostVeth) }()
	flows := netd.BuildFlows(netd.FlowState{
		TunnelOFPort: tunPort,
		Peers:        []netip.Addr{peerTEP},
		Pools:        []netd.PoolNet{{Name: "dp", CIDR: pool, VLAN: vlan}},
		Local:        []netd.LocalIP{{IP: localPod, VLAN: vlan, OFPort: podPort}},
		Remote:       []netd.RemoteIP{{IP: peerPod, VLAN: vlan, TunnelIP: peerTEP}},
	})
	if err := sw.ReplaceFlows(ctx, br, netd.Cookie, flows); err != nil {
		t.Fatal(err)
	}
	t.Logf("br-int (datapath %s): pod %s on port %d, %s tunnel port %d to %s, %d flows", dp, localPod, podPort, tun, tunPort, peerTEP, len(flows))

	// A TCP echo server in the pod, for the other side.
	ln, err := inNetns(podNS, func() (net.Listener, error) { return net.Listen("tcp", localPod.String()+":7070") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{}) // closed once the other side's pod has had its echo
	go func() {
		var once sync.Once
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if n, _ := io.Copy(c, c); n > 0 {
					once.Do(func() { close(served) })
				}
			}()
		}
	}()

	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := exec.Command("ip", "netns", "exec", podNS, "ping", "-c", "1", "-W", "2", peerPod.String()).CombinedOutput()
		if err == nil {
			t.Logf("ping %s -> %s over %s: ok", localPod, peerPod, tun)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping %s -> %s over %s (%s datapath): %v\n%s", localPod, peerPod, tun, dp, err, out)
		}
		time.Sleep(time.Second)
	}
	var conn net.Conn
	for {
		// The other side may not listen yet (refused): try again until the deadline.
		conn, err = inNetns(podNS, func() (net.Conn, error) {
			return net.DialTimeout("tcp", peerPod.String()+":7070", 10*time.Second)
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TCP %s -> %s:7070: %v", localPod, peerPod, err)
		}
		time.Sleep(time.Second)
	}
	msg := strings.Repeat("ecloud", 2000) // 12 kB: several full-size segments
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	go func() { _, _ = conn.Write([]byte(msg)) }()
	got := make([]byte, len(msg))
	_, err = io.ReadFull(conn, got)
	conn.Close()
	if err != nil || string(got) != msg {
		t.Fatalf("TCP echo %s -> %s: %v", localPod, peerPod, err)
	}
	t.Logf("TCP echo %s -> %s over %s: %d bytes ok", localPod, peerPod, tun, len(msg))
	if dp == ovs.System {
		t.Logf("kernel datapath:\n%s", sh(t, "ovs-dpctl", "show"))
	}
	// The other side checks against this pod too: wait for its echo, then a little longer.
	select {
	case <-served:
	case <-time.After(time.Until(deadline)):
		t.Errorf("the other side's pod never completed a TCP echo with %s", localPod)
	}
	time.Sleep(linger)
}

// inNetns runs fn on a locked thread inside netns name (sockets stay in that netns).
func inNetns[T any](name string, fn func() (T, error)) (T, error) {
	var zero T
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return zero, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return zero, fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return zero, err
	}
	defer netns.Set(orig)
	return fn()
}
