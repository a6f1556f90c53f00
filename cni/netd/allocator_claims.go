package netd

// The interim Allocator: it works directly on IPClaims/IPPools through cni/client (one claim
// per IP, named after it; AlreadyExists means taken, try the next). cni/ipam replaces it.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// ClaimAllocator implements Allocator on the IPClaim API.
type ClaimAllocator struct {
	kube   kubernetes.Interface
	ecloud *client.Clientset
	claims cache.Indexer
	pools  cache.Store
	pods   cache.Store // this node's pods; nil means always ask the apiserver

	mu      sync.Mutex
	pending map[string]bool // claim names being created by this process
}

var _ Allocator = &ClaimAllocator{}

// ownerIndex indexes claims by "namespace/podName" of their owner.
const ownerIndex = "owner"

// ClaimIndexers are the indexers the claim informer must carry for ClaimAllocator.
func ClaimIndexers() cache.Indexers {
	return cache.Indexers{ownerIndex: func(obj any) ([]string, error) {
		c, ok := obj.(*v1alpha1.IPClaim)
		if !ok {
			return nil, nil
		}
		return []string{c.Spec.Owner.Namespace + "/" + c.Spec.Owner.PodName}, nil
	}}
}

// NewClaimAllocator builds the allocator on the daemon's informer stores (pods may be nil).
func NewClaimAllocator(kube kubernetes.Interface, ecloud *client.Clientset, claims cache.Indexer, pools, pods cache.Store) *ClaimAllocator {
	return &ClaimAllocator{kube: kube, ecloud: ecloud, claims: claims, pools: pools, pods: pods, pending: map[string]bool{}}
}

// Allocate implements Allocator.
func (a *ClaimAllocator) Allocate(ctx context.Context, pod nodeapi.PodRef, containerID, node string) (Lease, error) {
	logger := klog.FromContext(ctx)
	objs, _ := a.claims.ByIndex(ownerIndex, pod.String())
	for _, o := range objs {
		c := o.(*v1alpha1.IPClaim)
		if c.Status.Phase == v1alpha1.PhaseReleased {
			continue
		}
		bound, err := a.bind(ctx, c.Name, pod, containerID, node)
		if apierrors.IsNotFound(err) {
			continue // released a moment ago; the informer has not seen it yet
		}
		if err != nil {
			return Lease{}, err
		}
		logger.V(2).Info("Bound existing claim", "claim", bound.Name, "mode", bound.Spec.Mode)
		return a.leaseFor(bound)
	}
	p, err := a.pod(ctx, pod)
	if err != nil {
		return Lease{}, err
	}
	pools, err := a.poolsFor(ctx, pod, p, node)
	if err != nil {
		return Lease{}, err
	}
	claim := &v1alpha1.IPClaim{Spec: v1alpha1.IPClaimSpec{
		Owner: ownerOf(pod, p), Mode: v1alpha1.ModeEphemeral, ReleasePolicy: v1alpha1.ReleaseOnDelete,
	}}
	if isSticky(p) {
		claim.Spec.Mode = v1alpha1.ModeSticky
		claim.Spec.ReleasePolicy = v1alpha1.ReleaseOnScaleDown
		if r := annotation(p, v1alpha1.AnnotationIPRelease); r != "" {
			claim.Spec.ReleasePolicy = v1alpha1.ReleasePolicy(r)
		}
	}
	now := metav1.NewTime(time.Now())
	claim.Status = v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseBound, Node: node, PodUID: types.UID(pod.UID), ContainerID: containerID, BoundAt: &now}
	if want := annotation(p, v1alpha1.AnnotationIPAddress); want != "" {
		return a.claimSpecific(ctx, pools, claim, want)
	}
	for _, pool := range pools {
		for ip := range candidates(pool) {
			name := v1alpha1.ClaimName(ip.String())
			if _, taken, _ := a.claims.GetByKey(name); taken || !a.reserve(name) {
				continue
			}
			created, err := a.create(ctx, claim, pool, ip)
			a.unreserve(name)
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return Lease{}, err
			}
			logger.V(2).Info("Claimed IP", "claim", created.Name, "pool", pool.Name)
			return a.leaseFor(created)
		}
	}
	return Lease{}, nodeapi.Errorf(nodeapi.CodePoolExhausted, "pod %s: no free IP left in pool(s) %s: add IPs to a pool (includeRanges/cidr) or name another pool in the %s annotation",
		pod, poolNames(pools), v1alpha1.AnnotationIPPools)
}

func (a *ClaimAllocator) claimSpecific(ctx context.Context, pools []*v1alpha1.IPPool, claim *v1alpha1.IPClaim, want string) (Lease, error) {
	ip, err := netip.ParseAddr(want)
	if err != nil {
		return Lease{}, nodeapi.Errorf(nodeapi.CodeBadAnnotation, "pod %s/%s: annotation %s=%q is not an IP address", claim.Spec.Owner.Namespace, claim.Spec.Owner.PodName, v1alpha1.AnnotationIPAddress, want)
	}
	for _, pool := range pools {
		if pfx, err := netip.ParsePrefix(pool.Spec.CIDR); err != nil || !pfx.Contains(ip) {
			continue
		}
		claim.Spec.Mode = v1alpha1.ModeSticky
		if claim.Spec.ReleasePolicy == v1alpha1.ReleaseOnDelete {
			claim.Spec.ReleasePolicy = v1alpha1.ReleaseOnScaleDown
		}
		created, err := a.create(ctx, claim, pool, ip)
		if apierrors.IsAlreadyExists(err) {
			return Lease{}, nodeapi.Errorf(nodeapi.CodeIPTaken, "pod %s/%s asks for %s (annotation %s) but another pod holds it: free it or pick another IP",
				claim.Spec.Owner.Namespace, claim.Spec.Owner.PodName, ip, v1alpha1.AnnotationIPAddress)
		}
		if err != nil {
			return Lease{}, err
		}
		return a.leaseFor(created)
	}
	return Lease{}, nodeapi.Errorf(nodeapi.CodePoolNotAllowed, "pod %s/%s asks for %s, which is in none of its usable pools %s",
		claim.Spec.Owner.Namespace, claim.Spec.Owner.PodName, ip, poolNames(pools))
}

func (a *ClaimAllocator) reserve(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending[name] {
		return false
	}
	a.pending[name] = true
	return true
}

func (a *ClaimAllocator) unreserve(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, name)
}

func (a *ClaimAllocator) create(ctx context.Context, tmpl *v1alpha1.IPClaim, pool *v1alpha1.IPPool, ip netip.Addr) (*v1alpha1.IPClaim, error) {
	c := tmpl.DeepCopy()
	c.Name = v1alpha1.ClaimName(ip.String())
	c.Spec.Pool = pool.Name
	c.Spec.IP = ip.String()
	created, err := a.ecloud.IPClaims().Create(ctx, c, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create IPClaim %s in pool %s: %w", c.Name, pool.Name, err)
	}
	return created, err
}

// bind marks the claim as used by this container on node.
func (a *ClaimAllocator) bind(ctx context.Context, name string, pod nodeapi.PodRef, containerID, node string) (*v1alpha1.IPClaim, error) {
	var out *v1alpha1.IPClaim
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := a.ecloud.IPClaims().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Phase == v1alpha1.PhaseBound && c.Status.Node == node && c.Status.ContainerID == containerID {
			out = c
			return nil
		}
		now := metav1.NewTime(time.Now())
		c.Status.Phase, c.Status.Node, c.Status.ContainerID, c.Status.BoundAt = v1alpha1.PhaseBound, node, containerID, &now
		c.Status.PodUID = types.UID(pod.UID)
		out, err = a.ecloud.IPClaims().Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bind IPClaim %s to pod %s on %s: %w", name, pod, node, err)
	}
	return out, nil
}

func (a *ClaimAllocator) leaseFor(c *v1alpha1.IPClaim) (Lease, error) {
	obj, ok, _ := a.pools.GetByKey(c.Spec.Pool)
	var pool *v1alpha1.IPPool
	if ok {
		pool = obj.(*v1alpha1.IPPool)
	} else {
		return Lease{}, nodeapi.Errorf(nodeapi.CodeUnknownPool, "IPClaim %s names pool %q, which does not exist", c.Name, c.Spec.Pool)
	}
	pfx, err := netip.ParsePrefix(pool.Spec.CIDR)
	if err != nil {
		return Lease{}, fmt.Errorf("pool %s cidr %q: %w", pool.Name, pool.Spec.CIDR, err)
	}
	ip, err := netip.ParseAddr(c.Spec.IP)
	if err != nil {
		return Lease{}, fmt.Errorf("IPClaim %s ip %q: %w", c.Name, c.Spec.IP, err)
	}
	gw, err := netip.ParseAddr(pool.Spec.Gateway)
	if err != nil {
		return Lease{}, fmt.Errorf("pool %s gateway %q: %w", pool.Name, pool.Spec.Gateway, err)
	}
	return Lease{IP: netip.PrefixFrom(ip, pfx.Bits()), Gateway: gw, VLAN: int(pool.Spec.VLAN), Pool: pool.Name, Sticky: c.Spec.Mode == v1alpha1.ModeSticky}, nil
}

// Release implements Allocator.
func (a *ClaimAllocator) Release(ctx context.Context, pod nodeapi.PodRef, containerID string, ip netip.Addr) error {
	var names []string
	if ip.IsValid() {
		names = append(names, v1alpha1.ClaimName(ip.String()))
	}
	for _, o := range a.claims.List() {
		if c := o.(*v1alpha1.IPClaim); c.Status.ContainerID == containerID && !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	for _, name := range names {
		if err := a.releaseClaim(ctx, name, containerID); err != nil {
			return err
		}
	}
	return nil
}

func (a *ClaimAllocator) releaseClaim(ctx context.Context, name, containerID string) error {
	var c *v1alpha1.IPClaim
	if o, ok, _ := a.claims.GetByKey(name); ok {
		c = o.(*v1alpha1.IPClaim).DeepCopy() // first try on the informer's copy: one API call
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if c == nil {
			got, err := a.ecloud.IPClaims().Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("get IPClaim %s: %w", name, err)
			}
			c = got
		}
		cur := c
		c = nil // a conflict retries on a fresh copy
		if cur.Status.ContainerID != containerID {
			return nil // someone else holds it now
		}
		if cur.Spec.Mode == v1alpha1.ModeEphemeral {
			err := a.ecloud.IPClaims().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
			switch {
			case err == nil, apierrors.IsNotFound(err):
				return nil
			case apierrors.IsConflict(err):
				return err
			default:
				return fmt.Errorf("delete IPClaim %s: %w", name, err)
			}
		}
		cur.Status.Phase, cur.Status.Node, cur.Status.ContainerID, cur.Status.BoundAt = v1alpha1.PhaseReserved, "", "", nil
		_, err := a.ecloud.IPClaims().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// pod returns the Pod object, or nil when the apiserver has none (plain CNI tools).
func (a *ClaimAllocator) pod(ctx context.Context, ref nodeapi.PodRef) (*corev1.Pod, error) {
	if a.pods != nil {
		if o, ok, _ := a.pods.GetByKey(ref.String()); ok {
			return o.(*corev1.Pod), nil
		}
	}
	p, err := a.kube.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get pod %s: %w", ref, err)
	}
	return p, nil
}

// poolsFor lists the pools the pod may draw from on node, in order of preference.
func (a *ClaimAllocator) poolsFor(ctx context.Context, ref nodeapi.PodRef, p *corev1.Pod, node string) ([]*v1alpha1.IPPool, error) {
	var names []string
	if v, ok := annotationOK(p, v1alpha1.AnnotationIPPools); ok {
		for _, n := range strings.Split(v, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				return nil, nodeapi.Errorf(nodeapi.CodeBadAnnotation, "pod %s: annotation %s=%q has an empty pool name: write pool names separated by commas", ref, v1alpha1.AnnotationIPPools, v)
			}
			names = append(names, n)
		}
	} else {
		for _, o := range a.pools.List() {
			if pl := o.(*v1alpha1.IPPool); pl.Spec.Default {
				names = append(names, pl.Name)
			}
		}
		slices.Sort(names)
		if len(names) == 0 {
			return nil, nodeapi.Errorf(nodeapi.CodeUnknownPool, "pod %s names no pool (annotation %s) and no IPPool has spec.default=true: create a default pool or annotate the pod", ref, v1alpha1.AnnotationIPPools)
		}
	}
	var usable []*v1alpha1.IPPool
	var refusals []string
	for _, n := range names {
		obj, ok, _ := a.pools.GetByKey(n)
		if !ok {
			return nil, nodeapi.Errorf(nodeapi.CodeUnknownPool, "pod %s asks for IPPool %q, which does not exist: fix annotation %s or create the pool", ref, n, v1alpha1.AnnotationIPPools)
		}
		pool := obj.(*v1alpha1.IPPool)
		if why, err := a.refusal(ctx, pool, ref.Namespace, node); err != nil {
			return nil, err
		} else if why != "" {
			refusals = append(refusals, why)
			continue
		}
		usable = append(usable, pool)
	}
	if len(usable) == 0 {
		return nil, nodeapi.Errorf(nodeapi.CodePoolNotAllowed, "pod %s may not use any pool it asks for: %s", ref, strings.Join(refusals, "; "))
	}
	return usable, nil
}

// refusal says why pool is closed to namespace ns on node ("" when it is open).
func (a *ClaimAllocator) refusal(ctx context.Context, pool *v1alpha1.IPPool, ns, node string) (string, error) {
	if len(pool.Spec.Namespaces) > 0 && !slices.Contains(pool.Spec.Namespaces, ns) {
		return fmt.Sprintf("pool %s is limited to namespaces %v (add %q to spec.namespaces)", pool.Name, pool.Spec.Namespaces, ns), nil
	}
	if sel := pool.Spec.NamespaceSelector; sel != nil {
		n, err := a.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("get namespace %s for pool %s: %w", ns, pool.Name, err)
		}
		if ok, err := matches(sel, n.Labels); err != nil || !ok {
			return fmt.Sprintf("namespace %s does not match pool %s's namespaceSelector", ns, pool.Name), nil
		}
	}
	if sel := pool.Spec.NodeSelector; sel != nil {
		n, err := a.kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("get node %s for pool %s: %w", node, pool.Name, err)
		}
		if ok, err := matches(sel, n.Labels); err != nil || !ok {
			return fmt.Sprintf("node %s does not match pool %s's nodeSelector", node, pool.Name), nil
		}
	}
	return "", nil
}

func matches(sel *metav1.LabelSelector, l map[string]string) (bool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(l)), nil
}

// candidates yields the pool's assignable IPs in order: its include ranges (or the whole
// subnet without network and broadcast address), without the gateway and excluded IPs.
func candidates(pool *v1alpha1.IPPool) func(yield func(netip.Addr) bool) {
	return func(yield func(netip.Addr) bool) {
		pfx, err := netip.ParsePrefix(pool.Spec.CIDR)
		if err != nil {
			return
		}
		skip := map[netip.Addr]bool{}
		if gw, err := netip.ParseAddr(pool.Spec.Gateway); err == nil {
			skip[gw] = true
		}
		for _, x := range pool.Spec.ExcludeIPs {
			if ip, err := netip.ParseAddr(x); err == nil {
				skip[ip] = true
			}
		}
		ranges := pool.Spec.IncludeRanges
		if len(ranges) == 0 {
			first := pfx.Masked().Addr().Next()
			last := lastAddr(pfx).Prev()
			ranges = []v1alpha1.IPRange{{Start: first.String(), End: last.String()}}
		}
		for _, r := range ranges {
			start, err1 := netip.ParseAddr(r.Start)
			end, err2 := netip.ParseAddr(r.End)
			if err1 != nil || err2 != nil {
				continue
			}
			for ip := start; ip.IsValid() && ip.Compare(end) <= 0; ip = ip.Next() {
				if !pfx.Contains(ip) || skip[ip] {
					continue
				}
				if !yield(ip) {
					return
				}
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func poolNames(pools []*v1alpha1.IPPool) string {
	n := make([]string, len(pools))
	for i, p := range pools {
		n[i] = p.Name
	}
	return strings.Join(n, ",")
}

func annotationOK(p *corev1.Pod, key string) (string, bool) {
	if p == nil {
		return "", false
	}
	v, ok := p.Annotations[key]
	return v, ok
}

func annotation(p *corev1.Pod, key string) string {
	v, _ := annotationOK(p, key)
	return v
}

// isSticky: annotation ip-policy=sticky, a requested IP, or a StatefulSet pod.
func isSticky(p *corev1.Pod) bool {
	switch strings.ToLower(annotation(p, v1alpha1.AnnotationIPPolicy)) {
	case "sticky":
		return true
	case "ephemeral":
		return false
	}
	if annotation(p, v1alpha1.AnnotationIPAddress) != "" {
		return true
	}
	if p != nil {
		if o := metav1.GetControllerOf(p); o != nil && o.Kind == "StatefulSet" {
			return true
		}
	}
	return false
}

func ownerOf(ref nodeapi.PodRef, p *corev1.Pod) v1alpha1.ClaimOwner {
	o := v1alpha1.ClaimOwner{Namespace: ref.Namespace, PodName: ref.Name, Kind: "Pod", Name: ref.Name}
	if p != nil {
		if c := metav1.GetControllerOf(p); c != nil && slices.Contains([]string{"StatefulSet", "Deployment", "ReplicaSet", "DaemonSet", "Job"}, c.Kind) {
			o.Kind, o.Name = c.Kind, c.Name
		}
	}
	return o
}
