// Package dualdatacenter is the DualDatacenter kube-scheduler plugin: every group of pods (a
// Deployment, StatefulSet, ReplicaSet or ecloud.io/group label) keeps pods in every configured
// datacenter, balanced within maxSkew, and each revision with two or more pods is spread too. The
// rule itself lives in ../dcrule, shared with the deletion-cost controller.
package dualdatacenter

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	_ "github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/scheme" // registers the args types
	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/validation"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "DualDatacenter"

// DualDatacenter implements the two-datacenter rule at scheduling time.
type DualDatacenter struct {
	args   config.DualDatacenterArgs
	rule   dcrule.Rule
	handle fwk.Handle
	// nodeInfos is the scheduler's snapshot (a field so tests can give their own).
	nodeInfos func() fwk.NodeInfoLister
	resolver  *dcrule.Resolver
	inflight  *inflight
	counts    *countCache
}

var (
	_ fwk.PreFilterPlugin   = &DualDatacenter{}
	_ fwk.FilterPlugin      = &DualDatacenter{}
	_ fwk.PreScorePlugin    = &DualDatacenter{}
	_ fwk.ScorePlugin       = &DualDatacenter{}
	_ fwk.ReservePlugin     = &DualDatacenter{}
	_ fwk.PostBindPlugin    = &DualDatacenter{}
	_ fwk.EnqueueExtensions = &DualDatacenter{}
	_ fwk.SignPlugin        = &DualDatacenter{}
)

// New is the plugin factory for app.WithPlugin. It validates the args and fails on bad ones,
// which makes the scheduler exit with the field errors.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := decodeArgs(obj)
	if err != nil {
		return nil, err
	}
	if err := validation.ValidateDualDatacenterArgs(field.NewPath("args"), args); err != nil {
		return nil, err
	}
	registerMetrics()
	// The counter of this profile's policy exists from the start: a query over it sees 0, not nothing.
	blockedTotal.WithLabelValues(string(args.OutagePolicy)).Add(0)
	apps := h.SharedInformerFactory().Apps().V1()
	p := &DualDatacenter{
		args:      *args,
		rule:      dcrule.Rule{MaxSkew: args.MaxSkew},
		handle:    h,
		nodeInfos: func() fwk.NodeInfoLister { return h.SnapshotSharedLister().NodeInfos() },
		resolver: &dcrule.Resolver{
			ReplicaSets:  apps.ReplicaSets().Lister(),
			StatefulSets: apps.StatefulSets().Lister(),
		},
		inflight: newInflight(),
		counts:   newCountCache(),
	}
	return p, nil
}

// decodeArgs accepts the typed internal args (the scheme registration did its work) and, for
// callers that bypass the scheme, raw args (defaults are not applied then, and validation says so).
func decodeArgs(obj runtime.Object) (*config.DualDatacenterArgs, error) {
	switch a := obj.(type) {
	case *config.DualDatacenterArgs:
		return a, nil
	case nil:
		return nil, fmt.Errorf("%s: no args: at least datacenters must be configured", Name)
	default:
		return nil, fmt.Errorf("%s: args of type %T, want *config.DualDatacenterArgs (is the args scheme registered?)", Name, obj)
	}
}

// Name returns the plugin's name.
func (p *DualDatacenter) Name() string { return Name }

// groupOf resolves the pod's group; nil when the pod is not constrained (no group, or exempt).
func (p *DualDatacenter) groupOf(pod *v1.Pod) (*dcrule.Group, error) {
	if !dcrule.MayHaveGroup(pod) {
		return nil, nil
	}
	g, err := p.resolver.GroupOf(pod)
	if err != nil || g == nil || dcrule.Exempt(pod, g) {
		return nil, err
	}
	return g, nil
}

// SignPod declines to sign pods the rule constrains (their placement depends on where their group
// mates are, so results cannot be reused across pods) and signs the rest with no fragment.
func (p *DualDatacenter) SignPod(_ context.Context, pod *v1.Pod) ([]fwk.SignFragment, *fwk.Status) {
	g, err := p.groupOf(pod)
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	if g != nil {
		return nil, fwk.NewStatus(fwk.Unschedulable, "pods in a dual-datacenter group are not signable")
	}
	return nil, nil
}
