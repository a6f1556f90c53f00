// Package locrelay is the location relay: it follows the pod IPs' locations once and streams
// them to many netds (cni/locations' relay follower), each change as one compact frame encoded
// once for all of them. With one relay per few hundred nodes the apiserver serves tens of
// location watchers instead of one per node.
//
// A relay derives its slices from one of two sources: the IPClaims themselves (one slice per
// node, New; a claim's change then costs the apiserver no write beyond the claim's own and one
// watch event per relay), or the ip-controller's IPLocationSlices (NewFromSlices; a change costs
// a slice write first).
package locrelay

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/locations"
)

// Name identifies the relay in logs and metrics.
const Name = "location-relay"

// Config tunes a relay.
type Config struct {
	// Buffer is how many frames a follower may lag behind before the relay drops its stream (it
	// reconnects and gets a new snapshot). Default 20000.
	Buffer int
	// Heartbeat is how often an idle stream gets a heartbeat frame. Default 5 s (followers drop
	// a stream silent for 15 s).
	Heartbeat time.Duration
	// Auth decides who may follow; nil lets anyone (tests and trusted networks only).
	Auth Authorizer
}

// Default fills unset fields.
func (c *Config) Default() {
	if c.Buffer == 0 {
		c.Buffer = 20000
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 5 * time.Second
	}
}

// Server keeps every slice's current frame and the streams of its followers.
type Server struct {
	cfg Config
	// source fills frames until ctx ends and sets synced once they are complete.
	source func(ctx context.Context)

	mu     sync.Mutex
	frames map[string][]byte
	subs   map[*subscriber]struct{}
	synced atomic.Bool
}

type subscriber struct {
	frames chan []byte
	// dropped is closed when the subscriber fell behind by Buffer frames.
	dropped chan struct{}
}

// New makes a relay that derives one slice per node from the IPClaims, IPPools and Nodes.
func New(ec *client.Clientset, kube kubernetes.Interface, cfg Config) (*Server, error) {
	s := newServer(cfg)
	cs, err := newClaimSource(s, ec, kube)
	if err != nil {
		return nil, fmt.Errorf("%s: claim source: %w", Name, err)
	}
	s.source = cs.run
	return s, nil
}

// NewFromSlices makes a relay of the IPLocationSlices c lists and watches.
func NewFromSlices(c *client.Clientset, cfg Config) *Server {
	return NewFromListerWatcher(locations.SliceListerWatcher(c), cfg)
}

// NewFromListerWatcher makes a relay of the IPLocationSlices lw lists and watches.
func NewFromListerWatcher(lw cache.ListerWatcher, cfg Config) *Server {
	s := newServer(cfg)
	s.source = func(ctx context.Context) {
		logger := klog.FromContext(ctx).WithName(Name)
		r := cache.NewReflectorWithOptions(lw, &v1alpha1.IPLocationSlice{}, store{s}, cache.ReflectorOptions{Name: Name, Logger: &logger})
		r.RunWithContext(ctx)
	}
	return s
}

func newServer(cfg Config) *Server {
	cfg.Default()
	registerMetrics()
	return &Server{cfg: cfg, frames: map[string][]byte{}, subs: map[*subscriber]struct{}{}}
}

// Run follows the source until ctx ends.
func (s *Server) Run(ctx context.Context) { s.source(ctx) }

// HasSynced reports whether the first complete list is held: before it, followers are refused
// (503), so that their snapshot is complete.
func (s *Server) HasSynced() bool { return s.synced.Load() }

// put records name's frame (nil: deleted) and sends the change to every follower.
func (s *Server) put(name string, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.frames[name]
	if frame == nil {
		if !had {
			return
		}
		delete(s.frames, name)
		frame = locations.EncodeDelete(name)
	} else {
		if had && string(old) == string(frame) {
			return // nothing a follower keeps changed (e.g. a resync)
		}
		s.frames[name] = frame
	}
	slicesHeld.Set(float64(len(s.frames)))
	for sub := range s.subs {
		select {
		case sub.frames <- frame:
		default:
			close(sub.dropped)
			delete(s.subs, sub)
			streamsDropped.Inc()
		}
	}
}

// subscribe registers a follower and returns the frames of its snapshot.
func (s *Server) subscribe() (*subscriber, [][]byte) {
	sub := &subscriber{frames: make(chan []byte, s.cfg.Buffer), dropped: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := make([][]byte, 0, len(s.frames))
	for _, f := range s.frames {
		snap = append(snap, f)
	}
	s.subs[sub] = struct{}{}
	return sub, snap
}

func (s *Server) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// Handler serves the stream at locations.RelayPath and /readyz (200 once the relay holds every
// slice).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(locations.RelayPath, s.serveStream)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.HasSynced() {
			http.Error(w, "the relay has not listed the locations yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}

func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context()).WithName(Name).WithValues("remote", r.RemoteAddr)
	if r.Method != http.MethodGet {
		refuse(w, "method", http.StatusMethodNotAllowed, "only GET")
		return
	}
	who := "anyone"
	if s.cfg.Auth != nil {
		user, code, msg := s.cfg.Auth.Authorize(r.Context(), bearer(r))
		if code != http.StatusOK {
			logger.V(2).Info("Refused a follower", "user", user, "code", code, "reason", msg)
			refuse(w, "auth", code, msg)
			return
		}
		who = user
	}
	if !s.HasSynced() {
		refuse(w, "unsynced", http.StatusServiceUnavailable, "the relay has not listed the locations yet")
		return
	}
	sub, snap := s.subscribe()
	defer s.unsubscribe(sub)
	streams.Inc()
	defer streams.Dec()
	w.Header().Set("Content-Type", locations.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	bw := bufio.NewWriterSize(w, 64<<10)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	write := func(frame []byte) error {
		_, err := bw.Write(frame)
		framesSent.Inc()
		return err
	}
	for _, f := range snap {
		if err := write(f); err != nil {
			return
		}
	}
	if write(locations.SyncedFrame) != nil || flush() != nil {
		return
	}
	logger.V(2).Info("Follower subscribed", "user", who, "slices", len(snap))
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.dropped:
			logger.Info("Dropped a follower that fell behind; it resubscribes", "user", who, "buffer", s.cfg.Buffer)
			return
		case <-heartbeat.C:
			if write(locations.HeartbeatFrame) != nil || flush() != nil {
				return
			}
		case f := <-sub.frames:
			if write(f) != nil {
				return
			}
			// Send what is queued in the same write, then flush.
			for n := len(sub.frames); n > 0; n-- {
				if write(<-sub.frames) != nil {
					return
				}
			}
			if flush() != nil {
				return
			}
			heartbeat.Reset(s.cfg.Heartbeat)
		}
	}
}

// store is the relay as its reflector's store: each slice is kept as its frame.
type store struct{ s *Server }

var _ cache.ReflectorStore = store{}

func sliceOf(obj any) (*v1alpha1.IPLocationSlice, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*v1alpha1.IPLocationSlice)
	return s, ok
}

func (st store) Add(obj any) error { return st.Update(obj) }

func (st store) Update(obj any) error {
	if sl, ok := sliceOf(obj); ok {
		st.s.put(sl.Name, locations.EncodeSlice(sl))
	}
	return nil
}

func (st store) Delete(obj any) error {
	if sl, ok := sliceOf(obj); ok {
		st.s.put(sl.Name, nil)
	}
	return nil
}

// Replace applies a complete list: slices missing from it are deleted.
func (st store) Replace(list []any, _ string) error {
	seen := make(map[string]bool, len(list))
	for _, obj := range list {
		if sl, ok := sliceOf(obj); ok {
			seen[sl.Name] = true
			st.s.put(sl.Name, locations.EncodeSlice(sl))
		}
	}
	st.s.mu.Lock()
	var gone []string
	for name := range st.s.frames {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	st.s.mu.Unlock()
	for _, name := range gone {
		st.s.put(name, nil)
	}
	st.s.synced.Store(true)
	return nil
}

func (st store) Resync() error { return nil }
