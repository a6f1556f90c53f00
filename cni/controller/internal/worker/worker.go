// Package worker runs the rate-limited work queue loop the IP controller's controllers share.
package worker

import (
	"context"
	"sync"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Queue is a keyed work queue with rate-limited retries.
type Queue = workqueue.TypedRateLimitingInterface[string]

// NewQueue makes a named queue (the name labels the workqueue metrics).
func NewQueue(name string) Queue {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}

// Run processes keys of q with syncKey on workers goroutines until ctx ends, retrying failed keys
// with backoff. It shuts the queue down and returns when every worker stopped.
func Run(ctx context.Context, q Queue, workers int, syncKey func(context.Context, string) error) {
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key, shutdown := q.Get()
				if shutdown {
					return
				}
				if err := syncKey(ctx, key); err != nil && ctx.Err() == nil {
					logger.V(2).Info("Retrying", "key", key, "err", err)
					q.AddRateLimited(key)
				} else {
					q.Forget(key)
				}
				q.Done(key)
			}
		}()
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}
