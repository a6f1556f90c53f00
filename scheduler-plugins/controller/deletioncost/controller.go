// Package deletioncost is the controller that keeps the two-datacenter rule when pods go away:
// it keeps controller.kubernetes.io/pod-deletion-cost on every pod of a group current, so that a
// ReplicaSet scale-down removes pods from the fuller datacenter first and never the last pod of a
// datacenter while another has more; and once every datacenter is up again after an outage it
// evicts surplus pods (the Eviction API, so PodDisruptionBudgets hold) one at a time until the
// group is spread again. It looks after the pods of the scheduler that runs DualDatacenter only:
// another scheduler would put an evicted pod back where it was, evicting again and again. The
// rule itself is ../../dcrule, shared with the scheduler plugin.
package deletioncost

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/validation"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// Name is the controller's name in logs and leader election.
const Name = "ecloud-deletion-cost"

// Controller reconciles one namespace at a time: every group in it.
type Controller struct {
	args config.DualDatacenterArgs
	// schedulerName is the scheduler whose pods the controller looks after: the one that runs
	// DualDatacenter. Another scheduler would put an evicted pod back where it was.
	schedulerName string
	rule          dcrule.Rule
	client        kubernetes.Interface
	pods          corelisters.PodLister
	nodes         corelisters.NodeLister
	resolver      *dcrule.Resolver
	synced        []cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
	// evictionRetry is how long to wait before retrying a blocked eviction or re-checking a group
	// after one.
	evictionRetry time.Duration
	holdOff       holdOff
	// series tracks the ecloud_dualdatacenter_group_pods label sets per namespace.
	series groupSeries
}

// holdOff remembers, per group, until when no eviction is attempted.
type holdOff struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (h *holdOff) remaining(key string) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := time.Until(h.until[key])
	if d <= 0 {
		delete(h.until, key)
	}
	return d
}

func (h *holdOff) start(key string, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.until == nil {
		h.until = map[string]time.Time{}
	}
	h.until[key] = time.Now().Add(d)
}

// New builds the controller on an informer factory; args are the DualDatacenter plugin's (the
// same datacenters, topology key and maxSkew), validated here.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, args config.DualDatacenterArgs, schedulerName string) (*Controller, error) {
	if err := validation.ValidateDualDatacenterArgs(field.NewPath("args"), &args); err != nil {
		return nil, err
	}
	if schedulerName == "" {
		return nil, fmt.Errorf("the scheduler whose pods the %s controller looks after is not named", Name)
	}
	registerMetrics()
	podInf, nodeInf := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	rsInf, stsInf := factory.Apps().V1().ReplicaSets(), factory.Apps().V1().StatefulSets()
	c := &Controller{
		args:          args,
		schedulerName: schedulerName,
		rule:          dcrule.Rule{MaxSkew: args.MaxSkew},
		client:        client,
		pods:          podInf.Lister(),
		nodes:         nodeInf.Lister(),
		resolver:      &dcrule.Resolver{ReplicaSets: rsInf.Lister(), StatefulSets: stsInf.Lister()},
		synced:        []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced, rsInf.Informer().HasSynced, stsInf.Informer().HasSynced},
		queue:         workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: Name}),
		evictionRetry: 2 * time.Second,
	}
	enqueuePod := func(obj any) {
		if pod, ok := obj.(*v1.Pod); ok {
			c.queue.Add(pod.Namespace)
		} else if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			if pod, ok := tomb.Obj.(*v1.Pod); ok {
				c.queue.Add(pod.Namespace)
			}
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueuePod, UpdateFunc: func(_, obj any) { enqueuePod(obj) }, DeleteFunc: enqueuePod,
	}); err != nil {
		return nil, fmt.Errorf("adding the pod event handler: %w", err)
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueAll, UpdateFunc: func(_, obj any) { c.enqueueAll(obj) }, DeleteFunc: c.enqueueAll,
	}); err != nil {
		return nil, fmt.Errorf("adding the node event handler: %w", err)
	}
	return c, nil
}

// enqueueAll queues every namespace with pods: a node change can move a datacenter in or out.
func (c *Controller) enqueueAll(any) {
	pods, err := c.pods.List(everything)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, p := range pods {
		if !seen[p.Namespace] {
			seen[p.Namespace] = true
			c.queue.Add(p.Namespace)
		}
	}
}

// Run waits for the caches and reconciles with the given number of workers until ctx ends. The
// informer factory must be started by the caller.
func (c *Controller) Run(ctx context.Context, workers int) error {
	logger := klog.FromContext(ctx).WithValues("controller", Name)
	ctx = klog.NewContext(ctx, logger)
	defer c.queue.ShutDown()
	if !cache.WaitForNamedCacheSync(Name, ctx.Done(), c.synced...) {
		return fmt.Errorf("%s: caches did not sync", Name)
	}
	logger.Info("Started", "datacenters", c.args.Datacenters, "maxSkew", c.args.MaxSkew)
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	ns, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(ns)
	logger := klog.FromContext(ctx).WithValues("namespace", ns)
	requeueAfter, err := c.syncNamespace(klog.NewContext(ctx, logger), ns)
	switch {
	case err != nil:
		logger.Error(err, "Reconcile failed, retrying")
		c.queue.AddRateLimited(ns)
	case requeueAfter > 0:
		c.queue.Forget(ns)
		c.queue.AddAfter(ns, requeueAfter)
	default:
		c.queue.Forget(ns)
	}
	return true
}
