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
	return b.wait(ctx, b.queueAdd(p))
}

// del queues a port delete and waits for its transaction.
func (b *portBatcher) del(ctx context.Context, name string) error {
	return b.wait(ctx, b.enqueue(&portOp{del: name, done: make(chan error, 1)}))
}

// queueAdd queues a port add; wait for it with wait. Ops apply in queue order.
func (b *portBatcher) queueAdd(p ovs.Port) *portOp {
	return b.enqueue(&portOp{add: &p, done: make(chan error, 1)})
}

func (b *portBatcher) enqueue(op *portOp) *portOp {
	b.mu.Lock()
	b.queue = append(b.queue, op)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return op
}

// wait waits for op's transaction (once only: the result is consumed).
func (b *portBatcher) wait(ctx context.Context, op *portOp) error {
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

// collect turns queued ops into one transaction's adds and deletes: per port only its last op
// counts (an add already replaces an older row), so an add and a later delete of the same port
// in one batch leave no port.
func collect(ops []*portOp) (add []ovs.Port, del []string) {
	last := map[string]int{}
	for i, op := range ops {
		last[op.name()] = i
	}
	for i, op := range ops {
		if last[op.name()] != i {
			continue
		}
		if op.add != nil {
			add = append(add, *op.add)
		} else {
			del = append(del, op.del)
		}
	}
	return add, del
}

func (op *portOp) name() string {
	if op.add != nil {
		return op.add.Name
	}
	return op.del
}
