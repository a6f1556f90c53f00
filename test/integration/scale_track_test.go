package integration

import (
	"sync"
	"sync/atomic"
	"time"
)

// locTracker matches location writes with their sightings: by every simulated node (the
// location as its follower learnt it) and by the real netd (a flow for the IP added, changed or
// removed on its bridge).
type locTracker struct {
	sims   int
	active atomic.Bool

	mu      sync.Mutex
	want    map[string]*locWrite // IP → its latest write
	all     []*locWrite
	simLat  []time.Duration
	netdLat []time.Duration
}

// locWrite is one location write: the IP's node afterwards ("" = deleted) and when the write
// was sent.
type locWrite struct {
	ip       string
	node     string
	at       time.Time
	expect   bool // the real netd should change a flow for it
	simSeen  []bool
	netdSeen bool
}

func newLocTracker(sims int) *locTracker {
	return &locTracker{sims: sims, want: map[string]*locWrite{}}
}

// write records a write about to be sent.
func (t *locTracker) write(ip, node string, expectNetd bool) *locWrite {
	w := &locWrite{ip: ip, node: node, at: time.Now(), expect: expectNetd, simSeen: make([]bool, t.sims)}
	t.mu.Lock()
	t.want[ip] = w
	t.all = append(t.all, w)
	t.mu.Unlock()
	return w
}

// failed forgets a write the apiserver refused.
func (t *locTracker) failed(w *locWrite) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.want[w.ip] == w {
		delete(t.want, w.ip)
	}
	for i, x := range t.all {
		if x == w {
			t.all = append(t.all[:i], t.all[i+1:]...)
			break
		}
	}
}

// simSaw is simulated node sim learning that ip is on node ("" = gone).
func (t *locTracker) simSaw(sim int, ip, node string) {
	if !t.active.Load() {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.want[ip]
	if w == nil || w.node != node || w.simSeen[sim] {
		return
	}
	w.simSeen[sim] = true
	t.simLat = append(t.simLat, now.Sub(w.at))
}

// netdSaw is a flow change for ip on the real netd's bridge.
func (t *locTracker) netdSaw(ev flowEvent) {
	if !t.active.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.want[ev.ip]
	if w == nil || w.netdSeen || !w.expect || ev.at.Before(w.at) || (w.node == "") != (ev.kind == "DELETED") {
		return
	}
	w.netdSeen = true
	t.netdLat = append(t.netdLat, ev.at.Sub(w.at))
}

// outstanding counts the sightings still missing: by simulated nodes, by the real netd.
func (t *locTracker) outstanding() (sims, netd int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.all {
		if t.want[w.ip] != w {
			continue // superseded by a later write to the same IP
		}
		for _, s := range w.simSeen {
			if !s {
				sims++
			}
		}
		if w.expect && !w.netdSeen {
			netd++
		}
	}
	return sims, netd
}

// latencies returns copies of the sightings' latencies.
func (t *locTracker) latencies() (sims, netd []time.Duration, writes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.simLat...), append([]time.Duration(nil), t.netdLat...), len(t.all)
}
