// Package discovery watches this node's pods and maps each running container to its cgroup.
package discovery

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/podcgroup"
)

// Discovery lists this node's pods from an informer and resolves their cgroups.
type Discovery struct {
	hier     cgroups.Hierarchy
	factory  informers.SharedInformerFactory
	lister   corelisters.PodLister
	informer cache.SharedIndexInformer
	resolver *podcgroup.Resolver
	logger   klog.Logger
}

var _ interface {
	Targets() []*collector.Target
} = &Discovery{}

// New builds the informer on pods with spec.nodeName=nodeName.
func New(ctx context.Context, client kubernetes.Interface, nodeName string, hier cgroups.Hierarchy) *Discovery {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
		}))
	pods := factory.Core().V1().Pods()
	return &Discovery{
		hier: hier, factory: factory, lister: pods.Lister(), informer: pods.Informer(),
		resolver: podcgroup.NewResolver(hier),
		logger:   klog.LoggerWithValues(klog.FromContext(ctx), "node", nodeName),
	}
}

// Informer returns the pod informer (the RDT manager adds its handlers).
func (d *Discovery) Informer() cache.SharedIndexInformer { return d.informer }

// Start runs the informer and waits for its first list.
func (d *Discovery) Start(ctx context.Context) error {
	d.factory.Start(ctx.Done())
	for typ, ok := range d.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sync %v informer for this node's pods: %w", typ, ctx.Err())
		}
	}
	return nil
}

// Pods lists this node's pods.
func (d *Discovery) Pods() []*v1.Pod {
	pods, _ := d.lister.List(labels.Everything())
	return pods
}

// Targets implements scrape.TargetSource.
func (d *Discovery) Targets() []*collector.Target {
	return d.resolver.Targets(d.logger, d.Pods())
}
