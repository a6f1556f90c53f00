package dualdatacenter

import (
	"context"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// Score weights: balance dominates, the StatefulSet ordinal's datacenter breaks ties.
const (
	balanceScore = 90
	ordinalScore = fwk.MaxScore - balanceScore
)

// PreScore skips pods PreFilter skipped (no group, exempt).
func (p *DualDatacenter) PreScore(_ context.Context, state fwk.CycleState, _ *v1.Pod, _ []fwk.NodeInfo) *fwk.Status {
	if _, ok := readState(state); !ok {
		return fwk.NewStatus(fwk.Skip)
	}
	return nil
}

// Score prefers the datacenter with the fewest pods of the group, then the datacenter a
// StatefulSet pod's ordinal belongs to (ordinal i → datacenters[i mod n]), so a rescheduled
// stateful pod returns to its datacenter.
func (p *DualDatacenter) Score(_ context.Context, state fwk.CycleState, pod *v1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	s, ok := readState(state)
	if !ok {
		return 0, nil
	}
	dc := s.health.Datacenter(ni.Node())
	if dc == "" {
		return 0, nil
	}
	return scoreFor(s, dc, p.ordinalDatacenter(s.group, pod)), nil
}

func scoreFor(s *cycleState, dc, ordinalDC string) int64 {
	minCount := -1
	for _, d := range s.considered {
		if n := s.counts.Total[d]; minCount < 0 || n < minCount {
			minCount = n
		}
	}
	above := s.counts.Total[dc] - minCount
	if above < 0 {
		above = 0
	}
	score := int64(balanceScore / (1 + above))
	if dc == ordinalDC {
		score += ordinalScore
	}
	return score
}

// ordinalDatacenter is the datacenter a StatefulSet pod's ordinal maps to, "" for other pods.
func (p *DualDatacenter) ordinalDatacenter(g *dcrule.Group, pod *v1.Pod) string {
	if g.Kind != dcrule.KindStatefulSet {
		return ""
	}
	ord := -1
	if v, ok := pod.Labels[appsv1.PodIndexLabel]; ok {
		ord, _ = strconv.Atoi(v)
	} else if ref := metav1.GetControllerOf(pod); ref != nil {
		if i := strings.LastIndexByte(pod.Name, '-'); i >= 0 && pod.Name[:i] == ref.Name {
			ord, _ = strconv.Atoi(pod.Name[i+1:])
		}
	}
	if ord < 0 {
		return ""
	}
	return p.args.Datacenters[ord%len(p.args.Datacenters)]
}

// ScoreExtensions returns nil: scores are already within 0..MaxScore.
func (p *DualDatacenter) ScoreExtensions() fwk.ScoreExtensions { return nil }
