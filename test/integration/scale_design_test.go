package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/test/benchstat"
	"github.com/ecloud-io/ecloud/test/harness"
)

// scaleDesign is one way the locations of pod IPs reach the nodes.
type scaleDesign struct {
	name string
	// netd is the binary of the real netd.
	netd string
	// mesh: nodes [0, mesh) have a tunnel endpoint during the phase; the change load moves and
	// creates IPs on them, so that the real netd has a flow to change for each.
	mesh     int
	simNodes int
	// follow starts one simulated node's location follower on its own connection: seen gets
	// every location it learns (node "" = the IP is gone); held is the objects it holds, synced
	// whether its first listing is complete.
	follow func(ctx context.Context, cfg *rest.Config, node string, seen func(ip, node string)) (held func() int, synced func() bool, err error)
	// before runs before the real netd starts, after the phase's nodes have addresses.
	before func(e *scaleEnv)
	// netdArgs are the real netd's extra flags (after before ran).
	netdArgs func() []string
	// locationWatchers is how many apiserver watches serve the nodes' locations.
	locationWatchers func() int
}

// designFigures is what one design's phase measured.
type designFigures struct {
	name                         string
	simNodes, mesh, claims       int
	simP99, netdP99              time.Duration
	simN, netdN, writes          int
	simMissing, netdMissing      int
	netdRSS, netdHWM, vswitchRSS float64
	flows                        int
	heldPerNode                  int
	locationWatchers             int
	apiserverCPUPer1kPerNode     float64 // seconds
	simCPUPer1kPerNode           float64
	relayCPUPer1kPerNode         float64
	joinPortChanges              int
	coldSync                     time.Duration
	firstReady                   time.Duration
	// failed says why the design's netd did not start ("" when it ran).
	failed string
}

func (d *scaleDesign) extraArgs() []string {
	if d.netdArgs == nil {
		return nil
	}
	return d.netdArgs()
}

// runDesign runs one design's phase: the real netd and the simulated nodes follow the
// locations, then the change load, a node joining and a cold restart of netd.
func (e *scaleEnv) runDesign(d *scaleDesign) {
	if d == nil {
		return
	}
	f := &designFigures{name: d.name, simNodes: d.simNodes, mesh: d.mesh}
	e.designs = append(e.designs, f)
	e.setAddresses(0, d.mesh, true)
	if e.host == nil {
		e.host = e.newScaleHost(0)
	}
	h := e.host
	// A clean bridge: the previous design's ports and flows go.
	_ = shOK("ovs-vsctl", "--db="+h.ovs.DB(), "--if-exists", "del-br", "br-int")
	if d.before != nil {
		d.before(e)
	}
	f.claims = len(e.claims)
	profDir := os.Getenv("BENCH_SCALE_CPU_PROFILE_DIR")
	netdArgs := d.extraArgs()
	if profDir != "" && d.name != todayDesignName { // today's netd predates --profiling
		netdArgs = append(netdArgs, "--profiling")
	}
	h.start(d.netd, netdArgs...)
	var err error
	if f.firstReady, err = h.ready(5 * time.Minute); err != nil {
		// The other design's figures still count: this one's are reported as failed.
		f.failed = err.Error()
		e.logf("scale %s netd failed to start, the design's phase is skipped: %v", d.name, err)
		h.stop()
		e.setAddresses(0, d.mesh, false)
		return
	}
	e.logf("scale %s netd ready after %.1fs (%d claims, %d nodes meshed), %d flows", d.name, f.firstReady.Seconds(), f.claims, d.mesh, h.flowCount())

	tr := newLocTracker(d.simNodes)
	ctx, cancel := context.WithCancel(e.cp.Ctx)
	defer cancel()
	held, syncTime := e.startSims(ctx, d, tr)
	f.heldPerNode = held
	f.locationWatchers = d.simNodes + 1
	if d.locationWatchers != nil {
		f.locationWatchers = d.locationWatchers()
	}
	e.logf("scale %s simulated nodes=%d synced in %.1fs, objects held per node %d, apiserver watches serving locations %d",
		d.name, d.simNodes, syncTime.Seconds(), held, f.locationWatchers)

	stopMon := h.monitor(tr.netdSaw)
	netdCPU0 := processCPUOf(h.pid())
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		e.tb.Fatalf("cpu profile: %v", err)
	}
	var netdProf <-chan []byte
	if profDir != "" && d.name != todayDesignName {
		netdProf = h.cpuProfile(e.cfg.duration)
	}
	tr.active.Store(true)
	writes, errs := e.churn(d, tr)
	pprof.StopCPUProfile()
	netdCPU := processCPUOf(h.pid()) - netdCPU0
	// Stragglers: wait until every sighting is in, at most 30s.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s, n := tr.outstanding(); s == 0 && n == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	tr.active.Store(false)
	stopMon()
	f.simMissing, f.netdMissing = tr.outstanding()
	simLat, netdLat, _ := tr.latencies()
	f.writes, f.simN, f.netdN = writes, len(simLat), len(netdLat)
	f.simP99, f.netdP99 = benchstat.Percentile(simLat, 99), benchstat.Percentile(netdLat, 99)
	e.logf("scale %s changes=%d (%.0f/s for %s, %d refused) sim-nodes %s missing=%d; real netd %s missing=%d",
		d.name, writes, e.cfg.rate, e.cfg.duration, errs, benchstat.Millis(simLat), f.simMissing, benchstat.Millis(netdLat), f.netdMissing)
	if e.ipControllerPID > 0 {
		e.logf("scale %s ip-controller: %s", d.name, e.ipControllerSliceMetrics())
	}
	if profDir != "" {
		// The CPU profiles of the change load, for go tool pprof: the test process's, labelled
		// by role, and the real netd's.
		profiles := map[string][]byte{"scale-" + d.name + ".pprof": prof.Bytes()}
		if netdProf != nil {
			if b := <-netdProf; b != nil {
				profiles["scale-"+d.name+"-netd.pprof"] = b
			}
		}
		for name, b := range profiles {
			path := filepath.Join(profDir, name)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				e.tb.Fatalf("write %s: %v", path, err)
			}
			e.logf("scale %s cpu profile of the change load: %s", d.name, path)
		}
	}
	byRole := cpuByRole(e.tb, prof.Bytes())
	perK := float64(writes) / 1000
	f.apiserverCPUPer1kPerNode = byRole[""].Seconds() / perK / float64(max(d.simNodes, 1))
	f.simCPUPer1kPerNode = byRole["sim"].Seconds() / perK / float64(max(d.simNodes, 1))
	f.relayCPUPer1kPerNode = byRole["location-relay"].Seconds() / perK / float64(max(d.simNodes, 1))
	e.logf("scale %s cpu during changes: apiserver+etcd %.1fs, location relays %.1fs, simulated nodes %.1fs, change writer %.1fs, real netd %.1fs; per 1000 changes per simulated node: apiserver %.4fs, relay %.4fs, follower %.4fs",
		d.name, byRole[""].Seconds(), byRole["location-relay"].Seconds(), byRole["sim"].Seconds(), byRole["churn"].Seconds(), netdCPU.Seconds(),
		f.apiserverCPUPer1kPerNode, f.relayCPUPer1kPerNode, f.simCPUPer1kPerNode)
	runtime.GC()
	f.netdRSS, f.netdHWM = rssMiB(h.pid()), procStatusMiB(h.pid(), "VmHWM:")
	f.vswitchRSS, f.flows = rssMiB(h.daemonPID("ovs-vswitchd")), h.flowCount()
	e.logf("scale %s real netd RSS %.0f MiB (peak %.0f), ovs-vswitchd RSS %.0f MiB, %d flows on br-int, %d ports",
		d.name, f.netdRSS, f.netdHWM, f.vswitchRSS, f.flows, len(h.ports()))
	cancel()

	f.joinPortChanges = e.nodeJoin(d)
	f.coldSync = e.coldSync(d)
	h.stop()
	e.dropGone()
}

// startSims starts the design's simulated nodes (nodes mesh-1, mesh-2, …, not the real netd's)
// and waits until every one has synced; it returns the objects one of them holds and the time
// all took to sync.
func (e *scaleEnv) startSims(ctx context.Context, d *scaleDesign, tr *locTracker) (int, time.Duration) {
	start := time.Now()
	var helds []func() int
	var synceds []func() bool
	var mu sync.Mutex
	e.parallel(d.simNodes, 8, func(i int) error {
		cfg := rest.CopyConfig(e.cp.Config)
		// Its own connection, as a node has: a custom dialer keeps client-go from sharing one
		// transport between the simulated nodes.
		cfg.Dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
		cfg.QPS, cfg.Burst = 50, 100
		node := e.nodes[len(e.nodes)-1-i].name
		var held func() int
		var synced func() bool
		var err error
		pprof.Do(ctx, pprof.Labels("role", "sim"), func(ctx context.Context) {
			held, synced, err = d.follow(ctx, cfg, node, func(ip, n string) { tr.simSaw(i, ip, n) })
		})
		if err != nil {
			return fmt.Errorf("simulated node %s: %w", node, err)
		}
		mu.Lock()
		helds, synceds = append(helds, held), append(synceds, synced)
		mu.Unlock()
		return nil
	})
	harness.Eventually(e.tb, 10*time.Minute, func() (bool, error) {
		for _, s := range synceds {
			if !s() {
				return false, nil
			}
		}
		return true, nil
	}, "%d simulated nodes synced", d.simNodes)
	if len(helds) == 0 {
		return 0, time.Since(start)
	}
	return helds[0](), time.Since(start)
}

// churn writes rate location changes per second for the configured time, open loop (each
// write starts on time in its own goroutine): a third sticky IPs moving to another node, a third
// claims created bound, a third claims deleted, all on nodes of the mesh other than the real
// netd's. It returns the writes sent and how many the apiserver refused.
func (e *scaleEnv) churn(d *scaleDesign, tr *locTracker) (writes, refused int) {
	rng := rand.New(rand.NewPCG(1, uint64(len(e.designs))))
	e.mu.Lock()
	var sticky, deletable []*scaleClaim
	for _, c := range e.claims {
		switch {
		case c.sticky:
			sticky = append(sticky, c)
		case c.node > 0 && c.node < d.mesh:
			deletable = append(deletable, c)
		}
	}
	e.mu.Unlock()
	target := func() int { return 1 + rng.IntN(d.mesh-1) }
	// created: claims the change load created, deletable once their create has succeeded.
	var createdMu sync.Mutex
	var created []*scaleClaim
	n := int(e.cfg.rate * e.cfg.duration.Seconds())
	var wg sync.WaitGroup
	var bad atomic.Int64
	start := time.Now()
	pprof.Do(e.cp.Ctx, pprof.Labels("role", "churn"), func(ctx context.Context) {
		for i := 0; i < n; i++ {
			due := start.Add(time.Duration(float64(i) / e.cfg.rate * float64(time.Second)))
			time.Sleep(time.Until(due))
			var op func() error
			var w *locWrite
			switch i % 3 {
			case 0: // a sticky IP moves
				c := sticky[rng.IntN(len(sticky))]
				to := target()
				for to == c.node {
					to = target()
				}
				c.node = to
				name := e.nodes[to].name
				w = tr.write(c.ip, name, true)
				op = func() error {
					_, err := e.ecloud.IPClaims().Patch(ctx, c.name, types.MergePatchType, []byte(`{"status":{"node":"`+name+`"}}`), metav1.PatchOptions{})
					return err
				}
			case 1: // a pod starts: its claim is created bound (and may end once it exists)
				e.mu.Lock()
				c := e.newClaimLocked(rng.IntN(e.cfg.pools), target(), false)
				e.claims = append(e.claims, c)
				e.mu.Unlock()
				w = tr.write(c.ip, e.nodes[c.node].name, true)
				obj := e.claimObject(c)
				op = func() error {
					_, err := e.ecloud.IPClaims().Create(ctx, obj, metav1.CreateOptions{})
					if err == nil {
						createdMu.Lock()
						created = append(created, c)
						createdMu.Unlock()
					}
					return err
				}
			default: // a pod ends: its claim goes
				createdMu.Lock()
				deletable, created = append(deletable, created...), created[:0]
				createdMu.Unlock()
				k := rng.IntN(len(deletable))
				c := deletable[k]
				deletable[k] = deletable[len(deletable)-1]
				deletable = deletable[:len(deletable)-1]
				e.mu.Lock()
				c.node = -1
				e.mu.Unlock()
				w = tr.write(c.ip, "", true)
				op = func() error { return e.ecloud.IPClaims().Delete(ctx, c.name, metav1.DeleteOptions{}) }
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := op(); err != nil {
					bad.Add(1)
					tr.failed(w)
				}
			}()
		}
	})
	wg.Wait()
	return n - int(bad.Load()), int(bad.Load())
}

// dropGone forgets the claims the change load deleted.
func (e *scaleEnv) dropGone() {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.claims[:0]
	for _, c := range e.claims {
		if c.node >= 0 {
			out = append(out, c)
		}
	}
	e.claims = out
}

// cpuByRole sums a CPU profile's samples by their "role" label ("" = unlabelled: the apiserver,
// etcd and the runtime's own work).
func cpuByRole(tb interface{ Fatalf(string, ...any) }, raw []byte) map[string]time.Duration {
	p, err := profile.ParseData(raw)
	if err != nil {
		tb.Fatalf("parse cpu profile: %v", err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	out := map[string]time.Duration{}
	if idx < 0 {
		return out
	}
	for _, s := range p.Sample {
		role := ""
		if v := s.Label["role"]; len(v) > 0 {
			role = v[0]
		}
		out[role] += time.Duration(s.Value[idx])
	}
	return out
}

// nodeJoin adds a Node with a tunnel endpoint, waits until the real netd has taken it in (a
// sticky IP moved there gets its flow) and returns how many ports of the real netd's bridge
// changed (added or removed).
func (e *scaleEnv) nodeJoin(d *scaleDesign) int {
	h := e.host
	before := h.ports()
	name := fmt.Sprintf("join-%s", d.name)
	ip := nodeIP(len(e.nodes) + len(e.designs))
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.DefaultDatacenterLabel: "dc-a", corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip.String()}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}},
	}
	n, err := e.kube.CoreV1().Nodes().Create(e.cp.Ctx, node, metav1.CreateOptions{})
	if err != nil {
		e.tb.Fatalf("create node %s: %v", name, err)
	}
	if len(n.Status.Addresses) == 0 {
		patch := fmt.Sprintf(`{"status":{"addresses":[{"type":"InternalIP","address":%q}]}}`, ip)
		if _, err := e.kube.CoreV1().Nodes().PatchStatus(e.cp.Ctx, name, []byte(patch)); err != nil {
			e.tb.Fatalf("node %s address: %v", name, err)
		}
	}
	// A sticky IP moves to the new node; its flow shows netd has seen the node.
	e.mu.Lock()
	var c *scaleClaim
	for _, x := range e.claims {
		if x.sticky && x.node > 0 {
			c = x
			break
		}
	}
	e.mu.Unlock()
	seen := make(chan struct{}, 1)
	stop := h.monitor(func(ev flowEvent) {
		if ev.ip == c.ip && ev.kind != "DELETED" {
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	})
	defer stop()
	if _, err := e.ecloud.IPClaims().Patch(e.cp.Ctx, c.name, types.MergePatchType, []byte(`{"status":{"node":"`+name+`"}}`), metav1.PatchOptions{}); err != nil {
		e.tb.Fatalf("move %s to %s: %v", c.name, name, err)
	}
	select {
	case <-seen:
	case <-time.After(60 * time.Second):
		e.tb.Errorf("%s: no flow for %s after moving it to the new node %s", d.name, c.ip, name)
	}
	after := h.ports()
	changed := 0
	for p := range after {
		if !before[p] {
			changed++
		}
	}
	for p := range before {
		if !after[p] {
			changed++
		}
	}
	e.logf("scale %s node join: %d ports of the real netd's bridge added or removed (%d before)", d.name, changed, len(before))
	return changed
}

// coldSync restarts netd on a bridge without its flows (as after a node reboot with OVS up
// before netd) and returns the time until the flow table is complete again (as many flows
// as before the restart) and netd is ready.
func (e *scaleEnv) coldSync(d *scaleDesign) time.Duration {
	h := e.host
	want := h.flowCount()
	h.stop()
	sh(e.tb, "ovs-ofctl", "del-flows", h.mgmt())
	start := time.Now()
	h.start(d.netd, d.extraArgs()...)
	h.waitReady(5 * time.Minute)
	harness.EventuallyEvery(e.tb, 200*time.Millisecond, 5*time.Minute, func() (bool, error) { return h.flowCount() >= want, nil }, "%d flows after restart", want)
	took := time.Since(start)
	e.logf("scale %s cold sync: restarted netd to %d flows and ready in %.1fs", d.name, want, took.Seconds())
	return took
}
