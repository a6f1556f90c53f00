package netd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/locations"
)

// scaleCluster is the location table of a large cluster: ips IPs spread round-robin over nodes
// and four /14 pools (VLAN 100–103), as make bench-scale lays them out.
type scaleCluster struct {
	nodes, ips int
}

func (c scaleCluster) poolCIDR(k int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(64 + 4*k), 0, 0}), 14)
}

func (c scaleCluster) ip(i int) netip.Addr {
	k, n := i%4, uint32(i/4+1)
	b := c.poolCIDR(k).Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (c scaleCluster) location(i, node int) locations.Location {
	return locations.Location{Node: fmt.Sprintf("node-%d", node), TunnelIP: netip.AddrFrom4([4]byte{172, 16, byte(node >> 8), byte(node)}), VLAN: 100 + i%4}
}

func (c scaleCluster) pools() cache.Store {
	st := cache.NewStore(cache.MetaNamespaceKeyFunc)
	for k := range 4 {
		_ = st.Add(&v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%d", k), CreationTimestamp: metav1.Unix(int64(k), 0)},
			Spec: v1alpha1.IPPoolSpec{CIDR: c.poolCIDR(k).String(), VLAN: int32(100 + k)}})
	}
	return st
}

// scaleLocations is c's location table.
func scaleLocations(c scaleCluster) *fakeLocations {
	locs := newFakeLocations()
	for i := range c.ips {
		locs.set(c.ip(i), c.location(i, i%c.nodes))
	}
	return locs
}

// scaleDaemon is a daemon whose flows come from locs (node 0 is this node) and go to sw, with
// its first flow sync (a replace) done.
func scaleDaemon(tb testing.TB, c scaleCluster, locs *fakeLocations, sw *flowSwitch) *Daemon {
	d := newRecordDaemon()
	d.cfg = Config{NodeName: "node-0", Bridge: "br-int", ResyncPeriod: time.Hour, FlowReconcilePeriod: time.Hour}
	d.sw, d.locs, d.pools = sw, locs, c.pools()
	d.gwMAC, _ = net.ParseMAC(gatewayMAC)
	d.view = &datapathView{gatewayOFPort: 1, tunnelOFPort: 2}
	if err := d.syncDatapath(context.Background(), false); err != nil {
		tb.Fatal(err)
	}
	return d
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	return heapBytes()
}

// BenchmarkFlowSync measures netd's flow syncs at 150k remote IPs on 5000 nodes: a light
// sync after 100 IPs moved (per op), the live heap it leaves, and the peak heap of the full
// replace that starts the daemon. -short: 15k IPs on 500 nodes.
func BenchmarkFlowSync(b *testing.B) {
	c := scaleCluster{nodes: 5000, ips: 150000}
	if testing.Short() {
		c = scaleCluster{nodes: 500, ips: 15000}
	}
	locs := scaleLocations(c)
	base := liveHeap() // what netd keeps beyond the location table
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	sw := &flowSwitch{discard: true}
	d := scaleDaemon(b, c, locs, sw)
	close(stop)
	wg.Wait()
	start := liveHeap()
	ctx := context.Background()
	move := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for range 100 {
			i := move % c.ips
			move += 7919 // a prime: spread over pools and nodes
			ip := c.ip(i)
			locs.set(ip, c.location(i, (i+move)%c.nodes))
			d.markChanged([]netip.Addr{ip}, false)
		}
		if err := d.syncDatapath(ctx, false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(start-base)/(1<<20), "live-MiB")
	b.ReportMetric(float64(peak.Load()-base)/(1<<20), "full-peak-MiB")
	runtime.KeepAlive(d)
}
