package ovs_test

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/cni/ovs/ovstest"
)

// TestExecAgainstRealOVS drives a private ovs-vswitchd (userspace datapath) through every
// Switch call.
func TestExecAgainstRealOVS(t *testing.T) {
	inst := ovstest.StartT(t, "")
	sw := inst.Switch()
	ctx := context.Background()
	const br = "ecni-br0"

	for range 2 { // idempotent
		if err := sw.EnsureBridge(ctx, br, ovs.Netdev); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]string{"ecloud-pod": "shop/db-0", "ecloud-ip": "10.1.0.5"}
	n, err := sw.AddPort(ctx, br, ovs.Port{Name: "ecnigw0", Type: "internal", Tag: 100, ExternalIDs: ids, MAC: "0a:58:00:00:00:01"})
	if err != nil || n <= 0 {
		t.Fatalf("AddPort internal: ofport %d, %v", n, err)
	}
	tn, err := sw.AddPort(ctx, br, ovs.Port{Name: "ecnitun0", Type: string(ovs.VXLAN), Options: map[string]string{"remote_ip": "192.0.2.2", "key": "flow"}, ExternalIDs: map[string]string{"ecloud-node": "n2"}})
	if err != nil || tn <= 0 || tn == n {
		t.Fatalf("AddPort vxlan: ofport %d, %v", tn, err)
	}
	ports, err := sw.ListPorts(ctx, br, map[string]string{"ecloud-ip": "10.1.0.5"})
	if err != nil || len(ports) != 1 || ports[0].Name != "ecnigw0" || ports[0].Tag != 100 || ports[0].OFPort != n || ports[0].ExternalIDs["ecloud-pod"] != "shop/db-0" {
		t.Fatalf("ListPorts by ecloud-ip: %+v, %v", ports, err)
	}
	all, err := sw.ListPorts(ctx, br, nil)
	if err != nil || len(all) != 2 || all[1].Options["remote_ip"] != "192.0.2.2" {
		t.Fatalf("ListPorts all: %+v, %v", all, err)
	}

	const mine, theirs = 0xec10, 0x77
	if err := sw.AddFlows(ctx, br, []ovs.Flow{{Cookie: theirs, Table: 0, Priority: 5, Match: "arp", Actions: "drop"}}); err != nil {
		t.Fatal(err)
	}
	first := []ovs.Flow{
		{Table: 0, Priority: 100, Match: "ip,in_port=1", Actions: "resubmit(,20)"},
		{Table: 20, Priority: 100, Match: "ip,nw_dst=10.1.0.5", Actions: "output:1"},
	}
	if err := sw.ReplaceFlows(ctx, br, mine, len(first), slices.Values(first)); err != nil {
		t.Fatal(err)
	}
	second := []ovs.Flow{
		{Table: 20, Priority: 100, Match: "ip,nw_dst=10.1.0.5", Actions: "output:2"},
		{Table: 20, Priority: 100, Match: "ip,nw_dst=10.1.0.6", Actions: "output:1"},
	}
	if err := sw.ReplaceFlows(ctx, br, mine, len(second), slices.Values(second)); err != nil {
		t.Fatal(err)
	}
	flows, err := sw.DumpFlows(ctx, br)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range flows {
		got = append(got, f.String())
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		"cookie=0x77,table=0,priority=5,arp,actions=drop",
		"cookie=0xec10,table=20,priority=100,ip,nw_dst=10.1.0.5,actions=output:2",
		"cookie=0xec10,table=20,priority=100,ip,nw_dst=10.1.0.6,actions=output:1",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("after ReplaceFlows, missing %s in\n%s", want, joined)
		}
	}
	if len(flows) != 3 {
		t.Errorf("after ReplaceFlows: %d flows, want 3:\n%s", len(flows), joined)
	}
	// A table larger than a pipe's buffer is streamed in; a flow ovs-ofctl rejects fails the
	// replace (and leaves the bridge as it was) instead of hanging on the rest of the input.
	many := func(bad bool) iter.Seq[ovs.Flow] {
		return func(yield func(ovs.Flow) bool) {
			for i := range 3000 {
				f := ovs.Flow{Table: 20, Priority: 100, Match: fmt.Sprintf("ip,nw_dst=10.2.%d.%d", i/256, i%256), Actions: "output:1"}
				if bad && i == 10 {
					f.Match = "ip,nw_dst=not-an-ip"
				}
				if !yield(f) {
					return
				}
			}
		}
	}
	if err := sw.ReplaceFlows(ctx, br, mine, 3000, many(true)); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Errorf("ReplaceFlows with a bad flow: %v", err)
	}
	if err := sw.ReplaceFlows(ctx, br, mine, 3000, many(false)); err != nil {
		t.Fatal(err)
	}
	if flows, err := sw.DumpFlows(ctx, br); err != nil || len(flows) != 3001 {
		t.Errorf("after a replace of 3000 flows: %d flows, %v", len(flows), err)
	}
	if err := sw.ReplaceFlows(ctx, br, mine, len(second), slices.Values(second)); err != nil {
		t.Fatal(err)
	}
	// ApplyFlows: one bundle that deletes one flow and changes another's actions.
	if err := sw.ApplyFlows(ctx, br, []ovs.Flow{{Cookie: mine, Table: 20, Priority: 100, Match: "ip,nw_dst=10.1.0.6", Actions: "output:2"}},
		[]ovs.Flow{{Table: 20, Priority: 100, Match: "ip,nw_dst=10.1.0.5"}}); err != nil {
		t.Fatal(err)
	}
	flows, _ = sw.DumpFlows(ctx, br)
	if len(flows) != 2 || !strings.Contains(flows[0].String()+flows[1].String(), "nw_dst=10.1.0.6,actions=output:2") {
		t.Errorf("after ApplyFlows: %+v", flows)
	}
	if err := sw.DeleteFlows(ctx, br, mine); err != nil {
		t.Fatal(err)
	}
	if flows, _ = sw.DumpFlows(ctx, br); len(flows) != 1 || flows[0].Cookie != theirs {
		t.Errorf("after DeleteFlows(mine): %+v", flows)
	}

	for range 2 { // a port that is gone is not an error
		if err := sw.DeletePort(ctx, br, "ecnigw0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.DeletePort(ctx, "ecni-nobridge", "x"); err != nil {
		t.Errorf("DeletePort on a missing bridge: %v", err)
	}
	if ports, err := sw.ListPorts(ctx, "ecni-nobridge", nil); err != nil || len(ports) != 0 {
		t.Errorf("ListPorts on a missing bridge: %+v, %v", ports, err)
	}
	if ports, _ := sw.ListPorts(ctx, br, nil); len(ports) != 1 {
		t.Errorf("after DeletePort: %+v", ports)
	}
}
