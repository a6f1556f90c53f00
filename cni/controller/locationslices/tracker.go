package locationslices

import (
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// tracker remembers the slices as the controller's own writes left them: the object a create or
// update returned (or a fresh read after a conflict) and the UID of each slice it deleted, until
// the informer has caught up with them. A sync plans from the newest copy it knows, not from an
// informer that may not have seen the last write yet (an update from that stale copy would
// conflict), and the informer's events that only echo the controller's own writes do not
// enqueue the node again. This is what the EndpointSlice controller's tracker does.
type tracker struct {
	mu sync.Mutex
	// known: node → slice name → the newest copy the controller wrote or read.
	known map[string]map[string]*v1alpha1.IPLocationSlice
	// deleted: node → slice name → UID of the slice the controller deleted.
	deleted map[string]map[string]types.UID
}

func newTracker() *tracker {
	return &tracker{known: map[string]map[string]*v1alpha1.IPLocationSlice{}, deleted: map[string]map[string]types.UID{}}
}

// wrote records s as the newest copy of its slice (what a create or update returned, or a read).
func (t *tracker) wrote(s *v1alpha1.IPLocationSlice) {
	t.mu.Lock()
	defer t.mu.Unlock()
	node := s.Spec.Node
	delete(t.deleted[node], s.Name)
	if t.known[node] == nil {
		t.known[node] = map[string]*v1alpha1.IPLocationSlice{}
	}
	t.known[node][s.Name] = s
}

// deletedSlice records that the controller deleted slice name (of node) with uid.
func (t *tracker) deletedSlice(node, name string, uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgetLocked(node, name)
	if t.deleted[node] == nil {
		t.deleted[node] = map[string]types.UID{}
	}
	t.deleted[node][name] = uid
}

// forget drops what the tracker knows of slice name of node (after a conflict: the next sync
// reads again).
func (t *tracker) forget(node, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgetLocked(node, name)
	delete(t.deleted[node], name)
	if len(t.deleted[node]) == 0 {
		delete(t.deleted, node)
	}
}

func (t *tracker) forgetLocked(node, name string) {
	delete(t.known[node], name)
	if len(t.known[node]) == 0 {
		delete(t.known, node)
	}
}

// current is node's slices to plan from: per name the newer of the informer's copy and the
// tracked one, the tracked slices the informer does not list yet, without the slices the
// controller deleted.
func (t *tracker) current(node string, informer []*v1alpha1.IPLocationSlice) []*v1alpha1.IPLocationSlice {
	t.mu.Lock()
	defer t.mu.Unlock()
	known, deleted := t.known[node], t.deleted[node]
	out := make([]*v1alpha1.IPLocationSlice, 0, len(informer)+len(known))
	used := map[string]bool{}
	for _, s := range informer {
		if k, ok := known[s.Name]; ok && newer(k, s) {
			continue // the tracked copy is added below
		}
		if uid, ok := deleted[s.Name]; ok && uid == s.UID {
			continue
		}
		used[s.Name] = true
		out = append(out, s)
	}
	for name, k := range known {
		if !used[name] {
			out = append(out, k)
		}
	}
	return out
}

// observed takes an informer event for s (gone: a delete) and reports whether it only echoes
// the controller's own writes (it is the tracked copy, or older than it); once the informer
// has caught up with a tracked write, the tracker forgets it.
func (t *tracker) observed(s *v1alpha1.IPLocationSlice, gone bool) (echo bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	node := s.Spec.Node
	if uid, ok := t.deleted[node][s.Name]; ok && uid == s.UID {
		if gone {
			delete(t.deleted[node], s.Name)
			if len(t.deleted[node]) == 0 {
				delete(t.deleted, node)
			}
		}
		return true // the controller's delete, or an event from before it
	}
	k, ok := t.known[node][s.Name]
	if !ok {
		return false
	}
	switch {
	case newer(k, s):
		return true // superseded by the controller's later write
	case gone:
		if k.UID == s.UID {
			t.forgetLocked(node, s.Name) // deleted by someone else
		}
		return false
	case k.UID == s.UID && k.ResourceVersion == s.ResourceVersion:
		t.forgetLocked(node, s.Name) // the informer has caught up
		return true
	default:
		t.forgetLocked(node, s.Name) // written by someone else since
		return false
	}
}

// size is how many slices the tracker remembers (tests).
func (t *tracker) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.known {
		n += len(m)
	}
	for _, m := range t.deleted {
		n += len(m)
	}
	return n
}

// newer reports whether a is a later state of the slice's name than b: a higher
// resourceVersion (the apiserver's are etcd revisions, so they compare as numbers; one that does
// not parse is never newer).
func newer(a, b *v1alpha1.IPLocationSlice) bool {
	ra, errA := strconv.ParseUint(a.ResourceVersion, 10, 64)
	rb, errB := strconv.ParseUint(b.ResourceVersion, 10, 64)
	return errA == nil && errB == nil && ra > rb
}
