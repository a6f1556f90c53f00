package scrape

import (
	"context"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

func TestUntilNextPoint(t *testing.T) {
	at := func(sec float64) time.Time { return time.Unix(0, int64(sec*1e9)) }
	for _, tt := range []struct {
		name         string
		now          time.Time
		step, offset time.Duration
		want         time.Duration
	}{
		{"between two points", at(100), 10 * time.Second, 3 * time.Second, 3 * time.Second},
		{"on a point: the next one", at(103), 10 * time.Second, 3 * time.Second, 10 * time.Second},
		{"just before a point", at(102.999), 10 * time.Second, 3 * time.Second, time.Millisecond},
		{"before the first offset of the epoch", at(1), 10 * time.Second, 3 * time.Second, 2 * time.Second},
		{"no offset", at(95), 10 * time.Second, 0, 5 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := UntilNextPoint(tt.now, tt.step, tt.offset); got != tt.want {
				t.Errorf("UntilNextPoint(%v, %v, %v) = %v, want %v", tt.now.UnixNano(), tt.step, tt.offset, got, tt.want)
			}
		})
	}
}

func TestGridOffset(t *testing.T) {
	step := 10 * time.Second
	if a, b := GridOffset("dc-a-node-0", step), GridOffset("dc-a-node-0", step); a != b {
		t.Errorf("the offset of one node changes: %v, %v", a, b)
	}
	seen := map[time.Duration]bool{}
	for _, n := range []string{"dc-a-node-0", "dc-a-node-1", "dc-b-node-0", "dc-b-node-1"} {
		o := GridOffset(n, step)
		if o < 0 || o >= step {
			t.Errorf("offset of %s = %v, want within [0, %v)", n, o, step)
		}
		seen[o] = true
	}
	if len(seen) < 2 {
		t.Errorf("four nodes share one offset: the nodes' pushes would not spread over the step")
	}
}

// snapTimes records the time of every snapshot handed to it.
type snapTimes struct {
	mu    sync.Mutex
	times []time.Time
}

func (s *snapTimes) Consume(_ context.Context, snap *Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, snap.Time)
}

func (s *snapTimes) get() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

// runFor runs a Runner of node on clk, stepping the fake clock by 100 ms for d, and returns the
// times of its snapshots.
func runFor(t *testing.T, clk *clocktesting.FakeClock, node string, step, d time.Duration) []time.Time {
	t.Helper()
	got := &snapTimes{}
	r := &Runner{Source: TargetsFunc(func() []*collector.Target { return nil }), Node: node, Step: step, Clock: clk, Consumers: []Consumer{got}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	for end := clk.Now().Add(d); clk.Now().Before(end); {
		// Let the runner wait on the clock before moving it.
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clk.Step(100 * time.Millisecond)
	}
	for !clk.HasWaiters() { // the last point's snapshot is consumed
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	return got.get()
}

// TestRunOnTheGrid: snapshots come at the node's grid points only (within the fake clock's
// 100 ms steps), and an agent restarted less than a step after its previous process's last
// sample waits for the next point instead of sampling within the same step.
func TestRunOnTheGrid(t *testing.T) {
	const node = "dc-a-node-0"
	step := 10 * time.Second
	offset := GridOffset(node, step)
	start := time.Unix(1_796_400_000, 250_000_000)
	first := runFor(t, clocktesting.NewFakeClock(start), node, step, 30*time.Second)
	if len(first) != 3 {
		t.Fatalf("%d snapshots in 30 s at a 10 s step, want 3: %v", len(first), first)
	}
	for _, ts := range first {
		if late := time.Duration((ts.UnixNano() - int64(offset)) % int64(step)); late < 0 || late >= 100*time.Millisecond {
			t.Errorf("snapshot at %v is %v past a grid point (offset %v), want less than the clock's 100 ms steps", ts, late, offset)
		}
	}
	// The process ends 30 s after it started, less than a step after its last point, and a new
	// one starts at once.
	restart := start.Add(30 * time.Second)
	last := first[len(first)-1]
	if restart.Sub(last) >= step {
		t.Fatalf("the restart %v comes a step or more after the last snapshot %v: the case is not tested", restart, last)
	}
	second := runFor(t, clocktesting.NewFakeClock(restart), node, step, 15*time.Second)
	if len(second) == 0 {
		t.Fatal("the restarted runner took no snapshot in 15 s")
	}
	if gap := second[0].Sub(last); gap < step-100*time.Millisecond || gap > step+100*time.Millisecond {
		t.Errorf("the restarted runner's first snapshot came %v after the previous process's last, want a step (%v)", gap, step)
	}
}
