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
	peerTEP := env(t, "ECLOUD_DP_PEER_TEP")
	localPod := netip.MustParseAddr(env(t, "ECLOUD_DP_LOCAL_POD"))
	peerPod := netip.MustParseAddr(env(t, "ECLOUD_DP_PEER_POD"))
	linger, _ := time.ParseDuration(os.Getenv("ECLOUD_DP_LINGER"))
	const podNS = "dppod"
	node, err := Setup(context.Background(), NodeConfig{
		Datapath: dp, Tunnel: tun, PeerTEP: peerTEP,
		Pool: netip.MustParsePrefix("10.70.0.0/24"), VLAN: 100,
		Pods:       []PodConfig{{NetNS: podNS, IP: localPod}},
		RemotePods: []netip.Addr{peerPod},
		OVS:        ovs.Config{DB: os.Getenv("ECLOUD_DP_OVSDB"), RunDir: os.Getenv("ECLOUD_DP_OVS_RUNDIR"), Timeout: 60 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	t.Logf("br-int (datapath %s): pod %s, %s tunnel port %s to %s, %d flows", dp, localPod, tun, node.TunnelPort, peerTEP, node.Flows)

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
