package integration

import (
	"context"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
)

// todayDesign is the per-claim design: every netd watches every IPClaim and keeps one tunnel
// port per other node (full mesh). Its simulated nodes run the claim informer netd runs.
func todayDesign(cfg scaleConfig) *scaleDesign {
	return &scaleDesign{
		name: "per-claim", netd: cfg.todayNetd, mesh: cfg.todayMesh, simNodes: cfg.todaySimNodes,
		before: func(e *scaleEnv) {
			if e.ipControllerPID == 0 {
				e.startIPController()
			}
		},
		follow: func(ctx context.Context, rc *rest.Config, _ string, seen func(ip, node string)) (func() int, func() bool, error) {
			cs, err := client.NewForConfig(rc)
			if err != nil {
				return nil, nil, err
			}
			inf := client.NewIPClaimInformer(cs, 0, nil)
			located := func(obj any) {
				if c, ok := obj.(*v1alpha1.IPClaim); ok {
					node := c.Status.Node
					if c.Status.Phase != v1alpha1.PhaseBound {
						node = ""
					}
					seen(c.Spec.IP, node)
				}
			}
			if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    located,
				UpdateFunc: func(_, obj any) { located(obj) },
				DeleteFunc: func(obj any) {
					if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
						obj = t.Obj
					}
					if c, ok := obj.(*v1alpha1.IPClaim); ok {
						seen(c.Spec.IP, "")
					}
				},
			}); err != nil {
				return nil, nil, err
			}
			go inf.RunWithContext(ctx)
			return func() int { return len(inf.GetStore().ListKeys()) }, inf.HasSynced, nil
		},
	}
}
