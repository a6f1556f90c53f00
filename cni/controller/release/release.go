// Package release is the IP controller's release-policy controller. It watches pods,
// StatefulSets and claims and gives IPs back as each claim's policy says (ipam.Decide):
// sticky OnScaleDown claims when their StatefulSet is deleted or scaled below the ordinal and the
// pod is gone, sticky OnDelete claims when their pod is deleted, ephemeral claims as soon as the
// deletion (or completion) of their pod is observed. Never is kept. Ephemeral claims whose pod
// vanished unobserved (controller down, force delete, node loss) are left to the gc controller.
// Every release is confirmed with fresh reads of the pod and StatefulSet and deletes exactly the
// claim version decided on.
package release

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/controller/internal/worker"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// Name is the controller's name.
const Name = "ipclaim-release"

// deletedTTL is how long an observed pod deletion is remembered.
const deletedTTL = 10 * time.Minute

// Controller applies release policies.
type Controller struct {
	kube     kubernetes.Interface
	claims   ipam.ClaimClient
	claimInf cache.SharedIndexInformer
	pods     corelisters.PodLister
	sets     appslisters.StatefulSetLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	window   time.Duration
	queue    worker.Queue

	mu      sync.Mutex
	deleted map[types.UID]time.Time // pod instances whose deletion was observed
}

// New wires the controller. window is the reservation window (a Reserved claim younger than it is
// never released).
func New(kube kubernetes.Interface, claims ipam.ClaimClient, claimInf cache.SharedIndexInformer, pods coreinformers.PodInformer,
	sets appsinformers.StatefulSetInformer, recorder record.EventRecorder, window time.Duration) (*Controller, error) {
	if err := ipam.EnsureClaimIndexers(claimInf); err != nil {
		return nil, err
	}
	c := &Controller{
		kube: kube, claims: claims, claimInf: claimInf, pods: pods.Lister(), sets: sets.Lister(),
		synced:   []cache.InformerSynced{claimInf.HasSynced, pods.Informer().HasSynced, sets.Informer().HasSynced},
		recorder: recorder, window: window, queue: worker.NewQueue(Name), deleted: map[types.UID]time.Time{},
	}
	if _, err := claimInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueClaim,
		UpdateFunc: func(_, cur any) { c.enqueueClaim(cur) },
	}); err != nil {
		return nil, fmt.Errorf("%s: claim handler: %w", Name, err)
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, cur any) {
			if p, ok := cur.(*corev1.Pod); ok && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
				c.enqueueOwner(p.Namespace, p.Name)
			}
		},
		DeleteFunc: c.podDeleted,
	}); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", Name, err)
	}
	setChanged := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if s, ok := obj.(*appsv1.StatefulSet); ok {
			for _, cl := range ipam.ClaimsByIndex(c.claimInf, ipam.IndexWorkload, ipam.WorkloadKey(s.Namespace, ipam.KindStatefulSet, s.Name)) {
				c.queue.Add(cl.Name)
			}
		}
	}
	if _, err := sets.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, cur any) { setChanged(cur) },
		DeleteFunc: setChanged,
	}); err != nil {
		return nil, fmt.Errorf("%s: StatefulSet handler: %w", Name, err)
	}
	return c, nil
}

func (c *Controller) enqueueClaim(obj any) {
	if cl, ok := obj.(*v1alpha1.IPClaim); ok {
		c.queue.Add(cl.Name)
	}
}

func (c *Controller) enqueueOwner(ns, name string) {
	for _, cl := range ipam.ClaimsByIndex(c.claimInf, ipam.IndexOwner, ipam.OwnerKey(ns, name)) {
		c.queue.Add(cl.Name)
	}
}

func (c *Controller) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	c.mu.Lock()
	now := time.Now()
	c.deleted[p.UID] = now
	for uid, at := range c.deleted {
		if now.Sub(at) > deletedTTL {
			delete(c.deleted, uid)
		}
	}
	c.mu.Unlock()
	c.enqueueOwner(p.Namespace, p.Name)
}

func (c *Controller) deletionObserved(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.deleted[uid]
	return ok
}

// Run processes claims until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	ctx = klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), Name))
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	worker.Run(ctx, c.queue, workers, c.sync)
}

func (c *Controller) observe(cl *v1alpha1.IPClaim) (ipam.Observation, error) {
	o := ipam.Observation{Now: time.Now(), ReservationWindow: c.window}
	ow := cl.Spec.Owner
	o.Siblings = ipam.ClaimsByIndex(c.claimInf, ipam.IndexOwner, ipam.OwnerKey(ow.Namespace, ow.PodName))
	pod, err := c.pods.Pods(ow.Namespace).Get(ow.PodName)
	if err == nil {
		o.Pod = pod
	} else if !apierrors.IsNotFound(err) {
		return o, err
	}
	if ow.Kind == ipam.KindStatefulSet && ow.Name != "" {
		set, err := c.sets.StatefulSets(ow.Namespace).Get(ow.Name)
		if err == nil {
			o.StatefulSet = set
		} else if !apierrors.IsNotFound(err) {
			return o, err
		}
	}
	return o, nil
}

// Confirm re-reads the pod and the StatefulSet of a claim's owner (and, to judge a duplicate, the
// owner's claims) from the apiserver, not a cache, and decides again. Exported for the gc
// controller, which confirms the same way.
func Confirm(ctx context.Context, kube kubernetes.Interface, claims ipam.ClaimClient, cl *v1alpha1.IPClaim, o ipam.Observation) (ipam.Verdict, error) {
	ow := cl.Spec.Owner
	if ipam.Duplicate(cl, o.Siblings) {
		list, err := claims.List(ctx, metav1.ListOptions{FieldSelector: ipam.OwnerSelector(ow.Namespace, ow.PodName)})
		if err != nil {
			return ipam.Verdict{}, fmt.Errorf("confirm claims of %s/%s: %w", ow.Namespace, ow.PodName, err)
		}
		o.Siblings = nil
		for i := range list.Items {
			o.Siblings = append(o.Siblings, &list.Items[i])
		}
	}
	pod, err := kube.CoreV1().Pods(ow.Namespace).Get(ctx, ow.PodName, metav1.GetOptions{})
	switch {
	case err == nil:
		o.Pod = pod
	case apierrors.IsNotFound(err):
		o.Pod = nil
	default:
		return ipam.Verdict{}, fmt.Errorf("confirm pod %s/%s of claim %s: %w", ow.Namespace, ow.PodName, cl.Name, err)
	}
	if o.StatefulSet != nil || (ow.Kind == ipam.KindStatefulSet && ow.Name != "" && cl.Spec.ReleasePolicy == v1alpha1.ReleaseOnScaleDown) {
		set, err := kube.AppsV1().StatefulSets(ow.Namespace).Get(ctx, ow.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			o.StatefulSet = set
		case apierrors.IsNotFound(err):
			o.StatefulSet = nil
		default:
			return ipam.Verdict{}, fmt.Errorf("confirm StatefulSet %s/%s of claim %s: %w", ow.Namespace, ow.Name, cl.Name, err)
		}
	}
	if o.PodNodeGone && o.Pod != nil && o.Pod.Spec.NodeName != "" {
		_, err := kube.CoreV1().Nodes().Get(ctx, o.Pod.Spec.NodeName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return ipam.Verdict{}, fmt.Errorf("confirm node %s of claim %s: %w", o.Pod.Spec.NodeName, cl.Name, err)
		}
		o.PodNodeGone = apierrors.IsNotFound(err)
	}
	o.Now = time.Now()
	return ipam.Decide(cl, o), nil
}

// Release deletes the claim version decided on and records a Normal Event on it. A Conflict (the
// claim changed, e.g. re-bound by a new pod instance) is not an error: the change requeues it.
func Release(ctx context.Context, claims ipam.ClaimClient, recorder record.EventRecorder, cl *v1alpha1.IPClaim, reason string) error {
	released, err := ipam.ReleaseClaim(ctx, claims, cl, reason)
	if apierrors.IsConflict(err) {
		return nil
	}
	if released && recorder != nil {
		recorder.Eventf(cl, corev1.EventTypeNormal, "Released", "IP %s of pool %s released from %s/%s: %s",
			cl.Spec.IP, cl.Spec.Pool, cl.Spec.Owner.Namespace, cl.Spec.Owner.PodName, reason)
	}
	return err
}

func (c *Controller) sync(ctx context.Context, name string) error {
	obj, ok, err := c.claimInf.GetStore().GetByKey(name)
	if err != nil || !ok {
		return err
	}
	cl := obj.(*v1alpha1.IPClaim)
	if cl.Spec.ReleasePolicy == v1alpha1.ReleaseNever || cl.DeletionTimestamp != nil {
		return nil
	}
	o, err := c.observe(cl)
	if err != nil {
		return err
	}
	v := ipam.Decide(cl, o)
	if !v.Release {
		if cl.Status.Phase == v1alpha1.PhaseReserved && cl.Status.ReservedAt != nil {
			// Look again once the reservation window has passed.
			c.queue.AddAfter(name, time.Until(cl.Status.ReservedAt.Add(c.window))+time.Second)
		}
		return nil
	}
	// An ephemeral claim whose pod simply is not in the cache is the gc controller's business:
	// only a deletion seen here, or a pod present but finished or replaced, is acted on at once.
	if cl.Spec.Mode == v1alpha1.ModeEphemeral && o.Pod == nil && !c.deletionObserved(cl.Status.PodUID) {
		return nil
	}
	v, err = Confirm(ctx, c.kube, c.claims, cl, o)
	if err != nil || !v.Release {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Releasing IP by policy", "claim", cl.Name, "policy", cl.Spec.ReleasePolicy, "reason", v.Reason)
	return Release(ctx, c.claims, c.recorder, cl, v.Reason)
}
