package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestCNITwoHosts: two namespace hosts with their own OVS and netd, pods plumbed by the real
// plugin binary (one through cnitool): cross-host ping and TCP over the tunnel, host→pod via
// the gateway, VLAN isolation, CHECK, a sticky IP that moves hosts, GC, double DEL, netd
// restart reconcile, and nothing left behind after the last DEL.
func TestCNITwoHosts(t *testing.T) {
	e := newCNIEnv(t, 2, "")
	h1, h2 := e.hosts[0], e.hosts[1]
	e.createPool("ecni-a", "10.61.0.0/24", "10.61.0.1", 100, true)
	e.createPool("ecni-b", "10.62.0.0/24", "10.62.0.1", 200, false)
	poolB := map[string]string{v1alpha1.AnnotationIPPools: "ecni-b"}

	// The daemons installed the plugin and the conflist.
	for _, h := range e.hosts {
		for _, f := range []string{h.BinDir + "/ecloud-cni", h.ConfDir + "/10-ecloud.conflist"} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("netd on %s did not install %s: %v", h.Node, f, err)
			}
		}
	}

	a1 := e.newPod(h1, "a1", nil)
	a2 := e.newPod(h2, "a2", nil)
	b1 := e.newPod(h1, "b1", poolB)
	b2 := e.newPod(h2, "b2", poolB)
	for _, p := range []*pod{a1, a2, b1, b2} {
		p.add(t)
	}
	t.Logf("a1=%s a2=%s b1=%s b2=%s", a1.IP, a2.IP, b1.IP, b2.IP)
	for _, c := range []struct {
		p      *pod
		prefix string
	}{{a1, "10.61.0."}, {a2, "10.61.0."}, {b1, "10.62.0."}, {b2, "10.62.0."}} {
		if !strings.HasPrefix(c.p.IP, c.prefix) {
			t.Errorf("pod %s got %s, want an IP of its pool (%s*)", c.p.Name, c.p.IP, c.prefix)
		}
	}
	// Spec-correct result: eth0 in the sandbox, gateway, route.
	ifaces := a1.Result["interfaces"].([]any)
	if len(ifaces) != 2 || ifaces[1].(map[string]any)["name"] != "eth0" || ifaces[1].(map[string]any)["sandbox"] != a1.netnsPath() || a1.Result["cniVersion"] != "1.1.0" {
		t.Errorf("ADD result interfaces: %v", a1.Result)
	}
	// The OVS port has the pool's tag and the pod's external_ids.
	ports := h1.podPorts()
	var a1Port *ovs.Port
	for i := range ports {
		if ports[i].ExternalIDs["ecloud-container"] == a1.ContainerID {
			a1Port = &ports[i]
		}
	}
	if a1Port == nil || a1Port.Tag != 100 || a1Port.ExternalIDs["ecloud-pod-name"] != "a1" || a1Port.ExternalIDs["ecloud-ip"] != a1.IP {
		t.Fatalf("a1's port on br-int: %+v", a1Port)
	}

	waitPing := func(from, to string) {
		t.Helper()
		harness.Eventually(t, 10*time.Second, func() (bool, error) { return ping(from, to) == nil, nil }, "ping %s -> %s", from, to)
	}
	waitPing(a1.NS, a2.IP)
	if err := tcpEcho(a1.NS, a2.NS, a2.IP); err != nil {
		t.Errorf("TCP a1 -> a2 across the tunnel: %v", err)
	}
	waitPing(b1.NS, b2.IP) // same VLAN 200 across the tunnel
	waitPing(h1.NS, a1.IP) // the host through the gateway
	if err := tcpEcho(h1.NS, a1.NS, a1.IP); err != nil {
		t.Errorf("TCP host -> a1 via the gateway: %v", err)
	}
	// Isolation: other VLAN, same host and across the tunnel.
	for _, c := range [][2]string{{a1.NS, b1.IP}, {b1.NS, a1.IP}, {a1.NS, b2.IP}, {b2.NS, a1.IP}} {
		if err := ping(c[0], c[1]); err == nil {
			t.Errorf("ping %s -> %s crossed VLANs", c[0], c[1])
		}
	}

	// CHECK with the ADD result.
	if r := h1.invoke("CHECK", a1.env(true), h1.netConf(map[string]any{"prevResult": a1.Result})); r.Err != nil {
		t.Errorf("CHECK a1: %v", r.Err)
	}

	// cnitool, with the conflist and binary netd installed.
	c1 := e.newPod(h1, "c1", nil)
	cnitool := func(cmd string) []byte {
		t.Helper()
		x := exec.Command("ip", "netns", "exec", h1.NS, e.bins+"/cnitool", cmd, "ecloud", c1.netnsPath())
		x.Env = []string{"PATH=" + os.Getenv("PATH"), "NETCONFPATH=" + h1.ConfDir, "CNI_PATH=" + h1.BinDir,
			"CNI_ARGS=K8S_POD_NAMESPACE=ecni;K8S_POD_NAME=c1;K8S_POD_UID=uid-c1"}
		out, err := x.CombinedOutput()
		if err != nil {
			t.Fatalf("cnitool %s: %v: %s", cmd, err, out)
		}
		return out
	}
	c1.parseResult(t, cnitool("add"))
	waitPing(c1.NS, a2.IP)
	cnitool("check")
	cnitool("del")

	// Sticky: removed on host 1, re-added on host 2, same IP, reachable from host 1 in 5 s.
	s := e.newPod(h1, "s1", map[string]string{v1alpha1.AnnotationIPPolicy: "sticky"})
	s.add(t)
	waitPing(a1.NS, s.IP)
	s.del(t, true)
	s.del(t, false) // the runtime's second DEL: no netns
	sh(t, "ip", "netns", "del", s.NS)
	s2 := e.newPod(h2, "s1", nil)
	s2.add(t)
	if s2.IP != s.IP {
		t.Fatalf("sticky pod got %s on host 2, had %s on host 1", s2.IP, s.IP)
	}
	moved := time.Now()
	harness.Eventually(t, 5*time.Second, func() (bool, error) { return ping(a1.NS, s2.IP) == nil, nil }, "sticky IP %s reachable from host 1 after the move", s2.IP)
	t.Logf("sticky IP %s reachable from host 1 %v after ADD on host 2", s2.IP, time.Since(moved).Round(time.Millisecond))

	// GC: the runtime knows every attachment but g1's.
	g1 := e.newPod(h1, "g1", nil)
	g1.add(t)
	valid := []map[string]string{{"containerID": a1.ContainerID, "ifname": "eth0"}, {"containerID": b1.ContainerID, "ifname": "eth0"}}
	if r := h1.invoke("GC", map[string]string{}, h1.netConf(map[string]any{"cni.dev/valid-attachments": valid})); r.Err != nil {
		t.Fatalf("GC: %v", r.Err)
	}
	for _, p := range h1.podPorts() {
		if p.ExternalIDs["ecloud-container"] == g1.ContainerID {
			t.Errorf("GC left g1's port %s", p.Name)
		}
	}
	if len(h1.podPorts()) != 2 || slices.Contains(h1.hostVeths(), g1hostVeth(g1)) {
		t.Errorf("after GC: ports %v, veths %v", h1.podPorts(), h1.hostVeths())
	}
	if _, err := e.cp.Ecloud.IPClaims().Get(e.cp.Ctx, v1alpha1.ClaimName(g1.IP), metav1.GetOptions{}); err == nil {
		t.Errorf("GC left g1's ephemeral claim %s", g1.IP)
	}
	g1.del(t, true) // DEL after GC still succeeds

	// Restart reconcile: stale flows and ports from "before" go, live pods keep working.
	h1.stopNetd()
	sw := h1.OVS.Switch()
	ctx := context.Background()
	if err := sw.AddFlows(ctx, "br-int", []ovs.Flow{{Cookie: 0xec10d, Table: 20, Priority: 300, Match: "ip,nw_dst=10.61.0.250", Actions: "drop"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.AddPort(ctx, "br-int", ovs.Port{Name: "ectstale", Type: "vxlan", Options: map[string]string{"remote_ip": "172.31.254.99", "key": "flow"}, ExternalIDs: map[string]string{"ecloud-role": "tunnel", "ecloud-node": "ghost"}}); err != nil {
		t.Fatal(err)
	}
	// A pod port whose veth vanished while netd was down (OVS reports ofport -1).
	h1.vsctl("add-port", "br-int", "ecvstale0", "--", "set", "Port", "ecvstale0", "external_ids:ecloud-role=pod",
		"external_ids:ecloud-ip=10.61.0.251", "external_ids:ecloud-vlan=100", "external_ids:ecloud-container=gone", "external_ids:ecloud-ifname=eth0")
	// Pod ports whose veths existed when OVS numbered them. The userspace datapath keeps the
	// number of a device that vanished: ecvgone0's veth goes while netd is down, ecvgone1's
	// while netd runs (the runtime removed a sandbox whose DEL could not reach netd).
	for i, name := range []string{"ecvgone0", "ecvgone1"} {
		sh(t, "ip", "-n", h1.NS, "link", "add", name, "type", "veth", "peer", "name", name+"p")
		h1.vsctl("add-port", "br-int", name, "--", "set", "Port", name, "external_ids:ecloud-role=pod",
			fmt.Sprintf("external_ids:ecloud-ip=10.61.0.%d", 240+i), "external_ids:ecloud-vlan=100",
			"external_ids:ecloud-container=gone"+strconv.Itoa(i), "external_ids:ecloud-ifname=eth0",
			"--", "set", "Interface", name, fmt.Sprintf("ofport_request=%d", 3900+i))
		harness.Eventually(t, 10*time.Second, func() (bool, error) {
			return strings.TrimSpace(h1.vsctl("get", "Interface", name, "ofport")) == strconv.Itoa(3900+i), nil
		}, "OVS numbers %s", name)
	}
	sh(t, "ip", "-n", h1.NS, "link", "del", "ecvgone0")
	h1.startNetd()
	for _, name := range []string{"ecvstale0", "ecvgone0"} {
		if strings.Contains(h1.vsctl("list-ports", "br-int"), name) {
			t.Errorf("pod port %s without a device survived the restart", name)
		}
	}
	if !strings.Contains(h1.vsctl("list-ports", "br-int"), "ecvgone1") {
		t.Fatal("pod port ecvgone1 with its veth did not survive the restart")
	}
	sh(t, "ip", "-n", h1.NS, "link", "del", "ecvgone1")
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		return !strings.Contains(h1.vsctl("list-ports", "br-int"), "ecvgone1"), nil
	}, "the port whose veth vanished under a running netd removed")
	for _, f := range h1.flows() {
		if strings.Contains(f.Match, "10.61.0.250") {
			t.Errorf("stale flow survived the restart: %s", f)
		}
	}
	if strings.Contains(h1.vsctl("list-ports", "br-int"), "ectstale") {
		t.Error("stale tunnel port survived the restart")
	}
	waitPing(a1.NS, a2.IP)

	// Delete everything, twice each; nothing may be left.
	for _, p := range []*pod{a1, a2, b1, b2, s2} {
		p.del(t, true)
		p.del(t, false)
	}
	for _, h := range e.hosts {
		if p := h.podPorts(); len(p) != 0 {
			t.Errorf("%s: pod ports left: %+v", h.Node, p)
		}
		if v := h.hostVeths(); len(v) != 0 {
			t.Errorf("%s: veths left: %v", h.Node, v)
		}
		harness.Eventually(t, 5*time.Second, func() (bool, error) {
			return len(h.podFlows("10.61.0."))+len(h.podFlows("10.62.0.")) == 0, nil
		}, "%s: pod flows gone", h.Node)
	}
	claims, err := e.cp.Ecloud.IPClaims().List(e.cp.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claims.Items {
		if c.Spec.Mode == v1alpha1.ModeEphemeral {
			t.Errorf("ephemeral claim left: %s (%s/%s)", c.Name, c.Spec.Owner.Namespace, c.Spec.Owner.PodName)
		}
		if c.Spec.Mode == v1alpha1.ModeSticky && (c.Status.Phase != v1alpha1.PhaseReserved || c.Status.Node != "") {
			t.Errorf("sticky claim %s still bound: %+v", c.Name, c.Status)
		}
	}
}

func g1hostVeth(p *pod) string {
	return fmt.Sprintf("%v", p.Result["interfaces"].([]any)[0].(map[string]any)["name"])
}

// TestCNIGeneveTunnel: the same cross-host path with Geneve instead of VXLAN.
func TestCNIGeneveTunnel(t *testing.T) {
	e := newCNIEnv(t, 2, ovs.Geneve)
	e.createPool("ecni-g", "10.63.0.0/24", "10.63.0.1", 300, true)
	p1, p2 := e.newPod(e.hosts[0], "g1", nil), e.newPod(e.hosts[1], "g2", nil)
	p1.add(t)
	p2.add(t)
	if !strings.Contains(e.hosts[0].vsctl("show"), "type: geneve") {
		t.Fatalf("no geneve tunnel port on %s", e.hosts[0].Node)
	}
	harness.Eventually(t, 10*time.Second, func() (bool, error) { return ping(p1.NS, p2.IP) == nil, nil }, "ping over geneve")
	if err := tcpEcho(p1.NS, p2.NS, p2.IP); err != nil {
		t.Errorf("TCP over geneve: %v", err)
	}
	p1.del(t, true)
	p2.del(t, true)
}
