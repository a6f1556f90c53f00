package netd

import (
	"context"
	"sync"

	"github.com/ecloud-io/ecloud/cni/ovs"
)

// portBatcher funnels pod port adds and deletes into as few OVS transactions as possible:
// every ovs-vsctl transaction makes ovs-vswitchd reconfigure, which serializes parallel CNI
// calls; ops that queue up while one transaction runs go together in the next.
type portBatcher struct {
	apply func(ctx context.Context, add []ovs.Port, del []string) error

	mu    sync.Mutex
	queue []*portOp
	kick  chan struct{}
}

type portOp struct {
	add  *ovs.Port
	del  string
	done chan error
}

func newPortBatcher(apply func(ctx context.Context, add []ovs.Port, del []string) error) *portBatcher {
	return &portBatcher{apply: apply, kick: make(chan struct{}, 1)}
}

// add queues a port add and waits for its transaction.
func (b *portBatcher) add(ctx context.Context, p ovs.Port) error {
	return b.do(ctx, &portOp{add: &p, done: make(chan error, 1)})
}

// del queues a port delete and waits for its transaction.
func (b *portBatcher) del(ctx context.Context, name string) error {
	return b.do(ctx, &portOp{del: name, done: make(chan error, 1)})
}

func (b *portBatcher) do(ctx context.Context, op *portOp) error {
	b.mu.Lock()
	b.queue = append(b.queue, op)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run serves the queue until ctx ends.
func (b *portBatcher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
		b.mu.Lock()
		ops := b.queue
		b.queue = nil
		b.mu.Unlock()
		if len(ops) == 0 {
			continue
		}
		add, del := collect(ops)
		if err := b.apply(ctx, add, del); err == nil || len(ops) == 1 {
			for _, op := range ops {
				op.done <- err
			}
			continue
		}
		// One bad op fails the whole transaction: redo them one by one so each caller gets
		// its own result.
		for _, op := range ops {
			add, del := collect([]*portOp{op})
			op.done <- b.apply(ctx, add, del)
		}
	}
}

func collect(ops []*portOp) (add []ovs.Port, del []string) {
	for _, op := range ops {
		if op.add != nil {
			add = append(add, *op.add)
		} else {
			del = append(del, op.del)
		}
	}
	return add, del
}
