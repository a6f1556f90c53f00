package locations

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/ecloud-io/ecloud/test/benchstat"
)

// BenchmarkFollowerMemory measures the follower's table at 150k IPs in 5000 nodes' slices of
// 30 (-short: 15k in 500): the heap it keeps once the listed objects are gone, per IP, and
// the time of the list's Replace.
func BenchmarkFollowerMemory(b *testing.B) {
	nodes, perNode := 5000, 30
	if testing.Short() {
		nodes = 500
	}
	list := make([]any, 0, nodes)
	for n := range nodes {
		ips := make([]string, perNode)
		for i := range ips {
			k := n*perNode + i
			ips[i] = netip.AddrFrom4([4]byte{10, byte(64 + k>>16), byte(k >> 8), byte(k)}).String()
		}
		list = append(list, slice(fmt.Sprintf("node-%d-0", n), fmt.Sprintf("node-%d", n),
			netip.AddrFrom4([4]byte{172, 16, byte(n >> 8), byte(n)}).String(), 1, nw("p", 100, ips...)))
	}
	b.ReportAllocs()
	var kept float64
	for range b.N {
		f := NewFromListerWatcher(nil, Options{})
		base := benchstat.HeapBytes()
		if err := (store{f}).Replace(list, "1"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		kept = float64(benchstat.HeapBytes() - base)
		runtime.KeepAlive(f)
		b.StartTimer()
	}
	b.ReportMetric(kept/(1<<20), "table-MiB")
	b.ReportMetric(kept/float64(nodes*perNode), "B/IP")
	runtime.KeepAlive(list)
}
