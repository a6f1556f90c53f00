package ipam

import "sync"

// podLocks is a mutex per key that exists only while some call holds or waits for it, so the
// set stays as small as the number of identities in flight.
type podLocks struct {
	mu    sync.Mutex
	locks map[string]*podLock
}

type podLock struct {
	mu   sync.Mutex
	refs int // calls holding or waiting for mu; guarded by podLocks.mu
}

// lock takes key's mutex and returns its unlock function.
func (p *podLocks) lock(key string) func() {
	p.mu.Lock()
	if p.locks == nil {
		p.locks = map[string]*podLock{}
	}
	l := p.locks[key]
	if l == nil {
		l = &podLock{}
		p.locks[key] = l
	}
	l.refs++
	p.mu.Unlock()

	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		p.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(p.locks, key)
		}
		p.mu.Unlock()
	}
}

// held is the number of keys currently locked or waited for.
func (p *podLocks) held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.locks)
}
