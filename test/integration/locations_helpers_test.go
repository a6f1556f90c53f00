package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/informers"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/controller/locationslices"
	"github.com/ecloud-io/ecloud/test/harness"
)

// startLocationSlices runs the ip-controller's location slice controller alone (not its GC or
// release controllers) against cp until the test ends or stop is called: what every netd
// follows for the other nodes' IPs.
func startLocationSlices(tb testing.TB, cp *harness.ControlPlane, cfg locationslices.Config) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(cp.Ctx)
	factory := informers.NewSharedInformerFactory(cp.Kube, 0)
	claims := client.NewIPClaimInformer(cp.Ecloud, 0, nil)
	pools := client.NewIPPoolInformer(cp.Ecloud, 0)
	slices := client.NewIPLocationSliceInformer(cp.Ecloud, 0)
	ctl, err := locationslices.New(cp.Ecloud, claims, pools, factory.Core().V1().Nodes().Informer(), slices, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, run := range []func(){
		func() { claims.RunWithContext(ctx) }, func() { pools.RunWithContext(ctx) }, func() { slices.RunWithContext(ctx) },
		func() { ctl.Run(ctx, 2) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	factory.Start(ctx.Done())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			done := make(chan struct{})
			go func() { wg.Wait(); factory.Shutdown(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				tb.Errorf("the location slice controller did not stop within 30s")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}
