package ipam

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPodLocks(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		// wantMaxInside is the most callers inside at once that must be reached (distinct keys
		// run together) or never exceeded (one key is exclusive).
		wantMaxInside int32
	}{
		{name: "one key is exclusive", keys: []string{"ns/a", "ns/a", "ns/a", "ns/a"}, wantMaxInside: 1},
		{name: "distinct keys run together", keys: []string{"ns/a", "ns/b", "ns/c", "ns/d"}, wantMaxInside: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p podLocks
			var inside, maxInside atomic.Int32
			var all sync.WaitGroup
			// Distinct keys: every caller stays inside until all are, which only ends if none
			// waits for another's lock.
			var allIn sync.WaitGroup
			allIn.Add(len(tt.keys))
			for _, k := range tt.keys {
				all.Add(1)
				go func() {
					defer all.Done()
					unlock := p.lock(k)
					defer unlock()
					n := inside.Add(1)
					for {
						m := maxInside.Load()
						if n <= m || maxInside.CompareAndSwap(m, n) {
							break
						}
					}
					if tt.wantMaxInside > 1 {
						allIn.Done()
						allIn.Wait()
					} else {
						time.Sleep(time.Millisecond)
					}
					inside.Add(-1)
				}()
			}
			all.Wait()
			if got := maxInside.Load(); got != tt.wantMaxInside {
				t.Errorf("at most %d callers were inside at once, want %d", got, tt.wantMaxInside)
			}
			if n := p.held(); n != 0 {
				t.Errorf("%d locks left after every caller unlocked, want 0", n)
			}
		})
	}
}
