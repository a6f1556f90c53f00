package integration

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/harness"
)

// ipamAllocator builds an Allocator on its own informers (as a separate process would) with an
// event recorder, and waits until it has synced.
func ipamAllocator(tb testing.TB, cp *harness.ControlPlane, configure ...func(*ipam.Config)) *ipam.Allocator {
	tb.Helper()
	ctx, cancel := context.WithCancel(cp.Ctx)
	pools := client.NewIPPoolInformer(cp.Ecloud, 0)
	claims := client.NewIPClaimInformer(cp.Ecloud, 0, ipam.ClaimIndexers())
	factory := informers.NewSharedInformerFactory(cp.Kube, 0)
	nsInf := factory.Core().V1().Namespaces()
	nsLister := nsInf.Lister()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cp.Kube.CoreV1().Events("")})
	cfg := ipam.Config{
		Claims: cp.Ecloud.IPClaims(), Pools: pools, ClaimsInformer: claims, Namespaces: nsLister,
		Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "ecloud-ipam-test"}),
	}
	for _, f := range configure {
		f(&cfg)
	}
	a, err := ipam.New(cfg)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	go pools.RunWithContext(ctx)
	go claims.RunWithContext(ctx)
	factory.Start(ctx.Done())
	tb.Cleanup(func() {
		cancel()
		broadcaster.Shutdown()
		factory.Shutdown()
	})
	if !cache.WaitForCacheSync(ctx.Done(), a.HasSynced, nsInf.Informer().HasSynced) {
		tb.Fatal("ipam allocator informers did not sync")
	}
	return a
}

// ipamPool creates a pool and waits until the allocators see it.
func ipamPool(tb testing.TB, cp *harness.ControlPlane, p *v1alpha1.IPPool, allocs ...*ipam.Allocator) *v1alpha1.IPPool {
	tb.Helper()
	created, err := cp.Ecloud.IPPools().Create(cp.Ctx, p, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("create pool %s: %v", p.Name, err)
	}
	for _, a := range allocs {
		harness.Eventually(tb, 10*time.Second, func() (bool, error) {
			got, err := a.Pool(p.Name)
			return got != nil, err
		}, "allocator to see pool %s", p.Name)
	}
	return created
}

// rangePool is a pool of the addresses first..first+size-1 of cidr (gateway: the network + 1).
func rangePool(name, cidr string, first string, size int, mutate ...func(*v1alpha1.IPPoolSpec)) *v1alpha1.IPPool {
	prefix := netip.MustParsePrefix(cidr)
	start := netip.MustParseAddr(first)
	end := start
	for i := 1; i < size; i++ {
		end = end.Next()
	}
	p := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.IPPoolSpec{
			CIDR: cidr, Gateway: prefix.Addr().Next().String(),
			IncludeRanges: []v1alpha1.IPRange{{Start: start.String(), End: end.String()}},
		},
	}
	for _, m := range mutate {
		m(&p.Spec)
	}
	return p
}

// ipamNamespace creates a namespace with labels and annotations.
func ipamNamespace(tb testing.TB, cp *harness.ControlPlane, name string, labels, ann map[string]string) {
	tb.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: ann}}
	if _, err := cp.Kube.CoreV1().Namespaces().Create(cp.Ctx, ns, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("create namespace %s: %v", name, err)
	}
}

// memPod is a pod object that exists only in memory (the allocator needs identity, UID,
// annotations and owner, not the API object).
func memPod(ns, name string, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uuid.NewUUID(), Annotations: ann}}
}

// apiPod creates a pod (optionally owned by a StatefulSet) in the apiserver.
func apiPod(tb testing.TB, cp *harness.ControlPlane, ns, name string, ann map[string]string, owner *metav1.OwnerReference) *corev1.Pod {
	tb.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app"}}},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	created, err := cp.Kube.CoreV1().Pods(ns).Create(cp.Ctx, p, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return created
}

// forceDeletePod deletes a pod at once (no kubelet runs).
func forceDeletePod(tb testing.TB, cp *harness.ControlPlane, ns, name string) {
	tb.Helper()
	if err := cp.Kube.CoreV1().Pods(ns).Delete(cp.Ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		tb.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
}

func setOwner(name string, uid types.UID) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: name, UID: uid, Controller: ptr.To(true)}
}

// claimsByIP lists every claim and fails on two claims for one IP or one ephemeral pod instance.
func claimsByIP(tb testing.TB, cp *harness.ControlPlane) map[string]*v1alpha1.IPClaim {
	tb.Helper()
	list, err := cp.Ecloud.IPClaims().List(cp.Ctx, metav1.ListOptions{})
	if err != nil {
		tb.Fatalf("list claims: %v", err)
	}
	out := map[string]*v1alpha1.IPClaim{}
	owners := map[string]string{}
	for i := range list.Items {
		c := &list.Items[i]
		if prev, dup := out[c.Spec.IP]; dup {
			tb.Fatalf("IP %s claimed twice: %s and %s", c.Spec.IP, prev.Name, c.Name)
		}
		out[c.Spec.IP] = c
		key := fmt.Sprintf("%s/%s/%s", c.Spec.Owner.Namespace, c.Spec.Owner.PodName, c.Spec.Mode)
		if c.Spec.Mode == v1alpha1.ModeEphemeral {
			key += "/" + string(c.Status.PodUID)
		}
		if prev, dup := owners[key]; dup {
			tb.Fatalf("%s holds two IPs: %s and %s", key, prev, c.Spec.IP)
		}
		owners[key] = c.Spec.IP
	}
	return out
}
