package locationslices

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// slice is slice name of node "n" with uid and resourceVersion rv, listing ips.
func slice(name string, uid types.UID, rv string, ips ...string) *v1alpha1.IPLocationSlice {
	s := existing(name, ips...)
	s.UID, s.ResourceVersion = uid, rv
	return s
}

// describe is "name@rv:ips" per slice, sorted by name.
func describe(ss []*v1alpha1.IPLocationSlice) []string {
	var out []string
	for _, s := range ss {
		var ips []string
		for _, nw := range s.Spec.Networks {
			ips = append(ips, nw.IPs...)
		}
		out = append(out, s.Name+"@"+s.ResourceVersion+":"+strings.Join(ips, ","))
	}
	slices.Sort(out)
	return out
}

func TestTrackerCurrent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wrote    []*v1alpha1.IPLocationSlice
		deleted  []*v1alpha1.IPLocationSlice
		informer []*v1alpha1.IPLocationSlice
		want     []string
	}{{
		name:     "nothing tracked: the informer's copies",
		informer: []*v1alpha1.IPLocationSlice{slice("n-0", "a", "5", "10.0.0.1")},
		want:     []string{"n-0@5:10.0.0.1"},
	}, {
		name:     "the controller's update is newer than the informer's copy",
		wrote:    []*v1alpha1.IPLocationSlice{slice("n-0", "a", "7", "10.0.0.1", "10.0.0.2")},
		informer: []*v1alpha1.IPLocationSlice{slice("n-0", "a", "5", "10.0.0.1")},
		want:     []string{"n-0@7:10.0.0.1,10.0.0.2"},
	}, {
		name:     "the informer has moved past the tracked copy",
		wrote:    []*v1alpha1.IPLocationSlice{slice("n-0", "a", "7", "10.0.0.1")},
		informer: []*v1alpha1.IPLocationSlice{slice("n-0", "a", "9", "10.0.0.3")},
		want:     []string{"n-0@9:10.0.0.3"},
	}, {
		name:     "a created slice the informer has not listed yet",
		wrote:    []*v1alpha1.IPLocationSlice{slice("n-1", "b", "8", "10.0.0.9")},
		informer: []*v1alpha1.IPLocationSlice{slice("n-0", "a", "5", "10.0.0.1")},
		want:     []string{"n-0@5:10.0.0.1", "n-1@8:10.0.0.9"},
	}, {
		name:     "a deleted slice the informer still lists is left out",
		deleted:  []*v1alpha1.IPLocationSlice{slice("n-1", "b", "6")},
		informer: []*v1alpha1.IPLocationSlice{slice("n-0", "a", "5", "10.0.0.1"), slice("n-1", "b", "6")},
		want:     []string{"n-0@5:10.0.0.1"},
	}, {
		name:     "deleted, then created again under the same name",
		deleted:  []*v1alpha1.IPLocationSlice{slice("n-1", "b", "6")},
		wrote:    []*v1alpha1.IPLocationSlice{slice("n-1", "c", "11", "10.0.0.4")},
		informer: []*v1alpha1.IPLocationSlice{slice("n-1", "b", "6")},
		want:     []string{"n-1@11:10.0.0.4"},
	}, {
		name:     "a slice of the same name with another UID than the deleted one stays",
		deleted:  []*v1alpha1.IPLocationSlice{slice("n-1", "b", "6")},
		informer: []*v1alpha1.IPLocationSlice{slice("n-1", "z", "12", "10.0.0.5")},
		want:     []string{"n-1@12:10.0.0.5"},
	}, {
		name:     "a resourceVersion that does not parse: the informer's copy",
		wrote:    []*v1alpha1.IPLocationSlice{slice("n-0", "a", "x", "10.0.0.2")},
		informer: []*v1alpha1.IPLocationSlice{slice("n-0", "a", "5", "10.0.0.1")},
		want:     []string{"n-0@5:10.0.0.1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker()
			for _, s := range tc.deleted {
				tr.deletedSlice("n", s.Name, s.UID)
			}
			for _, s := range tc.wrote {
				tr.wrote(s)
			}
			got := describe(tr.current("n", tc.informer))
			if !slices.Equal(got, tc.want) {
				t.Errorf("current = %v, want %v", got, tc.want)
			}
			if other := tr.current("m", nil); len(other) != 0 {
				t.Errorf("another node's slices = %v, want none", describe(other))
			}
		})
	}
}

func TestTrackerObserved(t *testing.T) {
	type event struct {
		s    *v1alpha1.IPLocationSlice
		gone bool
		echo bool // want
	}
	for _, tc := range []struct {
		name    string
		wrote   []*v1alpha1.IPLocationSlice
		deleted []*v1alpha1.IPLocationSlice
		events  []event
		left    int // slices the tracker still remembers
	}{{
		name:   "untracked slices are others' changes",
		events: []event{{s: slice("n-0", "a", "5")}, {s: slice("n-0", "a", "6"), gone: true}},
	}, {
		name:  "the echo of an update, after an older event: both echoes, then forgotten",
		wrote: []*v1alpha1.IPLocationSlice{slice("n-0", "a", "7")},
		events: []event{
			{s: slice("n-0", "a", "5"), echo: true},
			{s: slice("n-0", "a", "7"), echo: true},
			{s: slice("n-0", "a", "8")}, // untracked again: someone else's
		},
	}, {
		name:   "someone else wrote after the controller",
		wrote:  []*v1alpha1.IPLocationSlice{slice("n-0", "a", "7")},
		events: []event{{s: slice("n-0", "a", "9")}},
	}, {
		name:   "someone else deleted the controller's slice",
		wrote:  []*v1alpha1.IPLocationSlice{slice("n-0", "a", "7")},
		events: []event{{s: slice("n-0", "a", "10"), gone: true}},
	}, {
		name:    "the echo of a delete, after an update from before it",
		deleted: []*v1alpha1.IPLocationSlice{slice("n-1", "b", "6")},
		events:  []event{{s: slice("n-1", "b", "6"), echo: true}, {s: slice("n-1", "b", "12"), gone: true, echo: true}},
	}, {
		name:    "a deleted slice's tombstone stays until its delete is seen",
		deleted: []*v1alpha1.IPLocationSlice{slice("n-1", "b", "6")},
		events:  []event{{s: slice("n-1", "b", "6"), echo: true}},
		left:    1,
	}, {
		name:   "a create's echo",
		wrote:  []*v1alpha1.IPLocationSlice{slice("n-2", "c", "3")},
		events: []event{{s: slice("n-2", "c", "3"), echo: true}},
	}, {
		name:   "before the echo arrives the write stays tracked",
		wrote:  []*v1alpha1.IPLocationSlice{slice("n-2", "c", "3")},
		events: []event{{s: slice("n-0", "a", "2")}},
		left:   1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker()
			for _, s := range tc.deleted {
				tr.deletedSlice("n", s.Name, s.UID)
			}
			for _, s := range tc.wrote {
				tr.wrote(s)
			}
			for i, ev := range tc.events {
				if got := tr.observed(ev.s, ev.gone); got != ev.echo {
					t.Errorf("event %d (%s@%s gone=%v): echo = %v, want %v", i, ev.s.Name, ev.s.ResourceVersion, ev.gone, got, ev.echo)
				}
			}
			if got := tr.size(); got != tc.left {
				t.Errorf("tracker remembers %d slices, want %d", got, tc.left)
			}
		})
	}
}

// TestTrackerPlan: planning from the tracker after a write the informer has not seen leaves
// nothing to write, where planning from the informer alone would update the stale copy.
func TestTrackerPlan(t *testing.T) {
	stale := slice("n-0", "a", "5", "10.0.0.1")
	tr := newTracker()
	written := slice("n-0", "a", "7", "10.0.0.1", "10.0.0.2")
	tr.wrote(written)
	keep, drop := Plan("n", tr.current("n", []*v1alpha1.IPLocationSlice{stale}), want("10.0.0.1", "10.0.0.2"), 4)
	if len(keep) != 1 || len(drop) != 0 || keep[0].current != written {
		t.Fatalf("plan from the tracker: keep %+v drop %v, want the written copy kept", keep, drop)
	}
	if got := keep[0].networks(); !slices.Equal(got[0].IPs, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("planned IPs %v", got)
	}
}
