package deletioncost

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

var everything = labels.Everything()

// groupState is one group's pods in a namespace.
type groupState struct {
	group   *dcrule.Group
	placed  []dcrule.Placed
	counts  *dcrule.Counts
	waiting int // pods pending or terminating: a move is under way
}

// syncNamespace brings every group of the namespace in line; it returns a delay after which the
// namespace should be looked at again (an eviction happened or was blocked).
func (c *Controller) syncNamespace(ctx context.Context, ns string) (time.Duration, error) {
	start := time.Now()
	defer func() { syncDuration.Observe(time.Since(start).Seconds()) }()
	groups, err := c.collect(ns)
	if err != nil {
		return 0, err
	}
	c.series.set(ns, groups, c.args.Datacenters)
	health := dcrule.NewHealth(c.args.TopologyKey, c.args.Datacenters)
	nodes, err := c.nodes.List(everything)
	if err != nil {
		return 0, fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range nodes {
		health.Observe(n)
	}
	var errs []error
	var requeue time.Duration
	for _, gs := range groups {
		if gs.group.Kind != dcrule.KindStatefulSet { // a StatefulSet removes the highest ordinal, whatever the cost
			if err := c.updateCosts(ctx, gs); err != nil {
				errs = append(errs, err)
			}
		}
		d, err := c.restore(ctx, gs, health)
		if err != nil {
			errs = append(errs, err)
		}
		if d > requeue {
			requeue = d
		}
	}
	return requeue, errors.Join(errs...)
}

// collect groups the namespace's live pods.
func (c *Controller) collect(ns string) (map[string]*groupState, error) {
	pods, err := c.pods.Pods(ns).List(everything)
	if err != nil {
		return nil, fmt.Errorf("listing pods of namespace %s: %w", ns, err)
	}
	groups := map[string]*groupState{}
	health := dcrule.NewHealth(c.args.TopologyKey, c.args.Datacenters)
	// Pods of one controller share a group: resolve each controller once per sync.
	byController := map[types.UID]*dcrule.Group{}
	resolve := func(pod *v1.Pod) (*dcrule.Group, error) {
		ref := metav1.GetControllerOf(pod)
		if ref == nil || pod.Labels[v1alpha1.LabelGroup] != "" {
			return c.resolver.GroupOf(pod)
		}
		if g, ok := byController[ref.UID]; ok {
			return g, nil
		}
		g, err := c.resolver.GroupOf(pod)
		if err == nil {
			byController[ref.UID] = g
		}
		return g, err
	}
	for _, pod := range pods {
		if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed || !dcrule.MayHaveGroup(pod) || pod.Spec.SchedulerName != c.schedulerName {
			continue
		}
		g, err := resolve(pod)
		if err != nil {
			return nil, err
		}
		if g == nil || dcrule.Exempt(pod, g) {
			continue
		}
		gs := groups[g.Key()]
		if gs == nil {
			gs = &groupState{group: g, counts: dcrule.NewCounts()}
			groups[g.Key()] = gs
		}
		if pod.DeletionTimestamp != nil || pod.Spec.NodeName == "" {
			gs.waiting++
			continue
		}
		node, err := c.nodes.Get(pod.Spec.NodeName)
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("getting node %s of pod %s/%s: %w", pod.Spec.NodeName, ns, pod.Name, err)
		}
		if dc := health.Datacenter(node); dc != "" {
			rev, _ := g.Revision(pod)
			gs.placed = append(gs.placed, dcrule.Placed{Pod: pod, Revision: rev, Datacenter: dc})
			gs.counts.Add(rev, dc, 1)
		}
	}
	return groups, nil
}

// updateCosts patches the deletion cost of every pod whose annotation is not the wanted one.
func (c *Controller) updateCosts(ctx context.Context, gs *groupState) error {
	var errs []error
	for pod, cost := range dcrule.DeletionCosts(gs.placed) {
		want := strconv.Itoa(int(cost))
		if pod.Annotations[v1.PodDeletionCost] == want {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1.PodDeletionCost, want)
		_, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			errs = append(errs, fmt.Errorf("setting the deletion cost of pod %s/%s (%s): %w", pod.Namespace, pod.Name, gs.group, err))
		default:
			costPatches.Inc()
			klog.FromContext(ctx).V(4).Info("Deletion cost set", "pod", klog.KObj(pod), "group", gs.group.String(), "cost", want)
		}
	}
	return errors.Join(errs...)
}

// restore evicts one surplus pod of a group that is not spread although every datacenter is up,
// waiting for the previous move (pending or terminating pods) to finish first.
func (c *Controller) restore(ctx context.Context, gs *groupState, health *dcrule.Health) (time.Duration, error) {
	for _, dc := range c.args.Datacenters {
		if !health.Up(dc) {
			return 0, nil
		}
	}
	if !c.needsMove(gs) {
		return 0, nil
	}
	// After an eviction (or a refusal) leave the group alone for a while: events of the
	// namespace would otherwise retry at once.
	if wait := c.holdOff.remaining(gs.group.Key()); wait > 0 {
		return wait, nil
	}
	c.holdOff.start(gs.group.Key(), c.evictionRetry)
	victim := c.victim(gs)
	if victim == nil {
		return 0, nil
	}
	logger := klog.FromContext(ctx).WithValues("group", gs.group.String(), "pod", klog.KObj(victim),
		"counts", dcrule.Describe(gs.counts.Total, c.args.Datacenters))
	err := c.evict(ctx, victim)
	switch {
	case apierrors.IsTooManyRequests(err):
		evictions.WithLabelValues("blocked").Inc()
		logger.Info("Eviction blocked by a PodDisruptionBudget, retrying later")
		return c.evictionRetry, nil
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return c.evictionRetry, nil
	case err != nil:
		evictions.WithLabelValues("error").Inc()
		return 0, fmt.Errorf("evicting pod %s/%s of %s: %w", victim.Namespace, victim.Name, gs.group, err)
	}
	evictions.WithLabelValues("evicted").Inc()
	logger.Info("Evicted a surplus pod so the group spreads over the datacenters again")
	return c.evictionRetry, nil
}

// needsMove reports whether a settled group breaks the rule. Only a settled group is moved:
// nothing pending or terminating, and a single revision (a rollout in progress is spread by the
// scheduler and the deletion costs; evicting then would fight the Deployment controller).
func (c *Controller) needsMove(gs *groupState) bool {
	return gs.waiting == 0 && len(gs.placed) >= 2 && len(gs.counts.ByRevision) == 1 && !c.spread(gs)
}

// spread reports whether the group keeps the rule: a pod in every datacenter and skew ≤ maxSkew.
func (c *Controller) spread(gs *groupState) bool {
	lo, hi := -1, 0
	for _, dc := range c.args.Datacenters {
		n := gs.counts.Total[dc]
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return lo > 0 && int32(hi-lo) <= c.rule.MaxSkew
}

// victim is the pod a scale-down would remove first from the fullest datacenter (lowest deletion
// cost), among pods a controller will recreate.
func (c *Controller) victim(gs *groupState) *v1.Pod {
	fullest := ""
	for _, dc := range c.args.Datacenters {
		if fullest == "" || gs.counts.Total[dc] > gs.counts.Total[fullest] {
			fullest = dc
		}
	}
	costs := dcrule.DeletionCosts(gs.placed)
	var victim *v1.Pod
	for _, p := range gs.placed {
		if p.Datacenter != fullest || metav1.GetControllerOf(p.Pod) == nil {
			continue
		}
		if victim == nil || costs[p.Pod] < costs[victim] {
			victim = p.Pod
		}
	}
	return victim
}

// evict asks the apiserver to evict the pod. Unlike the typed client's Evict it does not sit in
// client-go's automatic retries of a 429 (a PodDisruptionBudget refusing, Retry-After 10s, up to
// ten times): a refusal comes back at once and the namespace is looked at again later.
func (c *Controller) evict(ctx context.Context, pod *v1.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, evictionTimeout)
	defer cancel()
	eviction := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}},
	}
	return c.client.PolicyV1().RESTClient().Post().
		AbsPath("/api/v1", "namespaces", pod.Namespace, "pods", pod.Name, "eviction").
		MaxRetries(0).Body(eviction).Do(ctx).Error()
}

// evictionTimeout bounds one eviction request.
const evictionTimeout = 30 * time.Second
