package integration

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestIPAMConcurrentExhaustion: 64 goroutines, split over two allocators with their own
// informers (as the scheduler and a node daemon would be), allocate 2,000 IPs from two pools
// holding 1,800 between them. Every IP is claimed at most once, every pod gets at most one IP,
// and every failure is a clear "pool exhausted" refusal.
func TestIPAMConcurrentExhaustion(t *testing.T) {
	cp := harness.Start(t)
	allocs := []*ipam.Allocator{ipamAllocator(t, cp), ipamAllocator(t, cp)}
	ipamNamespace(t, cp, "load", nil, nil)
	pa := rangePool("load-a", "10.20.0.0/16", "10.20.0.10", 1000)
	pb := rangePool("load-b", "10.21.0.0/16", "10.21.0.10", 800, func(s *v1alpha1.IPPoolSpec) {
		s.ExcludeIPs = []string{"10.21.0.20"} // 799 allocatable
	})
	for _, p := range []*v1alpha1.IPPool{pa, pb} {
		ipamPool(t, cp, p, allocs...)
	}
	const pods, workers, capacity = 2000, 64, 1000 + 799
	ann := map[string]string{v1alpha1.AnnotationIPPools: "load-a,load-b"}
	jobs := make(chan int)
	var mu sync.Mutex
	var failures []error
	got := map[string]string{} // pod → IP
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(a *ipam.Allocator) {
			defer wg.Done()
			for i := range jobs {
				pod := memPod("load", fmt.Sprintf("pod-%04d", i), ann)
				c, err := a.Allocate(cp.Ctx, ipam.Request{Pod: pod})
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					got[pod.Name] = c.Spec.IP
				}
				mu.Unlock()
			}
		}(allocs[w%2])
	}
	start := time.Now()
	for i := 0; i < pods; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d allocations (%d refused) in %s", pods, len(failures), time.Since(start))

	if len(got) != capacity || len(failures) != pods-capacity {
		t.Fatalf("allocated %d (want %d), failed %d (want %d); first failure: %v", len(got), capacity, len(failures), pods-capacity, first(failures))
	}
	for _, err := range failures {
		if ipam.ReasonOf(err) != ipam.ReasonPoolExhausted || !strings.Contains(err.Error(), "pool exhausted") || !strings.Contains(err.Error(), "load-b") {
			t.Fatalf("failure is not a clear pool-exhausted refusal: %v", err)
		}
	}
	seen := map[string]bool{}
	for pod, ip := range got {
		if seen[ip] {
			t.Fatalf("IP %s given twice (again to %s)", ip, pod)
		}
		seen[ip] = true
	}
	claims := claimsByIP(t, cp) // fails on duplicates in the apiserver
	if len(claims) != capacity {
		t.Fatalf("apiserver holds %d claims, want %d", len(claims), capacity)
	}
	ra, _ := ipam.ParseRanges(&pa.Spec)
	rb, _ := ipam.ParseRanges(&pb.Spec)
	for ip, c := range claims {
		a := netip.MustParseAddr(ip)
		if (c.Spec.Pool == "load-a" && !ra.Contains(a)) || (c.Spec.Pool == "load-b" && !rb.Contains(a)) {
			t.Fatalf("claim %s of pool %s is outside its pool", ip, c.Spec.Pool)
		}
		if c.Spec.Mode != v1alpha1.ModeEphemeral || c.Status.Phase != v1alpha1.PhaseReserved {
			t.Fatalf("claim %s: mode %s phase %s, want Ephemeral Reserved", ip, c.Spec.Mode, c.Status.Phase)
		}
	}
	for _, a := range allocs {
		harness.Eventually(t, 10*time.Second, func() (bool, error) {
			return a.Free("load-a")+a.Free("load-b") == 0, nil
		}, "allocators to report no free IP")
		if err := a.Check(memPod("load", "one-more", ann), nil); ipam.ReasonOf(err) != ipam.ReasonPoolExhausted {
			t.Errorf("Check after exhaustion: want PoolExhausted, got %v", err)
		}
	}
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}
