package locations

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func slice(name, node, tunnel string, written int, nets ...v1alpha1.LocatedNetwork) *v1alpha1.IPLocationSlice {
	wt := metav1.NewMicroTime(t0.Add(time.Duration(written) * time.Second))
	return &v1alpha1.IPLocationSlice{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.IPLocationSliceSpec{Node: node, TunnelIP: tunnel, WriteTime: &wt, Networks: nets}}
}

func nw(pool string, vlan int32, ips ...string) v1alpha1.LocatedNetwork {
	return v1alpha1.LocatedNetwork{Pool: pool, VLAN: vlan, IPs: ips}
}

type op struct {
	add, del *v1alpha1.IPLocationSlice
	replace  []*v1alpha1.IPLocationSlice
}

func TestFollower(t *testing.T) {
	ip := netip.MustParseAddr
	a := func(w int, ips ...string) *v1alpha1.IPLocationSlice {
		return slice("node-a-0", "node-a", "192.0.2.1", w, nw("p", 100, ips...))
	}
	b := func(w int, ips ...string) *v1alpha1.IPLocationSlice {
		return slice("node-b-0", "node-b", "192.0.2.2", w, nw("p", 100, ips...))
	}
	for _, tc := range []struct {
		name        string
		ops         []op
		want        map[string]string // ip → node ("" = absent)
		wantNodes   []string
		lastChanged []string // the IPs the last op reported
		lastNodes   bool
	}{{
		name:        "add",
		ops:         []op{{add: a(1, "10.0.0.1", "10.0.0.2")}},
		want:        map[string]string{"10.0.0.1": "node-a", "10.0.0.2": "node-a", "10.0.0.3": ""},
		wantNodes:   []string{"node-a"},
		lastChanged: []string{"10.0.0.1", "10.0.0.2"}, lastNodes: true,
	}, {
		name:      "an IP listed twice during a move: the newer write wins, then the only one",
		ops:       []op{{add: a(1, "10.0.0.1", "10.0.0.2")}, {add: b(2, "10.0.0.1")}, {add: a(3, "10.0.0.2")}},
		want:      map[string]string{"10.0.0.1": "node-b", "10.0.0.2": "node-a"},
		wantNodes: []string{"node-a", "node-b"}, lastChanged: nil,
	}, {
		name:        "the newer write wins even when it arrives first",
		ops:         []op{{add: b(2, "10.0.0.1")}, {add: a(1, "10.0.0.1")}},
		want:        map[string]string{"10.0.0.1": "node-b"},
		wantNodes:   []string{"node-a", "node-b"},
		lastChanged: nil, lastNodes: true,
	}, {
		name:        "the winner's deletion uncovers the other",
		ops:         []op{{add: a(1, "10.0.0.1")}, {add: b(2, "10.0.0.1")}, {del: b(2)}},
		want:        map[string]string{"10.0.0.1": "node-a"},
		wantNodes:   []string{"node-a"},
		lastChanged: []string{"10.0.0.1"}, lastNodes: true,
	}, {
		name:        "a new tunnel endpoint moves every IP of the node",
		ops:         []op{{add: a(1, "10.0.0.1")}, {add: slice("node-a-0", "node-a", "192.0.2.9", 2, nw("p", 100, "10.0.0.1"))}},
		want:        map[string]string{"10.0.0.1": "node-a"},
		wantNodes:   []string{"node-a"},
		lastChanged: []string{"10.0.0.1"}, lastNodes: true,
	}, {
		name:        "a VLAN change is a change",
		ops:         []op{{add: a(1, "10.0.0.1")}, {add: slice("node-a-0", "node-a", "192.0.2.1", 2, nw("p", 200, "10.0.0.1"))}},
		want:        map[string]string{"10.0.0.1": "node-a"},
		wantNodes:   []string{"node-a"},
		lastChanged: []string{"10.0.0.1"},
	}, {
		name: "replace drops slices missing from the list",
		ops: []op{{add: a(1, "10.0.0.1")}, {add: b(1, "10.0.0.2")}, {add: slice("node-b-1", "node-b", "192.0.2.2", 1, nw("p", 100, "10.0.0.3"))},
			{replace: []*v1alpha1.IPLocationSlice{b(2, "10.0.0.2")}}},
		want:      map[string]string{"10.0.0.1": "", "10.0.0.2": "node-b", "10.0.0.3": ""},
		wantNodes: []string{"node-b"},
	}, {
		name:        "an update reports only the IPs it changed",
		ops:         []op{{add: a(1, "10.0.0.1", "10.0.0.2", "10.0.0.3")}, {add: a(2, "10.0.0.1", "10.0.0.3", "10.0.0.4")}},
		want:        map[string]string{"10.0.0.1": "node-a", "10.0.0.2": "", "10.0.0.3": "node-a", "10.0.0.4": "node-a"},
		wantNodes:   []string{"node-a"},
		lastChanged: []string{"10.0.0.2", "10.0.0.4"},
	}, {
		name:        "an IP both slices keep follows the newer write",
		ops:         []op{{add: a(1, "10.0.0.1", "10.0.0.2")}, {add: b(2, "10.0.0.1")}, {add: a(3, "10.0.0.1", "10.0.0.2")}},
		want:        map[string]string{"10.0.0.1": "node-a", "10.0.0.2": "node-a"},
		wantNodes:   []string{"node-a", "node-b"},
		lastChanged: []string{"10.0.0.1"},
	}, {
		name:        "an empty slice announces the node",
		ops:         []op{{add: a(1)}},
		want:        map[string]string{"10.0.0.1": ""},
		wantNodes:   []string{"node-a"},
		lastChanged: nil, lastNodes: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var last Change
			f := NewFromListerWatcher(nil, Options{OnChange: func(c Change) { last = c }})
			st := store{f}
			for _, o := range tc.ops {
				var err error
				switch {
				case o.add != nil:
					err = st.Add(o.add)
				case o.del != nil:
					err = st.Delete(o.del)
				default:
					var list []any
					for _, s := range o.replace {
						list = append(list, s)
					}
					err = st.Replace(list, "1")
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			n := 0
			for k, node := range tc.want {
				l, ok := f.Lookup(ip(k))
				if node == "" {
					if ok {
						t.Errorf("%s located on %s, want nowhere", k, l.Node)
					}
					continue
				}
				n++
				if !ok || l.Node != node {
					t.Errorf("%s located on %q (%v), want %s", k, l.Node, ok, node)
				}
			}
			if f.Len() != n || len(f.Snapshot()) != n {
				t.Errorf("Len %d, Snapshot %d, want %d", f.Len(), len(f.Snapshot()), n)
			}
			var nodes []string
			for _, ne := range f.Nodes() {
				nodes = append(nodes, ne.Node)
			}
			if !slices.Equal(nodes, tc.wantNodes) {
				t.Errorf("Nodes %v, want %v", nodes, tc.wantNodes)
			}
			if tc.lastChanged != nil || len(tc.ops) == 1 {
				var got []string
				for _, a := range last.IPs {
					got = append(got, a.String())
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.lastChanged) || last.Nodes != tc.lastNodes {
					t.Errorf("last change %v (nodes %v), want %v (nodes %v)", got, last.Nodes, tc.lastChanged, tc.lastNodes)
				}
			}
		})
	}
}

func TestFollowerTunnelAndWriteTime(t *testing.T) {
	var last Change
	f := NewFromListerWatcher(nil, Options{OnChange: func(c Change) { last = c }})
	s := slice("n-0", "n", "192.0.2.7", 5, nw("p", 42, "10.1.0.1"))
	if err := (store{f}).Add(s); err != nil {
		t.Fatal(err)
	}
	l, ok := f.Lookup(netip.MustParseAddr("10.1.0.1"))
	if !ok || l != (Location{Node: "n", TunnelIP: netip.MustParseAddr("192.0.2.7"), VLAN: 42}) {
		t.Errorf("Lookup = %+v, %v", l, ok)
	}
	if !last.Written.Equal(t0.Add(5*time.Second)) || last.Slice != "n-0" || last.Node != "n" || last.Seen.IsZero() {
		t.Errorf("change %+v", last)
	}
	if f.HasSynced() {
		t.Error("synced before a complete list")
	}
	if err := (store{f}).Replace(nil, "2"); err != nil || !f.HasSynced() || f.Len() != 0 {
		t.Errorf("after an empty list: err %v, synced %v, len %d", err, f.HasSynced(), f.Len())
	}
}
