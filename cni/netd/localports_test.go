package netd

import (
	"context"
	"net/netip"
	"testing"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

func newRecordDaemon() *Daemon {
	return &Daemon{
		syncer:         newSyncer(func(context.Context, bool) error { return nil }),
		attachingPorts: map[string]int{}, attached: map[nodeapi.Attachment]ovs.Port{},
		flowGen: map[nodeapi.Attachment]uint64{}, earlyAdds: map[nodeapi.Attachment]*earlyAdd{},
	}
}

func TestLocalPortRecord(t *testing.T) {
	a1 := nodeapi.Attachment{ContainerID: "c1", IfName: "eth0"}
	a2 := nodeapi.Attachment{ContainerID: "c2", IfName: "eth0"}
	port := func(a nodeapi.Attachment, name, ip string) ovs.Port {
		return podPort(a, nodeapi.PodRef{Namespace: "ns", Name: a.ContainerID}, name, netip.MustParseAddr(ip), 100, "pool")
	}
	ips := func(d *Daemon) map[string]int {
		out := map[string]int{}
		for _, l := range d.localIPs() {
			out[l.IP.String()] = l.OFPort
		}
		return out
	}

	d := newRecordDaemon()
	p1, g1 := d.prepare(port(a1, "ecv1", "10.0.0.1"))
	p2, g2 := d.prepare(port(a2, "ecv2", "10.0.0.2"))
	if p1.OFPortRequest != firstPodOFPort || p2.OFPortRequest != firstPodOFPort+1 || g1 == 0 || g2 <= g1 {
		t.Fatalf("prepare: numbers %d %d, syncs %d %d", p1.OFPortRequest, p2.OFPortRequest, g1, g2)
	}
	// The attach of the same port reuses the lease's number and sync; another IP does not.
	if again, g := d.prepare(port(a1, "ecv1", "10.0.0.1")); again.OFPortRequest != p1.OFPortRequest || g != g1 {
		t.Errorf("same port again: number %d sync %d, want %d %d", again.OFPortRequest, g, p1.OFPortRequest, g1)
	}
	if got := ips(d); len(got) != 2 || got["10.0.0.1"] != firstPodOFPort || got["10.0.0.2"] != firstPodOFPort+1 {
		t.Errorf("local IPs %v", got)
	}

	// A full sync lists a port from before (with its OVS number) and a1's port, which OVS
	// numbered differently; a2 is deleted while the listing runs, so it is left out although
	// OVS still showed it.
	d.beginListing()
	d.forget(a2, "ecv2")
	d.endListing(map[string]LocalIP{
		"ecvold": {IP: netip.MustParseAddr("10.0.0.9"), VLAN: 100, OFPort: 7},
		"ecv1":   {IP: netip.MustParseAddr("10.0.0.1"), VLAN: 100, OFPort: 1005},
		"ecv2":   {IP: netip.MustParseAddr("10.0.0.2"), VLAN: 100, OFPort: firstPodOFPort + 1},
	}, map[int]bool{7: true, 1005: true})
	if got := ips(d); len(got) != 2 || got["10.0.0.9"] != 7 || got["10.0.0.1"] != 1005 {
		t.Errorf("after the listing: local IPs %v, want 10.0.0.9→7, 10.0.0.1→1005", got)
	}
	// A failed listing keeps the record.
	d.beginListing()
	d.endListing(nil, nil)
	if got := ips(d); len(got) != 2 {
		t.Errorf("after a failed listing: local IPs %v", got)
	}
	// Gone from OVS: dropped from both the listing and the attachments.
	d.dropPort("ecv1")
	if got := ips(d); len(got) != 1 || got["10.0.0.9"] != 7 {
		t.Errorf("after dropping ecv1: local IPs %v", got)
	}
	if _, ok := d.knownAttachment(a1); ok {
		t.Error("a1 still known after its port was dropped")
	}

	// Leased but never attached: pending until GC or DEL.
	d.prepare(port(a2, "ecv3", "10.0.0.3"))
	if p := d.pendingPorts([]ovs.Port{{Name: "ecvold"}}); len(p) != 1 || p[0].Name != "ecv3" {
		t.Errorf("pending ports %v, want ecv3", p)
	}
	if p := d.pendingPorts([]ovs.Port{{Name: "ecv3"}}); len(p) != 0 {
		t.Errorf("pending ports %v, want none (OVS has ecv3)", p)
	}
}
