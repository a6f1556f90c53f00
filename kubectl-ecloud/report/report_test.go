package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

var testTopo = Topology{Key: v1alpha1.DefaultDatacenterLabel, Datacenters: []string{"dc-a", "dc-b"}, MaxSkew: 1}

func testNode(name, dc string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.DefaultDatacenterLabel: dc}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

func testPool(name, cidr, first, last, dc string) v1alpha1.IPPool {
	p := v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPPoolSpec{CIDR: cidr, Gateway: netip.MustParsePrefix(cidr).Addr().Next().String(),
		IncludeRanges: []v1alpha1.IPRange{{Start: first, End: last}}}}
	if dc != "" {
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.DefaultDatacenterLabel: dc}}
	}
	return p
}

func testClaim(ip, pool, node string, phase v1alpha1.ClaimPhase) v1alpha1.IPClaim {
	return v1alpha1.IPClaim{ObjectMeta: metav1.ObjectMeta{Name: ip}, Spec: v1alpha1.IPClaimSpec{Pool: pool, IP: ip, Mode: v1alpha1.ModeEphemeral,
		Owner: v1alpha1.ClaimOwner{Namespace: "shop", PodName: "p-" + ip}}, Status: v1alpha1.IPClaimStatus{Phase: phase, Node: node}}
}

func render(t *testing.T, r Renderer, f Format) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, f, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBuildPools(t *testing.T) {
	nodes := []corev1.Node{testNode("a1", "dc-a"), testNode("b1", "dc-b")}
	pools := []v1alpha1.IPPool{
		testPool("pool-a", "10.20.0.0/24", "10.20.0.10", "10.20.0.19", "dc-a"), // 10 IPs
		testPool("pool-b", "10.21.0.0/24", "10.21.0.10", "10.21.0.11", "dc-b"), // 2 IPs
		testPool("pool-c", "10.22.0.0/24", "10.22.0.10", "10.22.0.109", ""),    // 100 IPs, both DCs
		testPool("pool-x", "10.20.0.0/25", "10.20.0.50", "10.20.0.60", "dc-a"), // overlaps pool-a
	}
	pools[3].CreationTimestamp = metav1.NewTime(time.Now().Add(time.Hour))
	claims := []v1alpha1.IPClaim{
		testClaim("10.20.0.10", "pool-a", "a1", v1alpha1.PhaseBound),
		testClaim("10.20.0.11", "pool-a", "a1", v1alpha1.PhaseReserved),
		testClaim("10.20.0.12", "pool-a", "a1", v1alpha1.PhaseReleased),
		testClaim("10.21.0.10", "pool-b", "b1", v1alpha1.PhaseBound),
		testClaim("10.21.0.11", "pool-b", "gone", v1alpha1.PhaseBound),
	}
	for i := range 95 {
		ip := netip.MustParseAddr("10.22.0.10")
		for range i {
			ip = ip.Next()
		}
		node := "a1"
		if i%2 == 1 {
			node = "b1"
		}
		claims = append(claims, testClaim(ip.String(), "pool-c", node, v1alpha1.PhaseBound))
	}
	r := BuildPools(pools, claims, nodes, testTopo)
	want := map[string]struct {
		reaches                     string
		total, used, reserved, free int64
		perDC                       map[string]int64
		status                      string
	}{
		"pool-a": {"dc-a", 10, 1, 1, 8, map[string]int64{"dc-a": 2, "dc-b": 0}, "Ready"},
		"pool-b": {"dc-b", 2, 2, 0, 0, map[string]int64{"dc-a": 0, "dc-b": 1, "other": 1}, "LowOnIPs"},
		"pool-c": {"dc-a,dc-b", 100, 95, 0, 5, map[string]int64{"dc-a": 48, "dc-b": 47}, "LowOnIPs"},
		"pool-x": {"dc-a", 11, 0, 0, 11, map[string]int64{"dc-a": 0, "dc-b": 0}, "Overlapping"},
	}
	if len(r.Pools) != len(want) {
		t.Fatalf("%d pools, want %d", len(r.Pools), len(want))
	}
	for _, p := range r.Pools {
		w := want[p.Name]
		if got := strings.Join(p.Reaches, ","); got != w.reaches || p.Total != w.total || p.Used != w.used || p.Reserved != w.reserved || p.Free != w.free || p.Status != w.status {
			t.Errorf("%s: reaches %s total %d used %d reserved %d free %d status %s; want %+v", p.Name, got, p.Total, p.Used, p.Reserved, p.Free, p.Status, w)
		}
		for dc, n := range w.perDC {
			if p.ByDatacenter[dc] != n {
				t.Errorf("%s: %s holds %d, want %d (%v)", p.Name, dc, p.ByDatacenter[dc], n, p.ByDatacenter)
			}
		}
	}
	if len(r.Warnings) != 3 {
		t.Fatalf("warnings %q, want 3 (pool-b exhausted, pool-c low, pool-x overlapping)", r.Warnings)
	}
	table := render(t, r, FormatTable)
	for _, s := range []string{
		"POOL    CIDR          VLAN  REACHES    TOTAL  USED  RESERVED  FREE  FREE%  STATUS",
		"pool-c  10.22.0.0/24  0     dc-a,dc-b  100    95    0         5     5%     LowOnIPs",
		"Warning: pool pool-b: exhausted, 0 of 2 IPs free",
		"Warning: pool pool-c: low on IPs, 5 of 100 free (5%, below 10%)",
		"Warning: pool pool-x: its CIDR 10.20.0.0/25 overlaps pool pool-a",
	} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	if wide := render(t, r, FormatWide); !strings.Contains(wide, "dc-a=0,dc-b=1,other=1") {
		t.Errorf("wide table lacks the per-datacenter counts of pool-b:\n%s", wide)
	}
	var back PoolsReport
	if err := json.Unmarshal([]byte(render(t, r, FormatJSON)), &back); err != nil || len(back.Pools) != 4 || back.Pools[2].Free != 5 {
		t.Errorf("JSON does not round-trip: %v %+v", err, back)
	}
	if y := render(t, r, FormatYAML); !strings.Contains(y, "name: pool-c") || !strings.Contains(y, "free: 5") {
		t.Errorf("YAML:\n%s", y)
	}
}

func TestBuildIP(t *testing.T) {
	pools := []v1alpha1.IPPool{testPool("pool-a", "10.20.0.0/24", "10.20.0.10", "10.20.0.19", "dc-a")}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	bound := metav1.NewTime(now.Add(-time.Hour))
	claim := func(mode v1alpha1.ClaimMode, policy v1alpha1.ReleasePolicy, owner v1alpha1.ClaimOwner) *v1alpha1.IPClaim {
		return &v1alpha1.IPClaim{ObjectMeta: metav1.ObjectMeta{Name: "10.20.0.12"},
			Spec:   v1alpha1.IPClaimSpec{Pool: "pool-a", IP: "10.20.0.12", Mode: mode, ReleasePolicy: policy, Owner: owner},
			Status: v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseBound, Node: "a1", PodUID: "uid-1", BoundAt: &bound}}
	}
	livePod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-2", UID: "uid-1"}, Spec: corev1.PodSpec{NodeName: "a1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)}}
	dbOwner := v1alpha1.ClaimOwner{Namespace: "shop", PodName: "db-2", Kind: "StatefulSet", Name: "db", Ordinal: ptr.To[int32](2)}
	tests := []struct {
		name    string
		ip      string
		claim   *v1alpha1.IPClaim
		pod     *corev1.Pod
		set     *appsv1.StatefulSet
		release bool
		lines   []string
	}{
		{name: "free in a pool", ip: "10.20.0.15", lines: []string{"Pool:           pool-a", "Held:           no", "the IP is free in pool pool-a"}},
		{name: "in no pool", ip: "10.99.0.1", lines: []string{"Pool:           <none>", "not allocatable"}},
		{name: "gateway", ip: "10.20.0.1", lines: []string{"not allocatable"}},
		{name: "ephemeral, pod running", ip: "10.20.0.12", pod: livePod,
			claim: claim(v1alpha1.ModeEphemeral, "", v1alpha1.ClaimOwner{Namespace: "shop", PodName: "db-2", Kind: "Deployment", Name: "web"}),
			lines: []string{"Held by:        pod shop/db-2 (deployment web)", "Mode:           Ephemeral\n", "Node:           a1", "Since:          2026-01-02T02:04:05Z",
				"Pod:            pod shop/db-2 is Running on node a1", "Right now:      kept (PodLive)"}},
		{name: "ephemeral, pod gone", ip: "10.20.0.12", release: true,
			claim: claim(v1alpha1.ModeEphemeral, "", v1alpha1.ClaimOwner{Namespace: "shop", PodName: "db-2"}),
			lines: []string{"pod shop/db-2 does not exist", "released by the IP controller on its next pass (PodGone)"}},
		{name: "sticky scale-down, set still has the ordinal", ip: "10.20.0.12", set: &appsv1.StatefulSet{ObjectMeta: set.ObjectMeta, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3)}},
			claim: claim(v1alpha1.ModeSticky, v1alpha1.ReleaseOnScaleDown, dbOwner),
			lines: []string{"(statefulset db, ordinal 2)", "Mode:           Sticky, release policy OnScaleDown", "scaled below ordinal 2 (replicas 2 or fewer)", "kept (OrdinalInSet)"}},
		{name: "sticky scale-down, scaled down", ip: "10.20.0.12", set: set, release: true,
			claim: claim(v1alpha1.ModeSticky, v1alpha1.ReleaseOnScaleDown, dbOwner), lines: []string{"(ScaledDown)"}},
		{name: "sticky never", ip: "10.20.0.12",
			claim: claim(v1alpha1.ModeSticky, v1alpha1.ReleaseNever, dbOwner), lines: []string{"only deleting the claim (kubectl delete ipclaim 10.20.0.12)", "kept (PolicyNever)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := BuildIP(IPObservation{IP: netip.MustParseAddr(tc.ip), Pools: pools, Claim: tc.claim, Pod: tc.pod, StatefulSet: tc.set, Now: now, ReservationWindow: time.Minute})
			if r.ReleaseNow != tc.release {
				t.Errorf("release now %v (%s), want %v", r.ReleaseNow, r.ReleaseReason, tc.release)
			}
			out := render(t, r, FormatTable)
			for _, l := range tc.lines {
				if !strings.Contains(out, l) {
					t.Errorf("output lacks %q:\n%s", l, out)
				}
			}
		})
	}
}

// The DualDatacenter messages come from dcrule itself, so a change of wording there fails here.
func TestParseSchedulerMessage(t *testing.T) {
	g := &dcrule.Group{Kind: dcrule.KindDeployment, Namespace: "shop", Name: "web", Replicas: 4}
	dcs := []string{"dc-a", "dc-b"}
	leave := dcrule.NewCounts()
	leave.Add("web-1", "dc-a", 1)
	skew := dcrule.NewCounts()
	skew.Add("web-1", "dc-a", 2)
	skew.Add("web-1", "dc-b", 1)
	leaveMsg := dcrule.Rule{MaxSkew: 1}.Evaluate(g, "web-1", leave, dcs)["dc-a"]
	skewMsg := dcrule.Rule{MaxSkew: 1}.Evaluate(g, "web-1", skew, dcs)["dc-a"]
	if leaveMsg == "" || skewMsg == "" {
		t.Fatalf("dcrule allows what it should refuse: %q %q", leaveMsg, skewMsg)
	}
	tests := []struct {
		name string
		msg  string
		want []Refusal // Plugin, Nodes, Pool and a part of Plain
	}{
		{"dual datacenter and resources",
			"0/6 nodes are available: 3 " + leaveMsg + ", 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling.",
			[]Refusal{{Plugin: PluginDualDatacenter, Nodes: 3, Plain: "deployment shop/web has no pod in dc-b yet, so the two-datacenter rule sends the next one to dc-b, not to dc-a", Fix: "let a node in dc-b take the pod"},
				{Nodes: 3, Plain: "node(s) didn't match Pod's node affinity/selector"}}},
		{"skew with an outage",
			"0/4 nodes are available: 2 " + skewMsg + "; datacenter(s) [dc-b] out, outagePolicy Hold, 2 node(s) in dc-b, which is out.",
			[]Refusal{{Plugin: PluginDualDatacenter, Nodes: 2, Plain: "would put it more than 1 ahead of the other datacenter (dc-a=2, dc-b=1); datacenter(s) dc-b have no usable node and the outage policy is Hold"},
				{Plugin: PluginDualDatacenter, Nodes: 2, Plain: "datacenter dc-b is out", Fix: "outagePolicy: Degrade"}}},
		{"pool does not reach",
			"0/6 nodes are available: 3 Insufficient cpu, 3 node(s) not reached by IP pool(s) pool-a. preemption: 0/6 nodes are available: 3 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling.",
			[]Refusal{{Nodes: 3, Plain: "Insufficient cpu"}, {Plugin: PluginIPPool, Nodes: 3, Pool: "pool-a", Plain: "IP pool(s) pool-a, which the pod draws from, do not reach these nodes", Fix: "widen the spec.nodeSelector of pool-a"}}},
		{"pool exhausted",
			"0/6 nodes are available: 3 IP pool(s) pool-b exhausted: no free IP, 3 node(s) not reached by IP pool(s) pool-b.",
			[]Refusal{{Plugin: PluginIPPool, Nodes: 3, Pool: "pool-b", Plain: "IP pool(s) pool-b have no free IP", Fix: "add addresses to pool-b"}, {Plugin: PluginIPPool, Nodes: 3, Pool: "pool-b"}}},
		{"sticky IP",
			"0/6 nodes are available: 3 node(s) not reached by IP pool pool-a of the pod's sticky IP 10.20.0.12, 3 node(s) were unschedulable.",
			[]Refusal{{Plugin: PluginIPPool, Nodes: 3, Pool: "pool-a", Plain: "keeps its sticky IP 10.20.0.12 of pool pool-a", Fix: "kubectl ecloud ip 10.20.0.12"}, {Nodes: 3, Plain: "node(s) were unschedulable"}}},
		{"namespace refused by its pool (PreFilter)",
			`0/6 nodes are available: namespace "other" is not allowed to use IP pool "pool-a": list the namespace in the pool's spec.namespaces (or match it by spec.namespaceSelector), or use another pool. preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling.`,
			[]Refusal{{Plugin: PluginIPPool, Pool: "pool-a", Plain: `namespace "other" is not allowed to use IP pool "pool-a": list the namespace`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseSchedulerMessage(tc.msg)
			if len(got) != len(tc.want) {
				t.Fatalf("%d refusals, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Plugin != w.Plugin || g.Nodes != w.Nodes || g.Pool != w.Pool || !strings.Contains(g.Plain, w.Plain) || !strings.Contains(g.Fix, w.Fix) {
					t.Errorf("refusal %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

func TestBuildWhy(t *testing.T) {
	pending := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "p"}, Spec: corev1.PodSpec{SchedulerName: "ecloud-scheduler"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Message: "0/6 nodes are available: 3 node(s) not reached by IP pool(s) pool-a, 3 node(s) in dc-b, which is out."}}}}
	creating := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "c"}, Spec: corev1.PodSpec{NodeName: "a1"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}
	running := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "r"}, Spec: corev1.PodSpec{NodeName: "a1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	at := func(s int) metav1.Time { return metav1.NewTime(time.Unix(int64(s), 0)) }
	// The message format of containerd's sandbox failure as the kubelet records it.
	sandbox := `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "0123abcd": plugin type="ecloud-cni" name="ecloud" failed (add): ecloud netd on a1: add failed; dial unix /run/ecloud/netd.sock: connect: connection refused`
	tests := []struct {
		name   string
		pod    *corev1.Pod
		events []corev1.Event
		state  string
		lines  []string
	}{
		{"pending, condition only", pending, nil, "Unschedulable", []string{
			"Pod other/p is Unschedulable.",
			"- IPPool (3 node(s)): IP pool(s) pool-a, which the pod draws from, do not reach these nodes",
			"  Fix: name a pool that reaches them in ecloud.io/ip-pools",
			"- DualDatacenter (3 node(s)): datacenter dc-b is out"}},
		{"pending, newest FailedScheduling event wins, ipam event added", pending, []corev1.Event{
			{Reason: "FailedScheduling", Message: "0/6 nodes are available: 6 Insufficient memory.", LastTimestamp: at(2)},
			{Reason: "FailedScheduling", Message: "0/6 nodes are available: 6 Insufficient cpu.", LastTimestamp: at(1)},
			{Reason: "PoolExhausted", Message: "pool exhausted: no free IP in pool pool-a: add addresses to a pool (spec.cidr/includeRanges) or name another pool in ecloud.io/ip-pools", LastTimestamp: at(1)},
		}, "Unschedulable", []string{"- scheduler (6 node(s)): Insufficient memory", "- IPPool: pool exhausted: no free IP in pool pool-a"}},
		{"sandbox failing in the CNI", creating, []corev1.Event{{Reason: "FailedCreatePodSandBox", Message: sandbox, LastTimestamp: at(1)}}, "ContainerCreating", []string{
			"Pod shop/c is ContainerCreating on node a1.",
			"- CNI: the CNI plugin ecloud-cni failed to add the pod's network: ecloud netd on a1: add failed; dial unix /run/ecloud/netd.sock: connect: connection refused",
			"  Fix: look at netd on node a1"}},
		{"running", running, nil, "Running", []string{"Pod shop/r is Running on node a1.", "Nothing holds it back."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := BuildWhy(tc.pod, tc.events)
			if r.State != tc.state {
				t.Errorf("state %q, want %q", r.State, tc.state)
			}
			out := render(t, r, FormatTable)
			for _, l := range tc.lines {
				if !strings.Contains(out, l) {
					t.Errorf("output lacks %q:\n%s", l, out)
				}
			}
		})
	}
}

func TestBuildSpread(t *testing.T) {
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "dep"}}
	rs := func(name string, uid string, replicas int32) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types(uid),
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas)}}
	}
	old, cur := rs("web-1", "rs1", 1), rs("web-2", "rs2", 3)
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = idx.Add(old)
	_ = idx.Add(cur)
	resolver := &dcrule.Resolver{ReplicaSets: appslisters.NewReplicaSetLister(idx), StatefulSets: appslisters.NewStatefulSetLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}))}
	pod := func(name string, owner *appsv1.ReplicaSet, node string, age int, cost string) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(time.Unix(int64(1000+age), 0)),
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
		if cost != "" {
			p.Annotations = map[string]string{corev1.PodDeletionCost: cost}
		}
		return p
	}
	pods := []corev1.Pod{
		pod("web-1-a", old, "a1", 0, "-1"),
		pod("web-2-a", cur, "a1", 10, "-2"),
		pod("web-2-b", cur, "b1", 11, "-1"),
		pod("web-2-b2", cur, "b1", 12, ""),
		pod("web-2-new", cur, "", 13, ""),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "stranger"}, Spec: corev1.PodSpec{NodeName: "a1"}},
	}
	g, err := resolver.GroupOf(&pods[1])
	if err != nil || g == nil {
		t.Fatalf("group: %v %v", g, err)
	}
	r := BuildSpread(SpreadObservation{Group: g, Pods: pods, Nodes: []corev1.Node{testNode("a1", "dc-a"), testNode("b1", "dc-b")}, Topo: testTopo, NextRevision: "web-2"})
	if r.Total["dc-a"] != 2 || r.Total["dc-b"] != 2 || r.Waiting != 1 || len(r.Revisions) != 2 || r.Revisions[0].Revision != "web-1" {
		t.Fatalf("counts %v waiting %d revisions %+v", r.Total, r.Waiting, r.Revisions)
	}
	// web-2 has 1 pod in dc-a and 2 in dc-b: its next pod may only go to dc-a.
	if !r.Next[0].Allowed || r.Next[1].Allowed || !strings.Contains(r.Next[1].Reason, "revision web-2") {
		t.Errorf("next %+v, want dc-a allowed and dc-b refused by the revision skew", r.Next)
	}
	// Scale-down order by the costs dcrule computes (ties: younger first); web-1-a carries a stale
	// annotation (-1) where the rule says -2.
	var order []string
	for _, p := range r.Pods {
		order = append(order, p.Pod+"="+p.Cost+"/"+itoa(p.Expected))
	}
	if got := strings.Join(order, " "); got != "web-2-b2=/-2 web-2-a=-2/-2 web-1-a=-1/-2 web-2-b=-1/-1" {
		t.Errorf("scale-down order %s", got)
	}
	out := render(t, r, FormatWide)
	for _, l := range []string{
		"deployment shop/web: desired 3, datacenters dc-a, dc-b (maxSkew 1), 1 pod(s) pending or terminating",
		"REVISION     DC-A  DC-B  TOTAL\nweb-1        1     0     1\nweb-2 (new)  1     2     3\nALL          2     2     4",
		"  dc-a: allowed\n  dc-b: refused: node(s) in dc-b would skew revision web-2 of deployment shop/web beyond maxSkew 1",
		"web-2-b2  web-2     dc-b        <none>         -2        b1",
	} {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

func TestBuildTrace(t *testing.T) {
	dcOf := func(n string) string { return map[string]string{"a1": "dc-a", "b1": "dc-b"}[n] }
	base := nodeapi.TraceResult{Node: "a1", Source: nodeapi.TracePort{Name: "veth1", OFPort: 5}, SourceIP: "10.20.0.10", Destination: "10.21.0.10", DatapathActions: "drop",
		Rules: []nodeapi.TraceRule{{Table: 0, Priority: 200, Match: "ip,in_port=5,nw_src=10.20.0.10", Actions: []string{"resubmit(,20)"}}}}
	with := func(verdict string, out *nodeapi.TracePort, last nodeapi.TraceRule) nodeapi.TraceResult {
		r := base
		r.Verdict, r.Out, r.Rules = verdict, out, append(append([]nodeapi.TraceRule{}, base.Rules...), last)
		return r
	}
	tests := []struct {
		name string
		res  nodeapi.TraceResult
		path string
	}{
		{"tunnel", with(nodeapi.TraceTunnel, &nodeapi.TracePort{Name: "ect1", OFPort: 7, Role: "tunnel", Node: "b1", RemoteIP: "192.168.7.2"}, nodeapi.TraceRule{Table: 20, Priority: 200, Actions: []string{"output:7"}}),
			"into the tunnel ect1 (OpenFlow port 7) to node b1 (dc-b), remote IP 192.168.7.2"},
		{"local", with(nodeapi.TraceLocal, &nodeapi.TracePort{Name: "veth2", OFPort: 6, Role: "pod", Pod: "shop/b"}, nodeapi.TraceRule{Table: 20, Priority: 200}),
			"delivered on node a1 to port veth2 (OpenFlow port 6) of pod shop/b"},
		{"pool drop", with(nodeapi.TraceDrop, nil, nodeapi.TraceRule{Table: 20, Priority: 100, Match: "ip,nw_dst=10.21.0.0/24", Actions: []string{"drop"}}),
			`dropped by table 20, priority 100, match "ip,nw_dst=10.21.0.0/24" (the destination is in a pool but not reachable`},
		{"spoofed", nodeapi.TraceResult{Verdict: nodeapi.TraceDrop, Rules: []nodeapi.TraceRule{{Table: 0, Priority: 0, Actions: []string{"drop"}}}},
			`dropped by table 0, priority 0, match "<none>" (the packet's source is not this pod's IP on its port: anti-spoofing)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := BuildTrace("shop/a", tc.res, "shop/b", "b1", dcOf)
			if !strings.Contains(r.Path, tc.path) {
				t.Errorf("path %q, want it to contain %q", r.Path, tc.path)
			}
			if out := render(t, r, FormatTable); !strings.Contains(out, "Path: "+r.Path) {
				t.Errorf("table lacks the path:\n%s", out)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for in, ok := range map[string]bool{"": true, "wide": true, "json": true, "yaml": true, "name": false, "jsonpath={.x}": false} {
		if _, err := ParseFormat(in); (err == nil) != ok {
			t.Errorf("ParseFormat(%q) error %v, want ok=%v", in, err, ok)
		}
	}
}

func types(s string) k8stypes.UID { return k8stypes.UID(s) }

func itoa(n int32) string { return strconv.Itoa(int(n)) }
