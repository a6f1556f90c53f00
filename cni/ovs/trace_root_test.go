package ovs_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/cni/ovs/ovstest"
)

// TestTraceAgainstRealOVS runs ofproto/trace on a private ovs-vswitchd: the packet from port 1 to
// 10.1.0.6 matches the two rules and leaves through the tunnel port.
func TestTraceAgainstRealOVS(t *testing.T) {
	inst := ovstest.StartT(t, "")
	sw := inst.Switch()
	ctx := context.Background()
	const br = "ecni-br1"
	if err := sw.EnsureBridge(ctx, br, ovs.Netdev); err != nil {
		t.Fatal(err)
	}
	pod, err := sw.AddPort(ctx, br, ovs.Port{Name: "ecnipod1", Type: "internal"})
	if err != nil {
		t.Fatal(err)
	}
	tun, err := sw.AddPort(ctx, br, ovs.Port{Name: "ecnitun1", Type: string(ovs.VXLAN), Options: map[string]string{"remote_ip": "192.0.2.2", "key": "flow"}})
	if err != nil {
		t.Fatal(err)
	}
	flows := []ovs.Flow{
		{Table: 0, Priority: 200, Match: "ip,in_port=" + itoa(pod), Actions: "resubmit(,20)"},
		{Table: 20, Priority: 200, Match: "ip,nw_dst=10.1.0.6", Actions: "set_field:100->tun_id,output:" + itoa(tun)},
		{Table: 20, Priority: 0, Match: "", Actions: "drop"},
	}
	if err := sw.AddFlows(ctx, br, flows); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dst, want string }{
		{"10.1.0.6", "20. ip,nw_dst=10.1.0.6, priority 200\n    set_field:0x64->tun_id\n    output:" + itoa(tun)},
		{"10.1.0.7", "20. priority 0\n    drop"},
	} {
		out, err := sw.Trace(ctx, br, "in_port="+itoa(pod)+",icmp,nw_src=10.1.0.5,nw_dst="+tc.dst)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Datapath actions:") || !strings.Contains(out, tc.want) {
			t.Errorf("trace to %s lacks %q:\n%s", tc.dst, tc.want, out)
		}
	}
	if _, err := sw.Trace(ctx, br, "in_port=1,bogus_field=1"); err == nil {
		t.Error("a flow ofproto/trace cannot parse gave no error")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
