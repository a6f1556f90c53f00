package ipam

// Hold is a promise of one free IP of a pool, taken before the IP itself is chosen: the
// scheduler takes one at Reserve (serial and fast, no API call) and hands it to Allocate in its
// binding cycle (Request.Hold), which turns it into a chosen IP atomically, so the pool's free
// count never counts one pod twice nor lets two pods share one free IP.
type Hold struct {
	pool string
	// spent: consumed by an allocation or given back; guarded by the allocator's mu.
	spent bool
}

// Pool is the pool the hold is on.
func (h *Hold) Pool() string { return h.pool }

// TakeHold takes a hold on one free IP of pool; false when the pool has no free IP beyond the
// holds already taken (or is unknown, unparsable or overlapping).
func (a *Allocator) TakeHold(pool string) (*Hold, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.freeLocked(pool) <= 0 {
		return nil, false
	}
	a.holdByPool[pool]++
	return &Hold{pool: pool}, true
}

// ReturnHold gives back a hold no allocation consumed; a no-op for a spent or nil hold.
func (a *Allocator) ReturnHold(h *Hold) {
	if h == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.spendLocked(h)
}

// spendLocked ends h: its pool counts one hold less.
func (a *Allocator) spendLocked(h *Hold) {
	if h == nil || h.spent {
		return
	}
	h.spent = true
	a.holdByPool[h.pool]--
}
