package dualdatacenter

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

const stateKey fwk.StateKey = Name + ".state"

// cycleState is what PreFilter learns about the pod's group, reused by Filter, Score, Reserve and
// PostBind. It is never modified after PreFilter, so Clone shares it.
type cycleState struct {
	group    *dcrule.Group
	revision string
	counts   *dcrule.Counts
	// considered are the datacenters the rule is applied over: all configured ones, or under
	// Degrade only those with a usable node.
	considered []string
	verdict    dcrule.Verdict
	// degraded[dc] explains why a placement in dc breaks the full rule (allowed only by Degrade).
	degraded map[string]string
	health   *dcrule.Health
}

func (s *cycleState) Clone() fwk.StateData { return s }

func readState(state fwk.CycleState) (*cycleState, bool) {
	d, err := state.Read(stateKey)
	if err != nil {
		return nil, false
	}
	s, ok := d.(*cycleState)
	return s, ok
}

// PreFilter finds the pod's group, counts it per datacenter from the snapshot (plus pods reserved
// but not yet in it) and judges every datacenter once; Filter then only looks up the node's.
func (p *DualDatacenter) PreFilter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	g, err := p.groupOf(pod)
	if err != nil {
		return nil, fwk.AsStatus(fmt.Errorf("resolving the group of pod %s/%s: %w", pod.Namespace, pod.Name, err))
	}
	if g == nil {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	rev, _ := g.Revision(pod)
	s := p.judge(klog.FromContext(ctx), g, rev, nodes)
	state.Write(stateKey, s)
	return nil, nil
}

// judge counts the group and evaluates the rule for every datacenter.
func (p *DualDatacenter) judge(logger klog.Logger, g *dcrule.Group, rev string, nodes []fwk.NodeInfo) *cycleState {
	health, counts := p.counts.count(g, nodes, p.args)
	p.inflight.addUnseen(g.Key(), p.inSnapshot, counts)

	s := &cycleState{group: g, revision: rev, counts: counts, health: health, degraded: map[string]string{}}
	s.considered = p.args.Datacenters
	var out []string
	for _, dc := range p.args.Datacenters {
		if !health.Up(dc) {
			out = append(out, dc)
		}
	}
	full := p.rule.Evaluate(g, rev, counts, p.args.Datacenters)
	if len(out) > 0 && p.args.OutagePolicy == config.OutageDegrade && len(out) < len(p.args.Datacenters) {
		s.considered = nil
		for _, dc := range p.args.Datacenters {
			if health.Up(dc) {
				s.considered = append(s.considered, dc)
			}
		}
		s.verdict = p.rule.Evaluate(g, rev, counts, s.considered)
		for dc, reason := range full {
			if reason != "" && s.verdict.Allowed(dc) {
				s.degraded[dc] = fmt.Sprintf("datacenter(s) %v out: placed %s in %s although %s (outagePolicy Degrade)",
					out, g, dc, reason)
			}
		}
	} else {
		s.verdict = full
		if len(out) > 0 {
			for dc, reason := range full {
				if reason != "" {
					s.verdict[dc] = fmt.Sprintf("%s; datacenter(s) %v out, outagePolicy %s", reason, out, p.args.OutagePolicy)
				}
			}
		}
	}
	if !anyAllowed(s.verdict) {
		blockedTotal.WithLabelValues(string(p.args.OutagePolicy)).Inc()
	}
	if v := logger.V(4); v.Enabled() {
		v.Info("DualDatacenter verdict", "group", g.String(), "revision", rev,
			"counts", dcrule.Describe(counts.Total, p.args.Datacenters), "out", out, "verdict", s.verdict)
	}
	return s
}

// PreFilterExtensions returns nil: rejections are UnschedulableAndUnresolvable (preempting pods on
// a node cannot move the group's pods), so preemption never asks what removing a pod would do.
func (p *DualDatacenter) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter lets the node through only if its datacenter may take the pod.
func (p *DualDatacenter) Filter(_ context.Context, state fwk.CycleState, _ *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	s, ok := readState(state)
	if !ok {
		return fwk.AsStatus(fmt.Errorf("%s: no PreFilter state", Name))
	}
	node := ni.Node()
	dc := s.health.Datacenter(node)
	if dc == "" {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable,
			fmt.Sprintf("node(s) outside the datacenters %v (label %s)", p.args.Datacenters, p.args.TopologyKey))
	}
	reason, judged := s.verdict[dc]
	if !judged {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) in %s, which is out", dc))
	}
	if reason != "" {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, reason)
	}
	return nil
}

func anyAllowed(v dcrule.Verdict) bool {
	for _, reason := range v {
		if reason == "" {
			return true
		}
	}
	return false
}
