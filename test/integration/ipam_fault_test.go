package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestIPAMFaults: while 16 workers allocate (sticky StatefulSet pods recreated on other nodes,
// ephemeral pods that live, die observed or die unobserved, ephemeral claims whose pod never
// existed), the IP controller — the real binary, as a child process — is SIGKILLed and started
// again five times (each new process must take the leader-election Lease over first) and the
// apiserver is restarted once. Afterwards: no IP held twice, every sticky pod still holds its
// first IP, and once GC converged, ephemeral claims match the live ephemeral pods exactly.
func TestIPAMFaults(t *testing.T) {
	start := time.Now()
	bin := buildIPController(t)
	t.Logf("ip-controller built in %s", time.Since(start).Round(time.Millisecond))
	rcp := harness.StartRestartable(t)
	cp := rcp.ControlPlane
	nodes := cp.CreateNodes(t, harness.TwoDatacenters(2))
	allocs := []*ipam.Allocator{ipamAllocator(t, cp), ipamAllocator(t, cp)}
	ipamNamespace(t, cp, "fault", nil, nil)
	// The pool is sized so that the ghosts leaked while a killed leader's Lease runs out (no GC
	// for up to the lease duration, five times) cannot exhaust it: exhaustion is not what this
	// test looks for; duplicates, losses and leaks after convergence are.
	ipamPool(t, cp, rangePool("fault", "10.90.0.0/16", "10.90.0.10", 16000, func(s *v1alpha1.IPPoolSpec) { s.Default = true }), allocs...)
	const stickyPods = 24
	set := ipamStatefulSet(t, cp, "fault", "db", stickyPods, nil)

	ctx, stopLoad := context.WithCancel(cp.Ctx)
	defer stopLoad()

	// retry keeps calling f through apiserver and controller outages, as the scheduler and the CNI
	// daemon would; refusals are not retried. Workers finish the step they are in after the load
	// stops (ctx), so the test's record of live pods stays exact.
	var transient atomic.Int64
	retry := func(f func() error) error {
		for {
			err := f()
			if err == nil || ipam.ReasonOf(err) != "" || cp.Ctx.Err() != nil {
				return err
			}
			transient.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}
	createPod := func(name string, owner *metav1.OwnerReference) (*corev1.Pod, error) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "fault", Name: name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app"}}},
		}
		if owner != nil {
			p.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		var created *corev1.Pod
		err := retry(func() (err error) {
			created, err = cp.Kube.CoreV1().Pods("fault").Create(cp.Ctx, p, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) { // created before a connection was cut
				created, err = cp.Kube.CoreV1().Pods("fault").Get(cp.Ctx, name, metav1.GetOptions{})
			}
			return err
		})
		return created, err
	}
	deletePod := func(p *corev1.Pod) error {
		return retry(func() error {
			err := cp.Kube.CoreV1().Pods("fault").Delete(cp.Ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &p.UID}})
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				return nil
			}
			return err
		})
	}
	allocate := func(a *ipam.Allocator, pod *corev1.Pod, phase v1alpha1.ClaimPhase) (*v1alpha1.IPClaim, error) {
		var c *v1alpha1.IPClaim
		err := retry(func() (err error) {
			c, err = a.Allocate(cp.Ctx, ipam.Request{Pod: pod, Node: nodes[rand.IntN(len(nodes))], Phase: phase, ContainerID: "c-" + string(pod.UID)})
			return err
		})
		return c, err
	}

	var mu sync.Mutex
	stickyIP := map[string]string{}         // sticky pod → the IP it got first
	liveEphemeral := map[types.UID]string{} // live ephemeral pod UID → IP
	failures := []error{}
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	var allocated atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			a := allocs[w%2]
			for i := 0; ctx.Err() == nil; i++ {
				switch {
				case w < 6: // sticky: create db-k, allocate, delete, recreate elsewhere, allocate again
					name := fmt.Sprintf("db-%d", w*4+i%4) // 6 workers × 4 pods = stickyPods
					pod, err := createPod(name, setOwner("db", set.UID))
					if err != nil {
						fail(err)
						return
					}
					c, err := allocate(a, pod, v1alpha1.PhaseBound)
					if err != nil {
						fail(fmt.Errorf("sticky %s: %w", name, err))
						return
					}
					allocated.Add(1)
					mu.Lock()
					if prev, ok := stickyIP[name]; ok && prev != c.Spec.IP {
						failures = append(failures, fmt.Errorf("sticky pod %s moved from IP %s to %s", name, prev, c.Spec.IP))
					} else if !ok {
						stickyIP[name] = c.Spec.IP
					}
					mu.Unlock()
					if err := deletePod(pod); err != nil {
						fail(err)
						return
					}
				case w < 12: // ephemeral API pods: half stay, half are deleted
					pod, err := createPod(fmt.Sprintf("web-%d-%d", w, i), nil)
					if err != nil {
						fail(err)
						return
					}
					c, err := allocate(a, pod, v1alpha1.PhaseReserved)
					if err == nil {
						c, err = allocate(allocs[(w+1)%2], pod, v1alpha1.PhaseBound) // the "node daemon" binds
					}
					if err != nil {
						fail(fmt.Errorf("ephemeral %s: %w", pod.Name, err))
						return
					}
					allocated.Add(1)
					if i%2 == 0 {
						mu.Lock()
						liveEphemeral[pod.UID] = c.Spec.IP
						mu.Unlock()
					} else if err := deletePod(pod); err != nil {
						fail(err)
						return
					}
				default: // claims of pods that never existed (DEL never came): GC must free them
					if _, err := allocate(a, memPod("fault", fmt.Sprintf("ghost-%d-%d", w, i), nil), v1alpha1.PhaseBound); err != nil {
						fail(fmt.Errorf("ghost: %w", err))
						return
					}
					allocated.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(w)
	}

	// Faults: the ip-controller process is SIGKILLed and started again (each run must take the
	// Lease over before it is killed, so every run did some work); the apiserver restarts once,
	// under a running controller.
	// The workers leak claims (ghosts) far faster than a cluster would: the controller gets the
	// harness clients' request rate, not its production default. Leader election keeps room for
	// a slow renew (6 s) while the apiserver shares two cores with this load; a run that still
	// loses its Lease exits and is started again (counted below).
	ctrl := startIPControllerProcess(t, cp, bin, "--v=2", "--kube-api-qps=1000", "--kube-api-burst=2000",
		"--leader-elect-lease-duration=8s", "--leader-elect-renew-deadline=6s", "--leader-elect-retry-period=500ms",
		"--gc-interval=200ms", "--gc-grace=500ms", "--reservation-window=2s")
	const kills = 5
	selfRestarts := 0
	for round := 0; round < kills; round++ {
		selfRestarts += ctrl.WaitLeading(60 * time.Second)
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond) // let it work a while
		if round == 2 {
			t.Logf("restarting the apiserver (%d allocations so far)", allocated.Load())
			rcp.Restart(t)
			t.Logf("apiserver back")
		}
		id := ctrl.Identity()
		ctrl.Kill()
		t.Logf("SIGKILLed %s (%d allocations so far)", id, allocated.Load())
		ctrl.Start()
	}
	selfRestarts += ctrl.WaitLeading(60 * time.Second)
	t.Logf("%d kills; %d runs exited on their own and were started again", kills, selfRestarts)
	stopLoad()
	wg.Wait()
	t.Logf("%d allocations, %d transient errors retried; load stopped at %s", allocated.Load(), transient.Load(), time.Since(start).Round(time.Millisecond))
	for _, err := range failures {
		t.Error(err)
	}
	if len(stickyIP) == 0 || len(liveEphemeral) == 0 {
		t.Fatalf("the load did too little: %d sticky, %d live ephemeral pods", len(stickyIP), len(liveEphemeral))
	}

	// After GC converged: exactly one claim per live ephemeral pod, every sticky claim intact.
	// (Listing thousands of claims is not free: look once a second, not at every poll.)
	var lastLook time.Time
	var lastErr error
	harness.Eventually(t, 2*time.Minute, func() (bool, error) {
		if time.Since(lastLook) < time.Second {
			return false, lastErr
		}
		lastLook = time.Now()
		ok, err := faultClaimsConverged(t, cp, liveEphemeral, stickyIP)
		lastErr = err
		return ok, err
	}, "claims to converge: no leak, no loss")
	t.Logf("converged at %s", time.Since(start).Round(time.Millisecond))
}

// faultClaimsConverged checks that the ephemeral claims are exactly those of the live ephemeral
// pods (with the IPs they were given) and that every sticky pod still holds its first IP; it
// fails the test on an IP or an owner held twice.
func faultClaimsConverged(t *testing.T, cp *harness.ControlPlane, liveEphemeral map[types.UID]string, stickyIP map[string]string) (bool, error) {
	claims := claimsByIP(t, cp) // fails on an IP or an owner held twice
	eph := 0
	for _, c := range claims {
		if c.Spec.Mode != v1alpha1.ModeEphemeral {
			continue
		}
		eph++
		if ip, ok := liveEphemeral[c.Status.PodUID]; !ok {
			return false, fmt.Errorf("leaked ephemeral claim %s of %s/%s", c.Spec.IP, c.Spec.Owner.PodName, c.Status.PodUID)
		} else if ip != c.Spec.IP {
			return false, fmt.Errorf("live pod %s holds %s but was given %s", c.Spec.Owner.PodName, c.Spec.IP, ip)
		}
	}
	if eph != len(liveEphemeral) {
		return false, fmt.Errorf("%d ephemeral claims for %d live ephemeral pods", eph, len(liveEphemeral))
	}
	for pod, ip := range stickyIP {
		if c := claims[ip]; c == nil || c.Spec.Owner.PodName != pod || c.Spec.Mode != v1alpha1.ModeSticky {
			return false, fmt.Errorf("sticky claim %s of %s lost", ip, pod)
		}
	}
	return true, nil
}
