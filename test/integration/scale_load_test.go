package integration

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/test/harness"
)

// scaleEnv is the loaded apiserver and what the benchmark knows of it.
type scaleEnv struct {
	tb  testing.TB
	cp  *harness.ControlPlane
	cfg scaleConfig
	id  string // esc<hex>: names of netns, links and temp dirs
	dir string
	// fast clients: no client-side rate limit (the loader and the change load).
	kube   kubernetes.Interface
	ecloud *client.Clientset

	nodes []scaleNode
	pools []*v1alpha1.IPPool

	mu     sync.Mutex
	claims []*scaleClaim // every claim the benchmark wrote and has not deleted
	next   []int         // per pool: the index of its next unused address

	ipam *scaleIPAM
	host *scaleHost
	// ipControllerPID is the ip-controller process, once started.
	ipControllerPID int
	// ipControllerMetrics is the address of its /metrics.
	ipControllerMetrics string
	// figures collected on the way, printed by report.
	lines   []string
	designs []*designFigures
}

type scaleNode struct {
	name, dc string
	ip       netip.Addr // tunnel endpoint (InternalIP)
}

// scaleClaim is one claim as the benchmark wrote it.
type scaleClaim struct {
	name, ip string
	pool     int
	node     int // index into scaleEnv.nodes
	sticky   bool
}

func newScaleEnv(tb testing.TB, cp *harness.ControlPlane, cfg scaleConfig) *scaleEnv {
	tb.Helper()
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	e := &scaleEnv{tb: tb, cp: cp, cfg: cfg, id: "esc" + hex.EncodeToString(b)}
	dir, err := os.MkdirTemp("/tmp", e.id+"-")
	if err != nil {
		tb.Fatal(err)
	}
	e.dir = dir
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	fast := rest.CopyConfig(cp.Config)
	fast.QPS, fast.Burst = -1, 0
	e.kube = kubernetes.NewForConfigOrDie(fast)
	if e.ecloud, err = client.NewForConfig(fast); err != nil {
		tb.Fatal(err)
	}
	e.next = make([]int, cfg.pools)
	return e
}

// logf prints a figure line now and keeps it for the summary.
func (e *scaleEnv) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Println(line)
	e.lines = append(e.lines, line)
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and fails the test on the first error.
func (e *scaleEnv) parallel(n, workers int, fn func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		e.tb.Fatal(*err)
	}
}

// nodeIP is node i's tunnel endpoint: 100.64.0.0/10 counted from 100.64.0.1.
func nodeIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{100, 64 + byte((i+1)>>16), byte((i + 1) >> 8), byte(i + 1)})
}

// createNodes creates the Nodes, half in each datacenter, Ready, without addresses (a design's
// phase gives the nodes it meshes their InternalIP).
func (e *scaleEnv) createNodes() {
	start := time.Now()
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("128Gi"), corev1.ResourcePods: resource.MustParse("250")}
	for i := 0; i < e.cfg.nodes; i++ {
		dc := []string{"dc-a", "dc-b"}[i%2]
		e.nodes = append(e.nodes, scaleNode{name: fmt.Sprintf("%s-node-%d", dc, i/2), dc: dc, ip: nodeIP(i)})
	}
	e.parallel(len(e.nodes), 32, func(i int) error {
		n := e.nodes[i]
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{v1alpha1.DefaultDatacenterLabel: n.dc, corev1.LabelHostname: n.name}},
			Status: corev1.NodeStatus{Capacity: res, Allocatable: res,
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}},
		}
		if _, err := e.kube.CoreV1().Nodes().Create(e.cp.Ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", n.name, err)
		}
		return nil
	})
	e.logf("scale load nodes=%d in %.1fs", len(e.nodes), time.Since(start).Seconds())
}

// setAddresses gives nodes [from, to) their InternalIP (or takes it away with none).
func (e *scaleEnv) setAddresses(from, to int, set bool) {
	e.parallel(to-from, 32, func(i int) error {
		n := e.nodes[from+i]
		var addrs []corev1.NodeAddress
		if set {
			addrs = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.ip.String()}}
		}
		patch := fmt.Sprintf(`{"status":{"addresses":%s}}`, addressesJSON(addrs))
		if _, err := e.kube.CoreV1().Nodes().PatchStatus(e.cp.Ctx, n.name, []byte(patch)); err != nil {
			return fmt.Errorf("node %s addresses: %w", n.name, err)
		}
		return nil
	})
}

func addressesJSON(addrs []corev1.NodeAddress) string {
	if len(addrs) == 0 {
		return "null"
	}
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = fmt.Sprintf(`{"type":%q,"address":%q}`, a.Type, a.Address)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// poolPrefix is pool p's CIDR: 10.(64+4p).0.0/14, VLAN 100+p.
func poolPrefix(p int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(64 + 4*p), 0, 0}), 14)
}

// createPools creates the pools, each reaching every node.
func (e *scaleEnv) createPools() {
	for p := 0; p < e.cfg.pools; p++ {
		pfx := poolPrefix(p)
		gw := pfx.Addr().Next()
		last := netip.AddrFrom4([4]byte{10, byte(64 + 4*p + 3), 255, 254})
		pool := &v1alpha1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%d", p)},
			Spec: v1alpha1.IPPoolSpec{CIDR: pfx.String(), Gateway: gw.String(), VLAN: int32(100 + p),
				IncludeRanges: []v1alpha1.IPRange{{Start: gw.Next().String(), End: last.String()}}},
		}
		created, err := e.ecloud.IPPools().Create(e.cp.Ctx, pool, metav1.CreateOptions{})
		if err != nil {
			e.tb.Fatalf("create pool %s: %v", pool.Name, err)
		}
		e.pools = append(e.pools, created)
	}
	for _, ns := range []string{"scale", "scale-sched", "scale-ipam"} {
		if _, err := e.kube.CoreV1().Namespaces().Create(e.cp.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			e.tb.Fatalf("create namespace %s: %v", ns, err)
		}
	}
}

// newClaimLocked picks the next address of pool p (the first 4096 of each pool are left to the
// IPAM and scheduler rounds) for a claim bound on node.
func (e *scaleEnv) newClaimLocked(p, node int, sticky bool) *scaleClaim {
	n := e.next[p]
	e.next[p]++
	a := poolPrefix(p).Addr().As4()
	off := 4096 + n
	a[1] += byte(off >> 16)
	a[2] = byte(off >> 8)
	a[3] = byte(off)
	ip := netip.AddrFrom4(a).String()
	return &scaleClaim{name: v1alpha1.ClaimName(ip), ip: ip, pool: p, node: node, sticky: sticky}
}

// claimObject is c as the IPAM writes it once the pod runs: Bound on its node.
func (e *scaleEnv) claimObject(c *scaleClaim) *v1alpha1.IPClaim {
	now := metav1.Now()
	owner := v1alpha1.ClaimOwner{Namespace: "scale", PodName: "pod-" + strings.ReplaceAll(c.ip, ".", "-")}
	mode, release := v1alpha1.ModeEphemeral, v1alpha1.ReleaseOnDelete
	if c.sticky {
		mode, release = v1alpha1.ModeSticky, v1alpha1.ReleaseNever
		owner.Kind, owner.Name, owner.Ordinal = "StatefulSet", "db-"+strconv.Itoa(c.pool), ptr.To(int32(0))
	}
	return &v1alpha1.IPClaim{
		ObjectMeta: metav1.ObjectMeta{Name: c.name},
		Spec:       v1alpha1.IPClaimSpec{Pool: e.pools[c.pool].Name, IP: c.ip, Owner: owner, Mode: mode, ReleasePolicy: release},
		Status: v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseBound, Node: e.nodes[c.node].name, PodUID: uuid.NewUUID(),
			ContainerID: "bench", ReservedAt: &now, BoundAt: &now},
	}
}

// loadClaims brings the claims the apiserver holds up to total, round-robin over pools and nodes,
// every fifth sticky, all Bound (status in the same write: IPClaim has no status subresource).
// The first BENCH_SCALE_LOW_CLAIMS go through the apiserver (48 concurrent creates); the rest are
// written straight into etcd as the apiserver stores them (putClaims) and reach its watch cache,
// and so every informer, through its etcd watch. It prints the rate, when the apiserver served
// them all, and the process's RSS (etcd, apiserver and the benchmark).
func (e *scaleEnv) loadClaims(total int) {
	e.mu.Lock()
	have := len(e.claims)
	var batch []*scaleClaim
	for i := have; i < total; i++ {
		c := e.newClaimLocked(i%e.cfg.pools, (i/e.cfg.pools)%len(e.nodes), i%5 == 0)
		batch = append(batch, c)
	}
	e.mu.Unlock()
	start := time.Now()
	how := "48 concurrent creates through the apiserver"
	var rev int64 // the etcd revision that holds every claim (0: the apiserver's own writes)
	if have < e.cfg.lowClaims {
		e.parallel(len(batch), 48, func(i int) error {
			if _, err := e.ecloud.IPClaims().Create(e.cp.Ctx, e.claimObject(batch[i]), metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create claim %s: %w", batch[i].name, err)
			}
			return nil
		})
	} else {
		how = fmt.Sprintf("straight into etcd, one transaction per claim, %d in flight", etcdWriters)
		rev = e.putClaims(batch)
	}
	d := time.Since(start)
	e.mu.Lock()
	e.claims = append(e.claims, batch...)
	e.mu.Unlock()
	// The apiserver serves them all once a list from its watch cache (what an informer starts
	// from) counts them; the informers' own counts are checked before they are used.
	harness.EventuallyEvery(e.tb, time.Second, 10*time.Minute, func() (bool, error) {
		n, err := e.countClaimsFromCache(rev)
		if apierrors.IsTimeout(err) || apierrors.IsResourceExpired(err) || apierrors.IsTooManyRequests(err) {
			return false, err // the watch cache has not reached rev yet
		}
		if err == nil && n > total {
			err = fmt.Errorf("apiserver lists %d claims, more than the %d written", n, total)
		}
		return n == total, err
	}, "apiserver watch cache serving %d claims", total)
	seen := time.Since(start)
	runtime.GC()
	e.logf("scale load claims %d->%d in %.1fs (%.0f/s, %s), all served by the apiserver after %.1fs; test process (etcd+apiserver+bench) RSS %.0f MiB",
		have, total, d.Seconds(), float64(len(batch))/max(d.Seconds(), 1e-3), how, seen.Seconds(), rssMiB(os.Getpid()))
}

// countClaimsFromCache counts the claims the apiserver lists from its watch cache (as it
// answers an informer's first list) once that has reached etcd revision rev (0: any).
func (e *scaleEnv) countClaimsFromCache(rev int64) (int, error) {
	o := metav1.ListOptions{ResourceVersion: "0"}
	if rev > 0 {
		o = metav1.ListOptions{ResourceVersion: strconv.FormatInt(rev, 10), ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}
	}
	l, err := e.ecloud.IPClaims().List(e.cp.Ctx, o)
	if err != nil {
		return 0, fmt.Errorf("list claims at resourceVersion %s: %w", o.ResourceVersion, err)
	}
	return len(l.Items), nil
}

// putClaims writes claims into etcd as the apiserver stores a custom resource: JSON of the
// storage version with apiVersion and kind, under <storage prefix>/<group>/<plural>/<name>
// (cluster-scoped), with the metadata the apiserver's create would have set (uid,
// creationTimestamp, generation 1) and no resourceVersion (the apiserver reads it from etcd's
// revision). Each claim is a transaction of its own (created only if absent, as the
// apiserver's create), so each gets a revision of its own: the apiserver's watch cache takes
// one etcd event per revision, and a list it serves while it is halfway through several events
// of one revision says that revision, so a watch from there misses the rest of them (with 128
// claims per transaction, an informer started during the load stayed hundreds of claims short).
// Many transactions are in flight at once; etcd batches them into few disk commits.
// It returns the highest revision written.
func (e *scaleEnv) putClaims(batch []*scaleClaim) int64 {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.cp.EtcdURL}, DialTimeout: 10 * time.Second})
	if err != nil {
		e.tb.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	prefix := e.cp.StoragePrefix + "/" + v1alpha1.SchemeGroupVersion.Group + "/ipclaims/"
	var rev atomic.Int64
	e.parallel(len(batch), etcdWriters, func(i int) error {
		c := batch[i]
		obj := e.claimObject(c)
		obj.APIVersion, obj.Kind = v1alpha1.SchemeGroupVersion.String(), "IPClaim"
		obj.UID, obj.CreationTimestamp, obj.Generation = uuid.NewUUID(), metav1.Now(), 1
		b, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encode claim %s: %w", c.name, err)
		}
		key := prefix + c.name
		r, err := cli.Txn(e.cp.Ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(b))).Commit()
		if err != nil {
			return fmt.Errorf("etcd put of claim %s: %w", c.name, err)
		}
		if !r.Succeeded {
			return fmt.Errorf("etcd put of claim %s: it exists already", c.name)
		}
		for cur := rev.Load(); r.Header.Revision > cur && !rev.CompareAndSwap(cur, r.Header.Revision); cur = rev.Load() {
		}
		return nil
	})
	return rev.Load()
}

// etcdWriters is how many claim transactions putClaims keeps in flight.
const etcdWriters = 64

// rssMiB is a process's resident set (VmRSS) in MiB, 0 if unknown.
func rssMiB(pid int) float64 { return procStatusMiB(pid, "VmRSS:") }

// procStatusMiB reads a kB field of /proc/<pid>/status in MiB.
func procStatusMiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
