package integration

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/cni/locrelay"
	"github.com/ecloud-io/ecloud/test/harness"
)

// scaleConfig is the size of `make bench-scale`; every field has a BENCH_SCALE_* variable.
type scaleConfig struct {
	nodes    int // Nodes in two datacenters (BENCH_SCALE_NODES, 5000)
	claims   int // bound IPClaims spread over the nodes and pools (BENCH_SCALE_CLAIMS, 150000)
	pools    int // pools the claims come from (BENCH_SCALE_POOLS, 4)
	simNodes int // simulated nodes following locations the new way (BENCH_SCALE_SIM_NODES, 200)
	// relays are the location relays the new way's nodes follow (BENCH_SCALE_RELAYS, one per 200
	// nodes; 0: every node watches the slices through the apiserver).
	relays int
	// relaySource is where the relays take the locations from (BENCH_SCALE_RELAY_SOURCE): claims
	// (each relay derives them from the IPClaims; the ip-controller writes no slices) or slices.
	relaySource string
	// todaySimNodes simulated nodes each hold every IPClaim (per-claim watch): their number is
	// bounded by this machine's memory (BENCH_SCALE_TODAY_SIM_NODES, 10).
	todaySimNodes int
	// todayMesh is how many nodes have a tunnel endpoint while the per-claim netd runs: its
	// full mesh adds one OVSDB port per node, one ovs-vsctl call each (BENCH_SCALE_TODAY_MESH, 200).
	todayMesh int
	rate      float64       // location changes per second (BENCH_SCALE_RATE, 100)
	duration  time.Duration // of the change load (BENCH_SCALE_SECONDS, 60)
	// schedPods pods are scheduled per scheduler round; allocs allocations per IPAM round.
	schedPods, allocs int
	lowClaims         int // the claims of the item-4 baseline (BENCH_SCALE_LOW_CLAIMS, 1000)
	// Binaries: netd of this tree, netd of the per-claim design, ip-controller.
	netd, todayNetd, ipController string
}

func scaleConfigFromEnv(tb testing.TB) scaleConfig {
	tb.Helper()
	num := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			tb.Fatalf("%s=%q: want a whole number", name, v)
		}
		return n
	}
	c := scaleConfig{
		nodes: num("BENCH_SCALE_NODES", 5000), claims: num("BENCH_SCALE_CLAIMS", 150000), pools: num("BENCH_SCALE_POOLS", 4),
		simNodes: num("BENCH_SCALE_SIM_NODES", 200), todaySimNodes: num("BENCH_SCALE_TODAY_SIM_NODES", 10),
		todayMesh: num("BENCH_SCALE_TODAY_MESH", 200),
		rate:      float64(num("BENCH_SCALE_RATE", 100)), duration: time.Duration(num("BENCH_SCALE_SECONDS", 60)) * time.Second,
		schedPods: num("BENCH_SCALE_SCHED_PODS", 500), allocs: num("BENCH_SCALE_ALLOCS", 500),
		lowClaims: num("BENCH_SCALE_LOW_CLAIMS", 1000),
		netd:      os.Getenv("BENCH_SCALE_NETD"), todayNetd: os.Getenv("BENCH_SCALE_TODAY_NETD"), ipController: os.Getenv("BENCH_SCALE_IP_CONTROLLER"),
	}
	if c.nodes < 4 || c.pools < 1 || c.claims < c.lowClaims || c.todayMesh < 2 || c.rate <= 0 {
		tb.Fatalf("bench-scale: nodes >= 4, pools >= 1, claims >= low claims, today mesh >= 2 and rate > 0, got %+v", c)
	}
	c.todayMesh = min(c.todayMesh, c.nodes)
	c.relays = num("BENCH_SCALE_RELAYS", (c.simNodes+1+199)/200)
	c.relaySource = cmp.Or(os.Getenv("BENCH_SCALE_RELAY_SOURCE"), locrelay.SourceClaims)
	if c.relaySource != locrelay.SourceClaims && c.relaySource != locrelay.SourceSlices {
		tb.Fatalf("BENCH_SCALE_RELAY_SOURCE=%q: claims or slices", c.relaySource)
	}
	for _, b := range []struct{ name, path string }{{"BENCH_SCALE_NETD", c.netd}, {"BENCH_SCALE_TODAY_NETD", c.todayNetd}, {"BENCH_SCALE_IP_CONTROLLER", c.ipController}} {
		if _, err := os.Stat(b.path); err != nil {
			tb.Fatalf("%s=%q: %v (make bench-scale builds it)", b.name, b.path, err)
		}
	}
	return c
}

// TestScaleBench is `make bench-scale` (ECLOUD_BENCH=scale): a real apiserver holding thousands
// of Nodes in two datacenters and a hundred thousand and more bound IPClaims; one real netd (a
// process in a namespace host with its own OVS, userspace datapath) and simulated nodes (the
// client code netd follows locations with, without OVS, goroutines with their own connections)
// follow the locations while they change at a steady rate (sticky IPs moving between nodes,
// claims created bound and deleted). It runs the per-claim design (every node watches every
// IPClaim, one tunnel port per other node) and the location-slice design in one run, and the
// IPAM and scheduler at few and at all claims, and prints the figures per design, then the
// RESULT lines.
func TestScaleBench(t *testing.T) {
	if os.Getenv("ECLOUD_BENCH") != "scale" {
		t.Skip("benchmark: run with make bench-scale (ECLOUD_BENCH=scale)")
	}
	skipUnlessCNIRoot(t)
	cfg := scaleConfigFromEnv(t)
	start := time.Now()
	cp := harness.Start(t)
	env := newScaleEnv(t, cp, cfg)
	var low, high ipamFigures
	env.phase("load nodes and pools", func() { env.createNodes(); env.createPools() })
	env.phase("load low claims", func() { env.loadClaims(cfg.lowClaims) })
	// A first round warms the allocator, the scheduler and the apiserver's caches; only the rounds
	// after it are compared.
	env.phase("ipam warm-up", func() { env.measureIPAM("warm-up") })
	env.phase("ipam at low claims", func() { low = env.measureIPAM(fmt.Sprintf("claims=%d", cfg.lowClaims)) })
	env.phase("load all claims", func() { env.loadClaims(cfg.claims) })
	env.phase("ipam at all claims", func() { high = env.measureIPAM(fmt.Sprintf("claims=%d", cfg.claims)) })
	env.phase("per-claim design", func() { env.runDesign(todayDesign(cfg)) })
	d := locationDesign(cfg)
	env.phase(d.name+" design", func() { env.runDesign(d) })
	env.report(low, high)
	fmt.Printf("scale total %s\n", time.Since(start).Round(time.Second))
}

// phase runs one step of the benchmark and prints how long it took (where a run's time goes).
func (e *scaleEnv) phase(name string, fn func()) {
	start := time.Now()
	fn()
	fmt.Printf("scale phase %q took %s\n", name, time.Since(start).Round(100*time.Millisecond))
}
