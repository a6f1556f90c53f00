package locrelay

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/locations"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func slice(name, node, tunnel string, ips ...string) *v1alpha1.IPLocationSlice {
	wt := metav1.NewMicroTime(t0)
	return &v1alpha1.IPLocationSlice{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"},
		Spec: v1alpha1.IPLocationSliceSpec{Node: node, TunnelIP: tunnel, WriteTime: &wt,
			Networks: []v1alpha1.LocatedNetwork{{Pool: "p", VLAN: 100, IPs: ips}}}}
}

// fakeSlices is a ListerWatcher of a fixed list and one watch the test feeds.
type fakeSlices struct {
	items []v1alpha1.IPLocationSlice
	w     *watch.FakeWatcher
	once  sync.Once
}

func newFakeSlices(items ...*v1alpha1.IPLocationSlice) *fakeSlices {
	f := &fakeSlices{w: watch.NewFakeWithChanSize(100, false)}
	for _, s := range items {
		f.items = append(f.items, *s)
	}
	return f
}

// listWatchOnly is a ListWatch that serves no streamed initial list (watch-list): the reflector lists.
type listWatchOnly struct{ *cache.ListWatch }

func (listWatchOnly) IsWatchListSemanticsUnSupported() bool { return true }

func (f *fakeSlices) lw() cache.ListerWatcher {
	return listWatchOnly{&cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return &v1alpha1.IPLocationSliceList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: f.items}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			w := watch.NewEmptyWatch()
			f.once.Do(func() { w = f.w })
			return w, nil
		},
	}}
}

// startRelay runs a relay of lw behind an HTTP server until the test ends.
func startRelay(t *testing.T, lw *fakeSlices, cfg Config) (*Server, *httptest.Server, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := NewFromListerWatcher(lw.lw(), cfg)
	go s.Run(ctx)
	waitFor(t, "the relay to list the slices", s.HasSynced)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { cancel(); srv.CloseClientConnections(); srv.Close() })
	return s, srv, cancel
}

// follow runs a relay follower of the URLs urls returns until the test ends.
func follow(t *testing.T, urls func() []string) *locations.Follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := locations.NewFromRelay(locations.RelayConfig{
		Endpoints:  func(context.Context) ([]string, error) { return urls(), nil },
		MaxBackoff: 100 * time.Millisecond, IdleTimeout: 2 * time.Second,
	}, locations.Options{})
	go f.Run(ctx)
	return f
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func nodeOf(f *locations.Follower, ip string) string {
	l, _ := f.Lookup(netip.MustParseAddr(ip))
	return l.Node
}

func TestRelayStreamsSnapshotAndChanges(t *testing.T) {
	lw := newFakeSlices(slice("a-0", "node-a", "192.0.2.1", "10.0.0.1", "10.0.0.2"), slice("b-0", "node-b", "192.0.2.2", "10.0.0.3"))
	_, srv, _ := startRelay(t, lw, Config{})
	fs := []*locations.Follower{follow(t, func() []string { return []string{srv.URL} }), follow(t, func() []string { return []string{srv.URL} })}
	for _, f := range fs {
		waitFor(t, "the snapshot", f.HasSynced)
		if f.Len() != 3 || nodeOf(f, "10.0.0.3") != "node-b" {
			t.Fatalf("after the snapshot: %d IPs, 10.0.0.3 on %q", f.Len(), nodeOf(f, "10.0.0.3"))
		}
	}
	// A sticky IP moves from node-a to node-b (two writes), then node-a's slice is deleted.
	lw.w.Modify(slice("b-0", "node-b", "192.0.2.2", "10.0.0.3", "10.0.0.1"))
	lw.w.Modify(slice("a-0", "node-a", "192.0.2.1", "10.0.0.2"))
	lw.w.Delete(slice("a-0", "node-a", "192.0.2.1"))
	for _, f := range fs {
		waitFor(t, "the move and the deletion", func() bool { return nodeOf(f, "10.0.0.1") == "node-b" && nodeOf(f, "10.0.0.2") == "" })
		if nodes := f.Nodes(); len(nodes) != 1 || nodes[0].Node != "node-b" || nodes[0].TunnelIP != netip.MustParseAddr("192.0.2.2") {
			t.Fatalf("nodes %v, want node-b alone", nodes)
		}
	}
}

func TestFollowerDropsWhatANewRelayDoesNotHave(t *testing.T) {
	lwA := newFakeSlices(slice("a-0", "node-a", "192.0.2.1", "10.0.0.1"), slice("b-0", "node-b", "192.0.2.2", "10.0.0.2"))
	_, srvA, stopA := startRelay(t, lwA, Config{})
	lwB := newFakeSlices(slice("b-0", "node-b", "192.0.2.2", "10.0.0.2", "10.0.0.5"))
	_, srvB, _ := startRelay(t, lwB, Config{})
	var mu sync.Mutex
	urls := []string{srvA.URL}
	f := follow(t, func() []string { mu.Lock(); defer mu.Unlock(); return urls })
	waitFor(t, "relay A's snapshot", func() bool { return f.HasSynced() && f.Len() == 2 })
	mu.Lock()
	urls = []string{srvB.URL}
	mu.Unlock()
	stopA()
	srvA.CloseClientConnections()
	waitFor(t, "relay B's snapshot", func() bool { return nodeOf(f, "10.0.0.5") == "node-b" && nodeOf(f, "10.0.0.1") == "" })
	if f.Len() != 2 {
		t.Fatalf("%d IPs after relay B's snapshot, want 2", f.Len())
	}
}

func TestRelayDropsAFollowerAWholeBufferBehind(t *testing.T) {
	s := NewFromListerWatcher(newFakeSlices().lw(), Config{Buffer: 2})
	sub, snap := s.subscribe()
	if len(snap) != 0 {
		t.Fatalf("snapshot of %d frames, want none", len(snap))
	}
	for i, name := range []string{"a", "b", "c"} {
		s.put(name, locations.EncodeSlice(slice(name, "node-"+name, "192.0.2.1", "10.0.0.1")))
		select {
		case <-sub.dropped:
			if i < 2 {
				t.Fatalf("dropped after %d frames with a buffer of 2", i+1)
			}
		default:
			if i == 2 {
				t.Fatal("a follower 3 frames behind with a buffer of 2 was kept")
			}
		}
	}
	// The same frame again is no change: nobody is sent anything.
	sub2, _ := s.subscribe()
	s.put("a", locations.EncodeSlice(slice("a", "node-a", "192.0.2.1", "10.0.0.1")))
	if len(sub2.frames) != 0 {
		t.Fatal("an unchanged slice was sent again")
	}
}

type denyAll struct{ code int }

func (d denyAll) Authorize(context.Context, string) (string, int, string) {
	return "someone", d.code, "not today"
}

func TestRelayRefusals(t *testing.T) {
	t.Run("the authorizer's refusal", func(t *testing.T) {
		_, srv, _ := startRelay(t, newFakeSlices(slice("a-0", "node-a", "192.0.2.1", "10.0.0.1")), Config{Auth: denyAll{http.StatusForbidden}})
		resp, err := http.Get(srv.URL + locations.RelayPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
		f := follow(t, func() []string { return []string{srv.URL} })
		time.Sleep(300 * time.Millisecond)
		if f.HasSynced() || f.Len() != 0 {
			t.Fatal("a refused follower synced")
		}
	})
	t.Run("before the relay listed the slices", func(t *testing.T) {
		s := NewFromListerWatcher(newFakeSlices().lw(), Config{})
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		for _, path := range []string{locations.RelayPath, "/readyz"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("%s: status %d, want 503", path, resp.StatusCode)
			}
		}
	})
}
