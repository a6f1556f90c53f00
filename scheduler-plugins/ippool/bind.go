package ippool

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
)

// Bind writes the pod's IP claim and then binds the pod as the DefaultBinder does, when IPPool is
// the profile's first Bind plugin (`bind: {enabled: [{name: IPPool}]}` in the profile; the
// DefaultBinder after it is then never reached). The claim is created in the same binding
// goroutine right before the binding call, so after bind it exists exactly as with PreBind, and
// an abandoned binding releases it at Unreserve. Binding here instead of writing the claim at
// PreBind saves one write of the pod per pod: a PreBind with work (PreBindPreFlight Success)
// makes the scheduler patch status.nominatedNodeName of the pod before PreBind runs (KEP-5278,
// for cluster autoscalers), which costs the apiserver as much as the binding itself. When IPPool
// is not the first binder, its PreBind writes the claim and Bind only binds.
func (p *IPPool) Bind(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	if needsIP(pod) && p.bindsFirst(ctx) {
		if st := p.writeClaim(ctx, pod, nodeName); !st.IsSuccess() {
			return st
		}
	}
	return p.binder.Bind(ctx, state, pod, nodeName)
}

// pluginLister is implemented by the scheduler framework behind a plugin's Handle.
type pluginLister interface {
	ListPlugins() *config.Plugins
}

// bindsFirst reports whether IPPool is the first Bind plugin of its profile, i.e. whether its
// Bind runs for every pod. It is decided once, at the first binding cycle (the profile's plugin
// lists are complete only after every factory ran); a Handle that cannot list its plugins means
// no, and PreBind writes the claims.
func (p *IPPool) bindsFirst(ctx context.Context) bool {
	p.bindOnce.Do(func() {
		if l, ok := p.handle.(pluginLister); ok {
			binds := l.ListPlugins().Bind.Enabled
			p.isBinder = len(binds) > 0 && binds[0].Name == Name
		}
		if !p.isBinder {
			klog.FromContext(ctx).Info("IPPool writes IP claims at PreBind; making it the profile's first Bind plugin saves the nominatedNodeName patch of every pod",
				"config", "plugins.bind.enabled: [{name: IPPool}]")
		}
	})
	return p.isBinder
}
