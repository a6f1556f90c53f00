package integration

import (
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/scheduler-plugins/ippool"
	"github.com/ecloud-io/ecloud/test/benchstat"
	"github.com/ecloud-io/ecloud/test/harness"
)

// scaleIPAM is the allocator (cni/ipam on its own informers, as netd runs it) and the real
// kube-scheduler with the IPPool plugin, started once and measured at several claim counts.
type scaleIPAM struct {
	alloc *ipam.Allocator
	// claims is the allocator's claim informer.
	claims cache.SharedIndexInformer
	round  int
}

// ipamFigures is one measurement of the IPAM and the scheduler.
type ipamFigures struct {
	label      string
	claims     int
	allocP99   time.Duration
	allocN     int
	podsPerSec float64
	pods       int
}

// measureIPAM allocates and releases cfg.allocs IPs of pool scale-0 (16 concurrent) through the
// allocator, then schedules cfg.schedPods pods needing an IP of pool scale-1 with the real
// scheduler (IPPool reserves each pod's IP and writes its claim before binding) and deletes them.
func (e *scaleEnv) measureIPAM(label string) ipamFigures {
	if e.ipam == nil {
		e.ipam = &scaleIPAM{}
		e.ipam.alloc = ipamAllocator(e.tb, e.cp, func(c *ipam.Config) { e.ipam.claims = c.ClaimsInformer })
		e.cp.StartScheduler(e.tb, harness.SchedulerConfig(ippoolScheduler, ippoolBinds), app.WithPlugin(ippool.Name, ippool.New))
	}
	e.ipam.round++
	f := ipamFigures{label: label, claims: len(e.claims)}
	// Wait until the allocator's view holds every claim written so far.
	start := time.Now()
	var held int
	harness.EventuallyEvery(e.tb, 500*time.Millisecond, 5*time.Minute, func() (bool, error) {
		var ok bool
		ok, held = e.ipamCaughtUp()
		return ok, nil
	}, "the allocator's claim informer holding all %d claims", len(e.claims))
	e.logf("scale ipam %-14s the allocator's claim informer holds all %d claims (%.1fs after the load)", label, held, time.Since(start).Seconds())

	var mu sync.Mutex
	var lat []time.Duration
	var claims []*v1alpha1.IPClaim
	e.parallel(e.cfg.allocs, 16, func(i int) error {
		pod := memPod("scale-ipam", fmt.Sprintf("a%d-%d", e.ipam.round, i), map[string]string{v1alpha1.AnnotationIPPools: e.pools[0].Name})
		t0 := time.Now()
		c, err := e.ipam.alloc.Allocate(e.cp.Ctx, ipam.Request{Pod: pod})
		if err != nil {
			return fmt.Errorf("allocate for %s: %w", pod.Name, err)
		}
		mu.Lock()
		lat, claims = append(lat, time.Since(t0)), append(claims, c)
		mu.Unlock()
		return nil
	})
	e.parallel(len(claims), 16, func(i int) error { return e.ipam.alloc.Release(e.cp.Ctx, claims[i], "bench") })
	f.allocP99, f.allocN = benchstat.Percentile(lat, 99), len(lat)

	start = time.Now()
	e.parallel(e.cfg.schedPods, 16, func(i int) error {
		p := ipPoolPod("scale-sched", fmt.Sprintf("s%d-%d", e.ipam.round, i), e.pools[1%len(e.pools)].Name)
		_, err := e.kube.CoreV1().Pods("scale-sched").Create(e.cp.Ctx, p, metav1.CreateOptions{})
		return err
	})
	harness.Eventually(e.tb, 10*time.Minute, func() (bool, error) {
		pods, err := e.kube.CoreV1().Pods("scale-sched").List(e.cp.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" {
				return false, nil
			}
		}
		return len(pods.Items) == e.cfg.schedPods, nil
	}, "%d pods scheduled", e.cfg.schedPods)
	took := time.Since(start)
	f.pods, f.podsPerSec = e.cfg.schedPods, float64(e.cfg.schedPods)/took.Seconds()
	e.cleanSchedRound()
	e.logf("scale ipam %-14s allocate %s (16 concurrent, pool of %d claims); scheduler %d pods in %.1fs = %.1f pods/s",
		label, benchstat.Millis(lat), f.claims/len(e.pools), f.pods, took.Seconds(), f.podsPerSec)
	return f
}

// ipamCaughtUp reports whether the allocator's claim informer holds every claim the benchmark
// wrote, and says how many it holds of them.
func (e *scaleEnv) ipamCaughtUp() (bool, int) {
	e.mu.Lock()
	names := make([]string, len(e.claims))
	for i, c := range e.claims {
		names[i] = c.name
	}
	e.mu.Unlock()
	store := e.ipam.claims.GetStore()
	held := 0
	for _, n := range names {
		if _, ok, _ := store.GetByKey(n); ok {
			held++
		}
	}
	return held == len(names), held
}

// cleanSchedRound deletes the round's pods and their claims.
func (e *scaleEnv) cleanSchedRound() {
	if err := e.kube.CoreV1().Pods("scale-sched").DeleteCollection(e.cp.Ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		e.tb.Fatalf("delete scheduled pods: %v", err)
	}
	sel := fields.OneTermEqualSelector(ipam.FieldOwnerNamespace, "scale-sched").String()
	if err := e.ecloud.IPClaims().DeleteCollection(e.cp.Ctx, metav1.DeleteOptions{}, metav1.ListOptions{FieldSelector: sel}); err != nil {
		e.tb.Fatalf("delete the scheduled pods' claims: %v", err)
	}
	harness.Eventually(e.tb, 2*time.Minute, func() (bool, error) {
		pods, err := e.kube.CoreV1().Pods("scale-sched").List(e.cp.Ctx, metav1.ListOptions{Limit: 1})
		return err == nil && len(pods.Items) == 0, err
	}, "scheduled pods gone")
}
