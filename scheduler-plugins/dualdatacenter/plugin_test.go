package dualdatacenter

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	schedcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

const ns = "shop"

var (
	deploy = &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", UID: "deploy-web"}}
	rsOld  = replicaSet("web-old", 2)
	rsNew  = replicaSet("web-new", 2)
	rsOne  = replicaSet("web-one", 1)
	sts    = &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", UID: "sts-db"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](4)}}
)

func replicaSet(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("rs-" + name),
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: deploy.Name, UID: deploy.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas)},
	}
}

type podOpt func(*v1.Pod)

func ownedBy(kind, name string, uid types.UID) podOpt {
	return func(p *v1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}}
	}
}
func inRS(rs *appsv1.ReplicaSet) podOpt { return ownedBy("ReplicaSet", rs.Name, rs.UID) }
func on(node string) podOpt             { return func(p *v1.Pod) { p.Spec.NodeName = node } }
func terminating() podOpt {
	return func(p *v1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }
}
func labelled(k, v string) podOpt {
	return func(p *v1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[k] = v
	}
}
func annotated(k, v string) podOpt {
	return func(p *v1.Pod) { p.Annotations = map[string]string{k: v} }
}

func newPod(name string, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)}}
	for _, o := range opts {
		o(p)
	}
	return p
}

type nodeOpt func(*v1.Node)

func cordoned(n *v1.Node) { n.Spec.Unschedulable = true }

// cluster returns 2 nodes per datacenter (dc-a-0, dc-a-1, dc-b-0, dc-b-1) holding the given pods.
func cluster(pods []*v1.Pod, cordon map[string]bool) []fwk.NodeInfo {
	var out []fwk.NodeInfo
	for _, dc := range []string{"dc-a", "dc-b"} {
		for i := 0; i < 2; i++ {
			name := fmt.Sprintf("%s-%d", dc, i)
			node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.DefaultDatacenterLabel: dc}},
				Status: v1.NodeStatus{Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}}}
			if cordon[dc] {
				cordoned(node)
			}
			var mine []*v1.Pod
			for _, p := range pods {
				if p.Spec.NodeName == name {
					mine = append(mine, p)
				}
			}
			ni := framework.NewNodeInfo(mine...)
			ni.SetNode(node)
			out = append(out, ni)
		}
	}
	return out
}

func newTestPlugin(t *testing.T, policy config.OutagePolicy) *DualDatacenter {
	t.Helper()
	rsIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	stsIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, rs := range []*appsv1.ReplicaSet{rsOld, rsNew, rsOne} {
		if err := rsIdx.Add(rs); err != nil {
			t.Fatal(err)
		}
	}
	if err := stsIdx.Add(sts); err != nil {
		t.Fatal(err)
	}
	args := config.DualDatacenterArgs{TopologyKey: v1alpha1.DefaultDatacenterLabel, Datacenters: []string{"dc-a", "dc-b"}, MaxSkew: 1, OutagePolicy: policy}
	registerMetrics()
	return &DualDatacenter{args: args, rule: dcrule.Rule{MaxSkew: 1}, inflight: newInflight(), counts: newCountCache(),
		resolver: &dcrule.Resolver{ReplicaSets: appslisters.NewReplicaSetLister(rsIdx), StatefulSets: appslisters.NewStatefulSetLister(stsIdx)}}
}

func TestPreFilterAndFilter(t *testing.T) {
	cases := []struct {
		name     string
		policy   config.OutagePolicy
		pod      *v1.Pod
		existing []*v1.Pod
		inflight map[string]string // pod name → datacenter, reserved in earlier cycles
		cordon   map[string]bool
		skip     bool
		// want is the Filter result per datacenter: "" = feasible, else a substring of the reason.
		want         map[string]string
		wantDegraded string
	}{
		{name: "second pod must go to the empty datacenter", pod: newPod("p", inRS(rsNew)),
			existing: []*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0"))},
			want:     map[string]string{"dc-a": "node(s) in dc-a would leave deployment shop/web with 0 pods in dc-b", "dc-b": ""}},
		{name: "terminating pods do not count", pod: newPod("p", inRS(rsNew)),
			existing: []*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0")), newPod("e2", inRS(rsNew), on("dc-b-0"), terminating())},
			want:     map[string]string{"dc-a": "0 pods in dc-b", "dc-b": ""}},
		{name: "a reservation not yet in the snapshot counts", pod: newPod("p", inRS(rsNew)),
			existing: []*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0"))}, inflight: map[string]string{"r1": "dc-b"},
			want: map[string]string{"dc-a": "", "dc-b": ""}},
		{name: "a reservation already in the snapshot is not counted twice", pod: newPod("p", inRS(rsNew)),
			existing: []*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0")), newPod("e2", inRS(rsNew), on("dc-b-0"))}, inflight: map[string]string{"e2": "dc-b"},
			want: map[string]string{"dc-a": "", "dc-b": ""}},
		{name: "pods of every revision count for the group", pod: newPod("p", inRS(rsNew)),
			existing: []*v1.Pod{newPod("e1", inRS(rsOld), on("dc-a-0")), newPod("e2", inRS(rsOld), on("dc-a-1")), newPod("e3", inRS(rsNew), on("dc-b-0"))},
			want:     map[string]string{"dc-a": "beyond maxSkew 1 (dc-a=2, dc-b=1)", "dc-b": ""}},
		{name: "other workloads and namespaces do not count", pod: newPod("p", inRS(rsNew)),
			existing: []*v1.Pod{newPod("e1", ownedBy("ReplicaSet", "other", "rs-other"), on("dc-a-0")), newPod("e2", labelled(v1alpha1.LabelGroup, "web"), on("dc-a-0"))},
			want:     map[string]string{"dc-a": "", "dc-b": ""}},
		{name: "label group", pod: newPod("p", labelled(v1alpha1.LabelGroup, "cache")),
			existing: []*v1.Pod{newPod("e1", labelled(v1alpha1.LabelGroup, "cache"), on("dc-b-1"))},
			want:     map[string]string{"dc-a": "", "dc-b": "node(s) in dc-b would leave group shop/cache with 0 pods in dc-a"}},
		{name: "Hold: datacenter out keeps the pod pending", policy: config.OutageHold, pod: newPod("p", inRS(rsNew)),
			existing: []*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0"))}, cordon: map[string]bool{"dc-b": true},
			want: map[string]string{"dc-a": "0 pods in dc-b; datacenter(s) [dc-b] out, outagePolicy Hold", "dc-b": ""}},
		{name: "Degrade: datacenter out, schedule into the healthy one", policy: config.OutageDegrade, pod: newPod("p", inRS(rsNew)),
			existing: []*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0"))}, cordon: map[string]bool{"dc-b": true},
			want: map[string]string{"dc-a": "", "dc-b": "out"}, wantDegraded: "datacenter(s) [dc-b] out: placed deployment shop/web in dc-a"},
		{name: "exempt single replica", pod: newPod("p", inRS(rsOne), annotated(v1alpha1.AnnotationDualDC, v1alpha1.DualDCExempt)), skip: true},
		{name: "exemption ignored for several replicas", pod: newPod("p", inRS(rsNew), annotated(v1alpha1.AnnotationDualDC, v1alpha1.DualDCExempt)),
			existing: []*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0"))},
			want:     map[string]string{"dc-a": "0 pods in dc-b", "dc-b": ""}},
		{name: "bare pod is not constrained", pod: newPod("p"), skip: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.policy == "" {
				tc.policy = config.OutageHold
			}
			p := newTestPlugin(t, tc.policy)
			for name, dc := range tc.inflight {
				p.inflight.add(types.UID("uid-"+name), inflightEntry{group: "deployment/shop/web", datacenter: dc, node: dc + "-0", revision: "web-new", since: metav1.Now().Time})
			}
			nodes := cluster(tc.existing, tc.cordon)
			p.nodeInfos = snapshotOf(nodes)
			state := framework.NewCycleState()
			_, st := p.PreFilter(context.Background(), state, tc.pod, nodes)
			if tc.skip {
				if !st.IsSkip() {
					t.Fatalf("PreFilter: want Skip, got %v", st)
				}
				return
			}
			if !st.IsSuccess() {
				t.Fatalf("PreFilter: %v", st)
			}
			for _, ni := range nodes {
				dc := ni.Node().Labels[v1alpha1.DefaultDatacenterLabel]
				st := p.Filter(context.Background(), state, tc.pod, ni)
				want := tc.want[dc]
				switch {
				case want == "" && !st.IsSuccess():
					t.Errorf("%s: want feasible, got %v", ni.Node().Name, st)
				case want != "" && (st.IsSuccess() || st.Code() != fwk.UnschedulableAndUnresolvable || !strings.Contains(st.Message(), want)):
					t.Errorf("%s: want UnschedulableAndUnresolvable containing %q, got %v", ni.Node().Name, want, st)
				}
			}
			s, _ := readState(state)
			if got := s.degraded["dc-a"]; !strings.Contains(got, tc.wantDegraded) || (tc.wantDegraded == "") != (got == "") {
				t.Errorf("degraded[dc-a] = %q, want containing %q", got, tc.wantDegraded)
			}
		})
	}
}

// A pod reserved, bound and deleted before the group's next cycle must not count: PostBind drops
// its reservation (it would otherwise stay "unseen" and count until the TTL).
func TestBoundThenDeletedPodStopsCounting(t *testing.T) {
	p := newTestPlugin(t, config.OutageHold)
	gone := newPod("gone", inRS(rsNew))
	p.inflight.add(gone.UID, inflightEntry{group: "deployment/shop/web", datacenter: "dc-b", node: "dc-b-0", revision: "web-new", since: metav1.Now().Time})
	existing := []*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0")), newPod("e2", inRS(rsNew), on("dc-b-0"))}
	nodes := cluster(existing, nil)
	p.nodeInfos = snapshotOf(nodes)
	filterDCB := func() *fwk.Status {
		state := framework.NewCycleState()
		if _, st := p.PreFilter(context.Background(), state, newPod("p", inRS(rsNew)), nodes); !st.IsSuccess() {
			t.Fatalf("PreFilter: %v", st)
		}
		for _, ni := range nodes {
			if ni.Node().Labels[v1alpha1.DefaultDatacenterLabel] == "dc-b" {
				return p.Filter(context.Background(), state, nil, ni)
			}
		}
		t.Fatal("no dc-b node")
		return nil
	}
	// Still reserved: dc-a=1, dc-b=2 (one in flight), so dc-b may not take a third pod.
	if st := filterDCB(); st.IsSuccess() {
		t.Fatalf("with the reservation in flight dc-b stays feasible; want it refused for skew")
	}
	p.PostBind(context.Background(), framework.NewCycleState(), gone, "dc-b-0")
	if st := filterDCB(); !st.IsSuccess() {
		t.Fatalf("after PostBind the deleted pod still counts: %v", st)
	}
}

func TestScore(t *testing.T) {
	stsPod := func(name string, opts ...podOpt) *v1.Pod {
		return newPod(name, append([]podOpt{ownedBy("StatefulSet", sts.Name, sts.UID)}, opts...)...)
	}
	cases := []struct {
		name     string
		pod      *v1.Pod
		existing []*v1.Pod
		wantBest string
	}{
		{"fewer pods wins", newPod("p", inRS(rsNew)),
			[]*v1.Pod{newPod("e1", inRS(rsNew), on("dc-a-0")), newPod("e2", inRS(rsNew), on("dc-b-0")), newPod("e3", inRS(rsNew), on("dc-a-1"))}, "dc-b"},
		{"odd ordinal returns to dc-b", stsPod("db-3"),
			[]*v1.Pod{stsPod("db-0", on("dc-a-0")), stsPod("db-1", on("dc-b-0"))}, "dc-b"},
		{"even ordinal returns to dc-a", stsPod("db-2"),
			[]*v1.Pod{stsPod("db-0", on("dc-a-0")), stsPod("db-1", on("dc-b-0"))}, "dc-a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPlugin(t, config.OutageHold)
			nodes := cluster(tc.existing, nil)
			state := framework.NewCycleState()
			if _, st := p.PreFilter(context.Background(), state, tc.pod, nodes); !st.IsSuccess() {
				t.Fatalf("PreFilter: %v", st)
			}
			if st := p.PreScore(context.Background(), state, tc.pod, nodes); !st.IsSuccess() {
				t.Fatalf("PreScore: %v", st)
			}
			best, bestScore := "", int64(-1)
			for _, ni := range nodes {
				s, st := p.Score(context.Background(), state, tc.pod, ni)
				if !st.IsSuccess() {
					t.Fatalf("Score: %v", st)
				}
				if s > bestScore {
					best, bestScore = ni.Node().Labels[v1alpha1.DefaultDatacenterLabel], s
				}
			}
			if best != tc.wantBest {
				t.Errorf("best datacenter %s, want %s", best, tc.wantBest)
			}
		})
	}
}

func TestQueueingHints(t *testing.T) {
	p := newTestPlugin(t, config.OutageHold)
	pending := newPod("p", inRS(rsNew))
	ready := v1.NodeStatus{Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}}
	node := func(dc string, opts ...nodeOpt) *v1.Node {
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{v1alpha1.DefaultDatacenterLabel: dc}}, Status: ready}
		for _, o := range opts {
			o(n)
		}
		return n
	}
	podCases := []struct {
		name     string
		old, new *v1.Pod
		want     fwk.QueueingHint
	}{
		{"group pod deleted", newPod("e", inRS(rsOld), on("dc-a-0")), nil, fwk.Queue},
		{"group pod added", nil, newPod("e", inRS(rsNew), on("dc-a-0")), fwk.Queue},
		{"other pod deleted", newPod("e", ownedBy("ReplicaSet", "x", "rs-x"), on("dc-a-0")), nil, fwk.QueueSkip},
	}
	for _, tc := range podCases {
		checkHint(t, tc.name, p.isSchedulableAfterPodChange, pending, objOrNil(tc.old), objOrNil(tc.new), tc.want)
	}
	nodeCases := []struct {
		name     string
		old, new *v1.Node
		want     fwk.QueueingHint
	}{
		{"uncordoned", node("dc-b", cordoned), node("dc-b"), fwk.Queue},
		{"cordoned", node("dc-b"), node("dc-b", cordoned), fwk.Queue},
		{"added", nil, node("dc-a"), fwk.Queue},
		{"moved datacenter", node("dc-a"), node("dc-b"), fwk.Queue},
		{"unrelated node", node("dc-x", cordoned), node("dc-x"), fwk.QueueSkip},
		{"nothing relevant changed", node("dc-a"), node("dc-a"), fwk.QueueSkip},
	}
	for _, tc := range nodeCases {
		checkHint(t, tc.name, p.isSchedulableAfterNodeChange, pending, objOrNil(tc.old), objOrNil(tc.new), tc.want)
	}
}

func klogDiscard() klog.Logger { return klog.Background().V(10) }

// objOrNil turns a typed nil pointer into an untyped nil, as the framework passes for add/delete.
func objOrNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}

func checkHint(t *testing.T, name string, fn fwk.QueueingHintFn, pod *v1.Pod, oldObj, newObj any, want fwk.QueueingHint) {
	t.Helper()
	if got, err := fn(klogDiscard(), pod, oldObj, newObj); err != nil || got != want {
		t.Errorf("%s: hint %v (err %v), want %v", name, got, err, want)
	}
}

// snapshotOf serves the test cluster as the scheduler's snapshot.
func snapshotOf(nodes []fwk.NodeInfo) func() fwk.NodeInfoLister {
	var pods []*v1.Pod
	var ns []*v1.Node
	for _, ni := range nodes {
		ns = append(ns, ni.Node())
		for _, pi := range ni.GetPods() {
			pods = append(pods, pi.GetPod())
		}
	}
	snap := schedcache.NewSnapshot(pods, ns)
	return func() fwk.NodeInfoLister { return snap.NodeInfos() }
}

// TestCountCacheFollowsNodeChanges counts, changes one node (a pod bound, a pod terminating), and
// counts again with the same NodeInfos: the cache must re-read exactly the changed nodes.
func TestCountCacheFollowsNodeChanges(t *testing.T) {
	p := newTestPlugin(t, config.OutageHold)
	pending := newPod("p", inRS(rsNew))
	e1 := newPod("e1", inRS(rsNew), on("dc-a-0"))
	nodes := cluster([]*v1.Pod{e1}, nil)
	p.nodeInfos = snapshotOf(nodes)
	g, err := p.groupOf(pending)
	if err != nil || g == nil {
		t.Fatalf("group: %v %v", g, err)
	}
	steps := []struct {
		name   string
		change func()
		want   string
	}{
		{"initial", func() {}, "dc-a=1, dc-b=0"},
		{"unchanged nodes come from the cache", func() {}, "dc-a=1, dc-b=0"},
		{"a pod bound in dc-b", func() { nodes[2].(*framework.NodeInfo).AddPod(newPod("e2", inRS(rsNew), on("dc-b-0"))) }, "dc-a=1, dc-b=1"},
		{"a pod of another workload changes nothing", func() { nodes[3].(*framework.NodeInfo).AddPod(newPod("x", on("dc-b-1"))) }, "dc-a=1, dc-b=1"},
		{"the dc-a pod is removed", func() {
			if err := nodes[0].(*framework.NodeInfo).RemovePod(klogDiscard(), e1); err != nil {
				t.Fatal(err)
			}
		}, "dc-a=0, dc-b=1"},
		{"a pod bound in dc-a", func() { nodes[1].(*framework.NodeInfo).AddPod(newPod("e3", inRS(rsNew), on("dc-a-1"))) }, "dc-a=1, dc-b=1"},
		{"the node list comes in another order", func() { nodes = []fwk.NodeInfo{nodes[3], nodes[1], nodes[2], nodes[0]} }, "dc-a=1, dc-b=1"},
		{"the node with the dc-a pod moves to dc-b", func() {
			ni := nodes[1].(*framework.NodeInfo)
			n := ni.Node().DeepCopy()
			n.Labels[v1alpha1.DefaultDatacenterLabel] = "dc-b"
			ni.SetNode(n)
		}, "dc-a=0, dc-b=2"},
		{"that node leaves the list", func() { nodes = []fwk.NodeInfo{nodes[0], nodes[2], nodes[3]} }, "dc-a=0, dc-b=1"},
		{"every node leaves", func() { nodes = nil }, "dc-a=0, dc-b=0"},
	}
	for _, step := range steps {
		step.change()
		_, counts := p.counts.count(g, nodes, p.args)
		if got := dcrule.Describe(counts.Total, p.args.Datacenters); got != step.want {
			t.Errorf("%s: counts %s, want %s", step.name, got, step.want)
		}
	}
}

// TestCountCacheFollowsHealth: the datacenters' health comes from the same cached entries; a
// cordoned or removed node must stop counting as usable at the next count.
func TestCountCacheFollowsHealth(t *testing.T) {
	p := newTestPlugin(t, config.OutageHold)
	pending := newPod("p", inRS(rsNew))
	nodes := cluster(nil, nil)
	p.nodeInfos = snapshotOf(nodes)
	g, err := p.groupOf(pending)
	if err != nil || g == nil {
		t.Fatalf("group: %v %v", g, err)
	}
	cordon := func(i int) func() {
		return func() {
			ni := nodes[i].(*framework.NodeInfo)
			n := ni.Node().DeepCopy()
			cordoned(n)
			ni.SetNode(n)
		}
	}
	steps := []struct {
		name     string
		change   func()
		upA, upB bool
	}{
		{"all nodes usable", func() {}, true, true},
		{"one dc-b node cordoned", cordon(2), true, true},
		{"both dc-b nodes cordoned", cordon(3), true, false},
		{"one dc-a node removed", func() { nodes = nodes[1:] }, true, false},
		{"the other dc-a node removed", func() { nodes = nodes[1:] }, false, false},
	}
	for _, step := range steps {
		step.change()
		h, _ := p.counts.count(g, nodes, p.args)
		if h.Up("dc-a") != step.upA || h.Up("dc-b") != step.upB {
			t.Errorf("%s: up dc-a %v dc-b %v, want %v %v", step.name, h.Up("dc-a"), h.Up("dc-b"), step.upA, step.upB)
		}
	}
}

func TestVictimsBreakRule(t *testing.T) {
	// web (ReplicaSet web-new of Deployment web): 2 pods in dc-a (one node each), 1 in dc-b;
	// db (StatefulSet): 1 pod per datacenter; a bare pod and a terminating pod of web.
	a0, a1 := newPod("a0", inRS(rsNew), on("dc-a-0")), newPod("a1", inRS(rsNew), on("dc-a-1"))
	b0 := newPod("b0", inRS(rsNew), on("dc-b-0"))
	gone := newPod("gone", inRS(rsNew), on("dc-b-1"), terminating())
	dbA, dbB := newPod("db-0", ownedBy("StatefulSet", "db", sts.UID), on("dc-a-0")), newPod("db-1", ownedBy("StatefulSet", "db", sts.UID), on("dc-b-0"))
	bare := newPod("bare", on("dc-b-0"))
	p := newTestPlugin(t, config.OutageHold)
	p.nodeInfos = snapshotOf(cluster([]*v1.Pod{a0, a1, b0, gone, dbA, dbB, bare}, nil))
	for _, tc := range []struct {
		name    string
		victims []*v1.Pod
		want    string // substring of the refusal, "" = allowed
	}{
		{"one of two pods in a datacenter", []*v1.Pod{a0}, ""},
		{"both pods of a datacenter", []*v1.Pod{a0, a1}, "deployment shop/web in fewer than two datacenters (dc-a=0, dc-b=1"},
		{"the last live pod of a datacenter (the other is terminating)", []*v1.Pod{b0}, "deployment shop/web in fewer than two datacenters (dc-a=2, dc-b=0"},
		{"the last pod of a StatefulSet in a datacenter", []*v1.Pod{dbB, bare}, "statefulset shop/db"},
		{"pods outside any group", []*v1.Pod{bare}, ""},
		{"a terminating victim", []*v1.Pod{gone}, ""},
		{"one pod of each of two groups, neither the last", []*v1.Pod{a1, bare}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.victimsBreakRule(tc.victims)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("victimsBreakRule = %q, want %q", got, tc.want)
			}
		})
	}
}
