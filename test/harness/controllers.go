package harness

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/kubernetes/pkg/controller/deployment"
	"k8s.io/kubernetes/pkg/controller/replicaset"
	"k8s.io/kubernetes/pkg/controller/statefulset"
)

// Controller names an in-tree controller the harness can run in-process.
type Controller string

// The in-tree controllers integration tests use.
const (
	ReplicaSetController  Controller = "replicaset"
	DeploymentController  Controller = "deployment"
	StatefulSetController Controller = "statefulset"
)

// StartControllers runs the named kube-controller-manager controllers in this process against
// the control plane, with their own informer factory. They stop (and are waited for) before the
// apiserver is torn down.
func (cp *ControlPlane) StartControllers(tb testing.TB, names ...Controller) {
	tb.Helper()
	ctx, cancel := context.WithCancel(cp.Ctx)
	factory := informers.NewSharedInformerFactory(cp.Kube, 0)
	var runs []func()
	for _, name := range names {
		switch name {
		case ReplicaSetController:
			c := replicaset.NewReplicaSetController(ctx, factory.Apps().V1().ReplicaSets(), factory.Core().V1().Pods(), cp.Kube, replicaset.BurstReplicas)
			runs = append(runs, func() { c.Run(ctx, 5) })
		case DeploymentController:
			c, err := deployment.NewDeploymentController(ctx, factory.Apps().V1().Deployments(), factory.Apps().V1().ReplicaSets(), factory.Core().V1().Pods(), cp.Kube)
			if err != nil {
				cancel()
				tb.Fatalf("harness: deployment controller: %v", err)
			}
			runs = append(runs, func() { c.Run(ctx, 5) })
		case StatefulSetController:
			c := statefulset.NewStatefulSetController(ctx, factory.Core().V1().Pods(), factory.Apps().V1().StatefulSets(),
				factory.Core().V1().PersistentVolumeClaims(), factory.Apps().V1().ControllerRevisions(), cp.Kube)
			runs = append(runs, func() { c.Run(ctx, 5) })
		default:
			cancel()
			tb.Fatalf("harness: unknown controller %q", name)
		}
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	tb.Cleanup(func() {
		cancel()
		factory.Shutdown()
		waitGroupTimeout(tb, &wg, 30*time.Second, "in-tree controllers")
	})
}

func waitGroupTimeout(tb testing.TB, wg *sync.WaitGroup, d time.Duration, what string) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		tb.Errorf("harness: %s did not stop within %s", what, d)
	}
}
