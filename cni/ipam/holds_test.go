package ipam

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// gatedClaims is a ClaimClient whose Create waits until the test opens the gate, so a test can
// look at the allocator while a create is on the wire. Creates succeed (the names are unique IPs).
type gatedClaims struct {
	ClaimClient
	gate    chan struct{}
	entered chan string
}

func (g *gatedClaims) Create(_ context.Context, c *v1alpha1.IPClaim, _ metav1.CreateOptions) (*v1alpha1.IPClaim, error) {
	g.entered <- c.Name
	<-g.gate
	return c.DeepCopy(), nil
}

func (g *gatedClaims) List(context.Context, metav1.ListOptions) (*v1alpha1.IPClaimList, error) {
	return &v1alpha1.IPClaimList{}, nil
}

func (g *gatedClaims) Get(_ context.Context, name string, _ metav1.GetOptions) (*v1alpha1.IPClaim, error) {
	return nil, apierrors.NewNotFound(v1alpha1.Resource("ipclaims"), name)
}

// idleInformer is an informer that is never started: the test feeds the allocator's handlers
// itself, and the claim index stays empty.
func idleInformer(example runtime.Object) cache.SharedIndexInformer {
	return cache.NewSharedIndexInformer(&cache.ListWatch{}, example, 0, cache.Indexers{})
}

// TestHoldBecomesTheAllocatedIP: the scheduler takes a hold at Reserve and allocates in its
// binding cycle. While that pod's create is in flight the pod must count once, so the second pod
// of a two-IP pool still finds its free IP (it was refused as "exhausted" when the hold was given
// back only after the create returned).
func TestHoldBecomesTheAllocatedIP(t *testing.T) {
	pool := v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "two"},
		Spec: v1alpha1.IPPoolSpec{CIDR: "10.9.0.0/29", Gateway: "10.9.0.1",
			IncludeRanges: []v1alpha1.IPRange{{Start: "10.9.0.2", End: "10.9.0.3"}}},
	}
	pools, claimsInf := idleInformer(&v1alpha1.IPPool{}), idleInformer(&v1alpha1.IPClaim{})
	claims := &gatedClaims{gate: make(chan struct{}), entered: make(chan string, 2)}
	a, err := New(Config{Claims: claims, Pools: pools, ClaimsInformer: claimsInf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a.setPool(&pool) // what the pool informer's add handler does
	if got := a.Free("two"); got != 2 {
		t.Fatalf("Free = %d, want 2", got)
	}
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name + "-uid"),
			Annotations: map[string]string{v1alpha1.AnnotationIPPools: "two"}}}
	}

	h1, ok := a.TakeHold("two")
	if !ok {
		t.Fatal("first hold refused in an empty two-IP pool")
	}
	var wg sync.WaitGroup
	var ip1 string
	var err1 error
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := a.Allocate(ctx, Request{Pod: pod("p1"), Hold: h1})
		a.ReturnHold(h1)
		err1 = err
		if c != nil {
			ip1 = c.Spec.IP
		}
	}()
	select {
	case <-claims.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first allocation never reached Create")
	}
	// p1's create is on the wire: the pool has one IP left, and p2 can hold it.
	if got := a.Free("two"); got != 1 {
		t.Errorf("Free while p1's create is in flight = %d, want 1 (p1 counted once)", got)
	}
	h2, ok := a.TakeHold("two")
	if !ok {
		t.Fatal("second hold refused while one IP of the pool is free")
	}
	if _, ok := a.TakeHold("two"); ok {
		t.Error("a third hold was granted in a two-IP pool")
	}
	close(claims.gate)
	wg.Wait()
	c2, err := a.Allocate(ctx, Request{Pod: pod("p2"), Hold: h2})
	a.ReturnHold(h2)
	if err1 != nil || err != nil {
		t.Fatalf("allocations failed: p1 %v, p2 %v", err1, err)
	}
	if ip1 == c2.Spec.IP {
		t.Errorf("both pods got %s", ip1)
	}
	if got := a.Free("two"); got != 0 {
		t.Errorf("Free after both allocations = %d, want 0", got)
	}

	// A hold nobody used is given back once, however often ReturnHold is called.
	a2, err := New(Config{Claims: claims, Pools: pools, ClaimsInformer: claimsInf})
	if err != nil {
		t.Fatal(err)
	}
	a2.setPool(&pool)
	h, ok := a2.TakeHold("two")
	if !ok || a2.Free("two") != 1 {
		t.Fatalf("hold = %v, Free = %d, want a hold and 1 free", ok, a2.Free("two"))
	}
	a2.ReturnHold(h)
	a2.ReturnHold(h)
	if got := a2.Free("two"); got != 2 {
		t.Errorf("Free after returning the hold twice = %d, want 2", got)
	}
}
