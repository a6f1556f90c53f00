package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/test/harness"
)

// portCountingSwitch is the real OVS driver, counting the port transactions netd asks for.
type portCountingSwitch struct {
	ovs.Switch
	txns atomic.Int64
}

func (s *portCountingSwitch) AddPort(ctx context.Context, bridge string, p ovs.Port) (int, error) {
	s.txns.Add(1)
	return s.Switch.AddPort(ctx, bridge, p)
}

func (s *portCountingSwitch) UpdatePorts(ctx context.Context, bridge string, add []ovs.Port, del []string) error {
	s.txns.Add(1)
	return s.Switch.UpdatePorts(ctx, bridge, add, del)
}

func (s *portCountingSwitch) DeletePort(ctx context.Context, bridge, name string) error {
	s.txns.Add(1)
	return s.Switch.DeletePort(ctx, bridge, name)
}

// TestCNINodeJoinNoPortTransaction: on a node with netd and real OVS, another node joining
// (a Node, an IP bound there) and leaving changes flows only: netd asks OVS for no port
// transaction, br-int keeps the same ports with the same OpenFlow numbers, and the OVSDB
// transaction log gains no change to a Port, Interface or Bridge row; the one tunnel port is
// flow-based.
func TestCNINodeJoinNoPortTransaction(t *testing.T) {
	var sw *portCountingSwitch
	e := newCNIEnv(t, 1, "", func(e *cniEnv) {
		e.wrapSwitch = func(_ *cniHost, s ovs.Switch) ovs.Switch { sw = &portCountingSwitch{Switch: s}; return sw }
	})
	h := e.hosts[0]
	e.createPool("ejoin", "10.63.0.0/24", "10.63.0.1", 100, true)
	a := e.newPod(h, "a", nil)
	a.add(t)

	portsOf := func() string {
		ports, err := h.OVS.Switch().ListPorts(context.Background(), "br-int", nil)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, p := range ports {
			fmt.Fprintf(&b, "%s=%d/%s/%v ", p.Name, p.OFPort, p.Type, p.Options)
		}
		return b.String()
	}
	var tunnels []ovs.Port
	ports, err := h.OVS.Switch().ListPorts(context.Background(), "br-int", map[string]string{"ecloud-role": "tunnel"})
	if err != nil {
		t.Fatal(err)
	}
	tunnels = append(tunnels, ports...)
	if len(tunnels) != 1 || tunnels[0].Name != "tun-vxlan" || tunnels[0].Options["remote_ip"] != "flow" || tunnels[0].Options["key"] != "flow" {
		t.Fatalf("tunnel ports %+v, want the one flow-based tun-vxlan", tunnels)
	}
	dbLog := filepath.Join(h.OVS.Dir, "conf.db")
	// What the bridge looks like and how far the OVSDB log is before the join.
	beforePorts, beforeTxns := portsOf(), sw.txns.Load()
	st, err := os.Stat(dbLog)
	if err != nil {
		t.Fatal(err)
	}
	logOffset := st.Size()

	const joiner, joinerIP, joinerPod = "ejoin-node", "172.31.254.77", "10.63.0.77"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: joiner},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: joinerIP}}}}
	created, err := e.cp.Kube.CoreV1().Nodes().Create(e.cp.Ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.Status.Addresses) == 0 {
		created.Status = node.Status
		if _, err := e.cp.Kube.CoreV1().Nodes().UpdateStatus(e.cp.Ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := &v1alpha1.IPClaim{ObjectMeta: metav1.ObjectMeta{Name: joinerPod},
		Spec: v1alpha1.IPClaimSpec{Pool: "ejoin", IP: joinerPod, Owner: v1alpha1.ClaimOwner{Namespace: "ejoin", PodName: "remote"},
			Mode: v1alpha1.ModeEphemeral, ReleasePolicy: v1alpha1.ReleaseOnDelete},
		Status: v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseBound, Node: joiner}}
	if _, err := e.cp.Ecloud.IPClaims().Create(e.cp.Ctx, c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	flowsFor := func() (source, remote bool) {
		for _, f := range h.flows() {
			source = source || strings.Contains(f.Match, "tun_src="+joinerIP)
			remote = remote || (strings.Contains(f.Match, "nw_dst="+joinerPod) && strings.Contains(f.Actions, joinerIP+"->tun_dst"))
		}
		return source, remote
	}
	harness.Eventually(t, 15*time.Second, func() (bool, error) {
		s, r := flowsFor()
		return s && r, nil
	}, "flows for the joined node %s (tunnel source %s, its IP %s)", joiner, joinerIP, joinerPod)

	check := func(what string) {
		t.Helper()
		if n := sw.txns.Load() - beforeTxns; n != 0 {
			t.Errorf("%s: netd ran %d port transactions", what, n)
		}
		if after := portsOf(); after != beforePorts {
			t.Errorf("%s changed br-int's ports:\nbefore %s\nafter  %s", what, beforePorts, after)
		}
		for _, tbl := range ovsdbLogTables(t, dbLog, logOffset) {
			if tbl == "Port" || tbl == "Interface" || tbl == "Bridge" {
				t.Errorf("%s: the OVSDB log has a transaction on table %s", what, tbl)
			}
		}
	}
	check("a node joining")

	// The node leaves: its flows go, still without a port transaction.
	if err := e.cp.Ecloud.IPClaims().Delete(e.cp.Ctx, joinerPod, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.cp.Kube.CoreV1().Nodes().Delete(e.cp.Ctx, joiner, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 15*time.Second, func() (bool, error) {
		s, r := flowsFor()
		return !s && !r, nil
	}, "flows of the departed node %s gone", joiner)
	check("a node leaving")
	a.del(t, true)

	// The log check sees port transactions: one made by hand shows up in it.
	st, err = os.Stat(dbLog)
	if err != nil {
		t.Fatal(err)
	}
	h.vsctl("add-port", "br-int", "ejoinprobe", "--", "set", "Interface", "ejoinprobe", "type=internal")
	h.vsctl("del-port", "br-int", "ejoinprobe")
	seen := map[string]bool{}
	for _, tbl := range ovsdbLogTables(t, dbLog, st.Size()) {
		seen[tbl] = true
	}
	if !seen["Port"] || !seen["Bridge"] {
		t.Errorf("a port added and deleted by hand: the OVSDB log shows tables %v, want Port and Bridge", seen)
	}
}

// ovsdbLogTables lists the tables that the transactions appended to an OVSDB database file
// after offset touch (the file is a log of "OVSDB JSON <length> <hash>" records).
func ovsdbLogTables(t *testing.T, path string, offset int64) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) < offset {
		t.Fatalf("%s shrank (compacted) during the test: %d < %d bytes", path, len(raw), offset)
	}
	rest := raw[offset:]
	var tables []string
	for len(rest) > 0 {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break
		}
		f := strings.Fields(string(rest[:nl]))
		if len(f) < 3 || f[0] != "OVSDB" || f[1] != "JSON" {
			t.Fatalf("%s: unexpected record header %q", path, rest[:nl])
		}
		n, err := strconv.Atoi(f[2])
		if err != nil || nl+1+n > len(rest) {
			t.Fatalf("%s: bad record length in %q", path, rest[:nl])
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(rest[nl+1:nl+1+n], &rec); err != nil {
			t.Fatalf("%s: record: %v", path, err)
		}
		for k := range rec {
			if !strings.HasPrefix(k, "_") {
				tables = append(tables, k)
			}
		}
		rest = rest[nl+1+n:]
		for len(rest) > 0 && rest[0] == '\n' {
			rest = rest[1:]
		}
	}
	return tables
}
