package locations

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

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

// BenchmarkFollowerUpdate measures one node's slice of 30 IPs replaced with one IP changed, in a
// table of 5000 such slices: what a follower spends per location change.
func BenchmarkFollowerUpdate(b *testing.B) {
	const nodes, perNode = 5000, 30
	f := NewFromListerWatcher(nil, Options{OnChange: func(Change) {}})
	states := make([]sliceState, nodes)
	for n := range nodes {
		st := sliceState{name: fmt.Sprintf("node-%d", n), node: fmt.Sprintf("node-%d", n),
			tunnel: netip.AddrFrom4([4]byte{172, 16, byte(n >> 8), byte(n)}), written: t0}
		for i := range perNode {
			k := n*perNode + i
			st.entries = append(st.entries, entry{ip: netip.AddrFrom4([4]byte{10, byte(64 + k>>16), byte(k >> 8), byte(k)}), vlan: 100})
		}
		states[n] = st
		f.set(st.name, &st)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		st := states[i%nodes]
		next := st
		next.entries = slices.Clone(st.entries)
		next.entries[i%perNode].ip = netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		next.written = t0.Add(time.Duration(i) * time.Microsecond)
		f.set(next.name, &next)
	}
}
