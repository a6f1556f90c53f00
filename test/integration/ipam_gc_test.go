package integration

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/controller/gc"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestGCFreesALeakOnlyOnItsSecondSighting: with no grace at all, the garbage collector still
// leaves a leaked claim (its pod never existed) on the scan that first sees it, and frees it on
// the next one; a claim whose pod exists is never freed.
func TestGCFreesALeakOnlyOnItsSecondSighting(t *testing.T) {
	cp := harness.Start(t)
	cp.CreateNodes(t, harness.TwoDatacenters(1))
	a := ipamAllocator(t, cp)
	ipamPool(t, cp, rangePool("gc", "10.87.0.0/24", "10.87.0.10", 10, func(s *v1alpha1.IPPoolSpec) { s.Default = true }), a)
	node, err := cp.Kube.CoreV1().Nodes().Get(cp.Ctx, "dc-a-node-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ipamNamespace(t, cp, "gc", nil, nil)
	leak, err := a.Allocate(cp.Ctx, ipam.Request{Pod: memPod("gc", "ghost", nil), Node: node, Phase: v1alpha1.PhaseBound, ContainerID: "c-ghost"})
	if err != nil {
		t.Fatal(err)
	}
	live := apiPod(t, cp, "gc", "live", nil, nil)
	kept, err := a.Allocate(cp.Ctx, ipam.Request{Pod: live, Node: node, Phase: v1alpha1.PhaseBound, ContainerID: "c-live"})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(cp.Ctx)
	claims := client.NewIPClaimInformer(cp.Ecloud, 0, ipam.ClaimIndexers())
	factory := informers.NewSharedInformerFactory(cp.Kube, 0)
	pods, nodes := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	c := gc.New(gc.Config{Interval: time.Hour, Grace: 0, ReservationWindow: 0}, cp.Kube, cp.Ecloud.IPClaims(), claims, pods, nodes,
		broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "ecloud-gc-test"}))
	go claims.RunWithContext(ctx)
	factory.Start(ctx.Done())
	defer func() {
		cancel()
		factory.Shutdown()
		broadcaster.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), claims.HasSynced, pods.Informer().HasSynced, nodes.Informer().HasSynced) {
		t.Fatal("gc informers did not sync")
	}
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		_, ok, err := claims.GetStore().GetByKey(leak.Name)
		return ok, err
	}, "the informer to show the leaked claim")
	exists := func(name string) bool {
		_, err := cp.Ecloud.IPClaims().Get(cp.Ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}

	if err := c.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if !exists(leak.Name) {
		t.Fatalf("claim %s (%s) freed on the first scan that saw it leaked; a leak must be seen twice", leak.Name, leak.Spec.IP)
	}
	if err := c.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if exists(leak.Name) {
		t.Errorf("leaked claim %s (%s) still there after its second sighting", leak.Name, leak.Spec.IP)
	}
	if !exists(kept.Name) {
		t.Errorf("claim %s of the live pod %s freed", kept.Name, live.Name)
	}
}
