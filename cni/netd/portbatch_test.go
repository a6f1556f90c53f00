package netd

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/ecloud-io/ecloud/cni/ovs"
)

func TestPortBatcher(t *testing.T) {
	var mu sync.Mutex
	var calls [][]string
	release := make(chan struct{})
	held := make(chan struct{}) // closed once the first transaction (p0 alone) is being applied
	first := true
	b := newPortBatcher(func(_ context.Context, add []ovs.Port, del []string) error {
		if first {
			first = false
			close(held)
			<-release // hold the first transaction so the others queue up
		}
		var names []string
		for _, p := range add {
			names = append(names, "+"+p.Name)
		}
		for _, d := range del {
			names = append(names, "-"+d)
		}
		slices.Sort(names)
		mu.Lock()
		calls = append(calls, names)
		mu.Unlock()
		if slices.Contains(names, "+bad") {
			return errors.New("bad port")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.run(ctx)
	errs := make(chan error, 10)
	go func() { errs <- b.add(ctx, ovs.Port{Name: "p0"}) }()
	<-held // p0 is in the held transaction (an empty queue alone could mean p0 was not queued yet)
	var wg sync.WaitGroup
	results := map[string]error{}
	for _, name := range []string{"p1", "p2", "bad"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.add(ctx, ovs.Port{Name: name})
			mu.Lock()
			results[name] = err
			mu.Unlock()
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); err := b.del(ctx, "old"); mu.Lock(); results["old"] = err; mu.Unlock() }()
	for {
		b.mu.Lock()
		n := len(b.queue)
		b.mu.Unlock()
		if n == 4 {
			break
		}
	}
	close(release)
	wg.Wait()
	if err := <-errs; err != nil {
		t.Fatalf("p0: %v", err)
	}
	// p0 alone, then one batch of four that fails on "bad", then each of the four alone.
	if len(calls) != 6 || len(calls[1]) != 4 {
		t.Fatalf("transactions: %v", calls)
	}
	for name, err := range results {
		if (err != nil) != (name == "bad") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCollectKeepsLastOpPerPort(t *testing.T) {
	op := func(add bool, name string) *portOp {
		if add {
			return &portOp{add: &ovs.Port{Name: name}}
		}
		return &portOp{del: name}
	}
	for _, c := range []struct {
		name     string
		ops      []*portOp
		add, del []string
	}{
		{"add then delete", []*portOp{op(true, "a"), op(false, "a")}, nil, []string{"a"}},
		{"delete then add", []*portOp{op(false, "a"), op(true, "a")}, []string{"a"}, nil},
		{"different ports", []*portOp{op(true, "a"), op(false, "b"), op(true, "c")}, []string{"a", "c"}, []string{"b"}},
	} {
		add, del := collect(c.ops)
		var names []string
		for _, p := range add {
			names = append(names, p.Name)
		}
		if !slices.Equal(names, c.add) || !slices.Equal(del, c.del) {
			t.Errorf("%s: add %v del %v, want %v %v", c.name, names, del, c.add, c.del)
		}
	}
}
