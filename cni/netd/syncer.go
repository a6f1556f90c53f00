package netd

import (
	"context"
	"sync"
)

// syncer runs one reconcile function at a time and coalesces requests: a caller asks for a
// run and can wait until a run that started after its request has finished, so twenty
// parallel CNI ADDs cost one or two datapath syncs, not twenty. A run is full when any request
// since the last run asked for a full one (it covers what a light one does).
type syncer struct {
	fn func(ctx context.Context, full bool) error

	mu       sync.Mutex
	want     uint64
	wantFull bool
	done     uint64
	lastErr  error
	changed  chan struct{}
	kick     chan struct{}
}

func newSyncer(fn func(ctx context.Context, full bool) error) *syncer {
	return &syncer{fn: fn, changed: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// request asks for a run (a full one with full) and returns its generation.
func (s *syncer) request(full bool) uint64 {
	s.mu.Lock()
	s.want++
	s.wantFull = s.wantFull || full
	g := s.want
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return g
}

// wait blocks until generation g has been synced and returns that run's error.
func (s *syncer) wait(ctx context.Context, g uint64) error {
	for {
		s.mu.Lock()
		if s.done >= g {
			err := s.lastErr
			s.mu.Unlock()
			return err
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sync requests a run and waits for it.
func (s *syncer) sync(ctx context.Context, full bool) error { return s.wait(ctx, s.request(full)) }

// run serves requests until ctx ends.
func (s *syncer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.mu.Lock()
		g, full := s.want, s.wantFull
		s.wantFull = false
		s.mu.Unlock()
		err := s.fn(ctx, full)
		s.mu.Lock()
		s.done, s.lastErr = g, err
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}
