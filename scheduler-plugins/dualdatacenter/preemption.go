package dualdatacenter

// Preemption that keeps the two-datacenter rule: DualDatacenter's PostFilter is the upstream
// DefaultPreemption (same candidate search, PDB handling, victim ordering and asynchronous
// eviction) with two additions. A pod is not a preemption victim when it is its group's last pod
// in a datacenter while the group has pods in another one, and a node's victim set is refused
// when together they would leave a group that now runs in two or more datacenters with pods in
// one only. Profiles using it disable DefaultPreemption (otherwise DefaultPreemption runs first
// and preempts without these checks).

import (
	"context"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	policy "k8s.io/api/policy/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	kconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultpreemption"
	plfeature "k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/preemption"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

var (
	_ fwk.PostFilterPlugin                = &DualDatacenter{}
	_ fwk.PreEnqueuePlugin                = &DualDatacenter{}
	_ preemption.Interface                = &preemptor{}
	_ defaultpreemption.IsEligiblePodFunc = (&DualDatacenter{}).eligibleVictim
)

// Upstream's DefaultPreemptionArgs defaults (kube-scheduler config v1): dry-run preemption on at
// least 10 % of the nodes, and at least 100.
const (
	minCandidateNodesPercentage = 10
	minCandidateNodesAbsolute   = 100
)

// preemptor is the upstream DefaultPreemption with the victim set checked against the rule.
type preemptor struct {
	*defaultpreemption.DefaultPreemption
	dd *DualDatacenter
}

// newPreemption builds the default preemption for the profile of h, wired to the rule.
func newPreemption(ctx context.Context, h fwk.Handle, dd *DualDatacenter) (*defaultpreemption.DefaultPreemption, error) {
	args := &kconfig.DefaultPreemptionArgs{
		MinCandidateNodesPercentage: minCandidateNodesPercentage,
		MinCandidateNodesAbsolute:   minCandidateNodesAbsolute,
	}
	dp, err := defaultpreemption.New(ctx, args, h, plfeature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate))
	if err != nil {
		return nil, fmt.Errorf("%s: preemption: %w", Name, err)
	}
	dp.IsEligiblePod = dd.eligibleVictim
	dp.Evaluator = preemption.NewEvaluator(Name, h, &preemptor{DefaultPreemption: dp, dd: dd}, dp.Executor)
	return dp, nil
}

// PostFilter preempts lower-priority pods for pod as DefaultPreemption does, never leaving a
// group of the victims with pods in a single datacenter.
func (p *DualDatacenter) PostFilter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, m fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	return p.preemption.PostFilter(ctx, state, pod, m)
}

// PreEnqueue holds back a pod whose preemption is still evicting its victims (as DefaultPreemption
// does with asynchronous preemption).
func (p *DualDatacenter) PreEnqueue(ctx context.Context, pod *v1.Pod) *fwk.Status {
	return p.preemption.PreEnqueue(ctx, pod)
}

// SelectVictimsOnNode is DefaultPreemption's choice of victims on the node, refused when the
// victims together would leave one of their groups in a single datacenter.
func (w *preemptor) SelectVictimsOnNode(ctx context.Context, state fwk.CycleState, pod *v1.Pod, ni fwk.NodeInfo,
	all []*preemption.DomainVictim, pdbs []*policy.PodDisruptionBudget) ([]*v1.Pod, int, *fwk.Status) {
	victims, violations, st := w.DefaultPreemption.SelectVictimsOnNode(ctx, state, pod, ni, all, pdbs)
	if !st.IsSuccess() {
		return victims, violations, st
	}
	if reason := w.dd.victimsBreakRule(victims); reason != "" {
		klog.FromContext(ctx).V(4).Info("Preemption victims refused", "pod", klog.KObj(pod), "node", ni.Node().Name, "reason", reason)
		return nil, 0, fwk.NewStatus(fwk.Unschedulable, reason)
	}
	return victims, violations, nil
}

// eligibleVictim refuses a victim one of whose pods is its group's last in a datacenter while the
// group has pods in another.
func (p *DualDatacenter) eligibleVictim(_ fwk.NodeInfo, victim preemption.Victim, _ *v1.Pod) bool {
	for _, pi := range victim.Pods() {
		if p.victimsBreakRule([]*v1.Pod{pi.GetPod()}) != "" {
			return false
		}
	}
	return true
}

// victimsBreakRule says which group removing victims would leave with pods in one datacenter only
// while it has pods in two or more now; "" when none.
func (p *DualDatacenter) victimsBreakRule(victims []*v1.Pod) string {
	nodes, err := p.nodeInfos().List()
	if err != nil {
		return fmt.Sprintf("%s: listing nodes: %v", Name, err)
	}
	type groupVictims struct {
		group   *dcrule.Group
		removed map[string]int // datacenter → victims there
	}
	byGroup := map[string]*groupVictims{}
	var keys []string
	for _, v := range victims {
		g, err := p.groupOf(v)
		if err != nil || g == nil || v.DeletionTimestamp != nil {
			continue // a pod outside the rule, or one already going (not counted anyway)
		}
		ni, err := p.nodeInfos().Get(v.Spec.NodeName)
		if err != nil {
			continue
		}
		dc := dcrule.NewHealth(p.args.TopologyKey, p.args.Datacenters).Datacenter(ni.Node())
		if dc == "" {
			continue
		}
		gv := byGroup[g.Key()]
		if gv == nil {
			gv = &groupVictims{group: g, removed: map[string]int{}}
			byGroup[g.Key()] = gv
			keys = append(keys, g.Key())
		}
		gv.removed[dc]++
	}
	sort.Strings(keys)
	for _, key := range keys {
		gv := byGroup[key]
		_, counts := p.counts.count(gv.group, nodes, p.args)
		var before, after []string
		left := map[string]int{}
		for _, dc := range p.args.Datacenters {
			if counts.Total[dc] > 0 {
				before = append(before, dc)
			}
			if left[dc] = counts.Total[dc] - gv.removed[dc]; left[dc] > 0 {
				after = append(after, dc)
			}
		}
		if len(before) >= 2 && len(after) < 2 {
			return fmt.Sprintf("preempting would leave %s in fewer than two datacenters (%s after preemption, now in %s)",
				gv.group, dcrule.Describe(left, p.args.Datacenters), strings.Join(before, ", "))
		}
	}
	return ""
}
