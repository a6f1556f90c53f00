package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/benchstat"
	"github.com/ecloud-io/ecloud/test/harness"
)

// ipamBenchShape is one load shape: workloads × podsPerWorkload pods, allocated by `workers`
// goroutines (one per workload when workers is 0), or, with rate set, open loop: one allocation
// starts every 1/rate seconds whatever the previous ones do (how pods arrive in a cluster), and
// each one's latency counts from its due start, so a stalled apiserver cannot hide its backlog.
type ipamBenchShape struct {
	name            string
	workers         int
	workloads       int
	podsPerWorkload int
	rate            float64 // allocations per second, open loop; 0: closed loop
}

// ipamBenchResult is what one shape measured.
type ipamBenchResult struct {
	allocsPerSec, releasesPerSec float64
	// allocsPerCPUSec is allocations per CPU-second of this whole process (apiserver, etcd and
	// allocator all run in it): what the shape would reach per dedicated core on a shared machine.
	allocsPerCPUSec float64
	p50, p99        time.Duration
	// createCalls, createP50 and createP99: the create calls to the apiserver (more calls than
	// allocations means IPs lost to AlreadyExists) and their latency alone.
	createCalls          int
	createP50, createP99 time.Duration
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIPAM allocates and then releases IPs through the real apiserver with the allocator at
// concurrency 1, 16 and 64, and in the "100 workloads × 10 pods" shape (one goroutine per
// Deployment, its 10 pods one after the other). Each shape runs once whatever b.N (use
// -benchtime=1x); `make bench-ipam` prints the RESULT lines last: allocations/s of the 100×10
// shape, and the p99 of the shape with the worst p99. Pods exist only in memory: the cost
// measured is the allocator's and the apiserver's.
func BenchmarkIPAM(b *testing.B) {
	cp := harness.Start(b)
	timed := &timedClaims{ClaimClient: cp.Ecloud.IPClaims()}
	a := ipamAllocator(b, cp, func(c *ipam.Config) { c.Claims = timed })
	ipamNamespace(b, cp, "bench", nil, nil)
	ipamPool(b, cp, rangePool("bench", "10.96.0.0/16", "10.96.0.10", 8192, func(s *v1alpha1.IPPoolSpec) { s.Default = true }), a)
	shapes := []ipamBenchShape{
		{"concurrency=1", 1, 1, 300, 0},
		{"concurrency=16", 16, 1, 2000, 0},
		{"concurrency=64", 64, 1, 2000, 0},
		{"workloads=100x10", 0, 100, 10, 0},
		// The throughput goal as an arrival rate: p99 at 500 allocations/s.
		{"rate=500/s", 0, 1, 2500, 500},
	}
	results := map[string]ipamBenchResult{}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			r := runIPAMBenchShape(b, cp, a, timed, s)
			results[s.name] = r
			b.ReportMetric(r.allocsPerSec, "allocs/s")
			b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(r.releasesPerSec, "releases/s")
		})
	}
	out := os.Stdout
	for _, s := range shapes {
		r := results[s.name]
		fmt.Fprintf(out, "ipam %-18s allocs/s=%7.1f p50=%6.1fms p99=%6.1fms releases/s=%7.1f allocs/cpu-s=%7.1f creates=%d create-p50=%6.1fms create-p99=%6.1fms\n",
			s.name, r.allocsPerSec, ms(r.p50), ms(r.p99), r.releasesPerSec, r.allocsPerCPUSec, r.createCalls, ms(r.createP50), ms(r.createP99))
	}
	// Throughput is the 100×10 shape's; the p99 is the worst of all shapes, never a chosen one.
	headline := results["workloads=100x10"]
	worst := shapes[0].name
	for _, s := range shapes {
		if results[s.name].p99 > results[worst].p99 {
			worst = s.name
		}
	}
	fmt.Fprintf(out, "ipam allocs/s of workloads=100x10; p99 of the worst shape: %s\n", worst)
	fmt.Fprintf(out, "RESULT ipam_alloc_p99_at_500_per_sec_ms=%.1f\n", ms(results["rate=500/s"].p99))
	fmt.Fprintf(out, "RESULT ipam_allocs_per_cpu_sec=%.0f\n", headline.allocsPerCPUSec)
	fmt.Fprintf(out, "RESULT ipam_allocs_per_sec=%.0f\n", headline.allocsPerSec)
	fmt.Fprintf(out, "RESULT ipam_alloc_p99_ms=%.1f\n", ms(results[worst].p99))
}

// timedClaims records how long each create call to the apiserver took, to tell the apiserver's
// share of an allocation's latency from the allocator's own.
type timedClaims struct {
	ipam.ClaimClient
	mu      sync.Mutex
	creates []time.Duration
}

func (t *timedClaims) Create(ctx context.Context, c *v1alpha1.IPClaim, o metav1.CreateOptions) (*v1alpha1.IPClaim, error) {
	t0 := time.Now()
	out, err := t.ClaimClient.Create(ctx, c, o)
	d := time.Since(t0)
	t.mu.Lock()
	t.creates = append(t.creates, d)
	t.mu.Unlock()
	return out, err
}

// take returns the create latencies recorded since the last call.
func (t *timedClaims) take() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.creates
	t.creates = nil
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runIPAMBenchShape(b *testing.B, cp *harness.ControlPlane, a *ipam.Allocator, timed *timedClaims, s ipamBenchShape) ipamBenchResult {
	type job struct{ pods []*corev1.Pod }
	var jobs []job
	for w := 0; w < s.workloads; w++ {
		name := fmt.Sprintf("%s-%d", "app", w)
		hash := string(uuid.NewUUID())[:8]
		var j job
		for i := 0; i < s.podsPerWorkload; i++ {
			p := memPod("bench", fmt.Sprintf("%s-%s-%d", name, hash, i), nil)
			p.Labels = map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: hash}
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name + "-" + hash, Controller: ptr.To(true)}}
			j.pods = append(j.pods, p)
		}
		jobs = append(jobs, j)
	}
	if s.workers > 0 { // one pool of pods shared by the workers
		var all []*corev1.Pod
		for _, j := range jobs {
			all = append(all, j.pods...)
		}
		jobs = nil
		for w := 0; w < s.workers; w++ {
			var j job
			for i := w; i < len(all); i += s.workers {
				j.pods = append(j.pods, all[i])
			}
			jobs = append(jobs, j)
		}
	}
	var mu sync.Mutex
	var lat []time.Duration
	var claims []*v1alpha1.IPClaim
	run := func(f func(j job)) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for _, j := range jobs {
			wg.Add(1)
			go func() { defer wg.Done(); f(j) }()
		}
		wg.Wait()
		return time.Since(start)
	}
	b.ResetTimer()
	timed.take()
	cpu0 := processCPU()
	allocate := func(p *corev1.Pod, due time.Time) bool {
		c, err := a.Allocate(cp.Ctx, ipam.Request{Pod: p})
		d := time.Since(due)
		if err != nil {
			b.Errorf("allocate %s: %v", p.Name, err)
			return false
		}
		mu.Lock()
		lat, claims = append(lat, d), append(claims, c)
		mu.Unlock()
		return true
	}
	allocTime := run(func(j job) {
		if s.rate > 0 { // open loop: start each allocation on time, in its own goroutine
			var wg sync.WaitGroup
			start := time.Now()
			for i, p := range j.pods {
				due := start.Add(time.Duration(float64(i) / s.rate * float64(time.Second)))
				time.Sleep(time.Until(due))
				wg.Add(1)
				go func() { defer wg.Done(); allocate(p, due) }()
			}
			wg.Wait()
			return
		}
		for _, p := range j.pods {
			if !allocate(p, time.Now()) {
				return
			}
		}
	})
	allocCPU := processCPU() - cpu0
	creates := timed.take()
	byPod := map[string]*v1alpha1.IPClaim{}
	for _, c := range claims {
		byPod[c.Spec.Owner.PodName] = c
	}
	releaseTime := run(func(j job) {
		for _, p := range j.pods {
			if c := byPod[p.Name]; c != nil {
				if err := a.Release(cp.Ctx, c, "bench"); err != nil {
					b.Errorf("release %s: %v", c.Name, err)
				}
			}
		}
	})
	b.StopTimer()
	// Wait until the allocator's view has caught up, so the next shape starts from an empty pool.
	harness.Eventually(b, 60*time.Second, func() (bool, error) { return a.Free("bench") == 8192, nil }, "bench pool free again")
	return ipamBenchResult{
		allocsPerSec:    float64(len(claims)) / allocTime.Seconds(),
		releasesPerSec:  float64(len(claims)) / releaseTime.Seconds(),
		allocsPerCPUSec: float64(len(claims)) / max(allocCPU.Seconds(), 1e-3),
		p50:             benchstat.Percentile(lat, 50), p99: benchstat.Percentile(lat, 99),
		createCalls: len(creates), createP50: benchstat.Percentile(creates, 50), createP99: benchstat.Percentile(creates, 99),
	}
}
