package locations

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

// RelayPath is where a location relay serves its stream.
const RelayPath = "/v1/location-slices"

// RelayConfig says how a follower reaches the location relays (cni/locrelay) instead of the
// apiserver.
type RelayConfig struct {
	// Endpoints lists the relays' base URLs (http://host:port or https://…); it is called before
	// every connection, so relays that come and go are followed.
	Endpoints func(ctx context.Context) ([]string, error)
	// TokenFile holds the bearer token sent to the relay (a projected ServiceAccount token for
	// the relay's audience); it is read again for every connection. Empty: no token.
	TokenFile string
	// Client makes the requests; default: RelayClient(nil).
	Client *http.Client
	// Spread (this node's name) picks the endpoint tried first, so followers spread over relays.
	Spread string
	// IdleTimeout drops a stream that sent nothing, not even a heartbeat, for this long
	// (default 15 s; relays send a heartbeat every 5 s when idle), so a follower of a relay
	// whose node died moves to another one within it.
	IdleTimeout time.Duration
	// MaxBackoff caps the wait between failed connections (default 30 s; the first is 1 s).
	MaxBackoff time.Duration
}

// Default fills unset fields.
func (c *RelayConfig) Default() {
	if c.Client == nil {
		c.Client = RelayClient(nil)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 15 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
}

var (
	relayConnects = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "ecloud_locations", Name: "relay_connections_total",
		Help:           "Connections of the location follower to a location relay, by result (synced: the snapshot arrived; refused: HTTP error; failed: no answer or a broken stream before the snapshot).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	relayFrames = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "ecloud_locations", Name: "relay_frames_total",
		Help:           "Frames the location follower received from its relay, by kind (slice, delete, synced, heartbeat).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})
	relayMetricsOnce sync.Once
)

func registerRelayMetrics() {
	relayMetricsOnce.Do(func() { legacyregistry.MustRegister(relayConnects, relayFrames) })
}

// RelayClient is an HTTP client for relay streams (TLS settings tlsConfig, nil for plain HTTP):
// no overall timeout (a stream lasts as long as its connection), but a relay that does not
// answer within seconds is given up, so the follower tries the next one.
func RelayClient(tlsConfig *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

// NewFromRelay makes a follower of the slices a location relay streams.
func NewFromRelay(rc RelayConfig, opts Options) *Follower {
	rc.Default()
	registerRelayMetrics()
	f := newFollower(opts)
	f.run = func(ctx context.Context) { f.followRelays(ctx, rc) }
	return f
}

// followRelays connects to one relay after another until ctx ends.
func (f *Follower) followRelays(ctx context.Context, rc RelayConfig) {
	logger := klog.FromContext(ctx).WithName(Name)
	backoff := time.Second
	for attempt := 0; ctx.Err() == nil; attempt++ {
		urls, err := rc.Endpoints(ctx)
		if err == nil && len(urls) == 0 {
			err = errors.New("no location relay endpoints")
		}
		if err == nil {
			start := spreadIndex(rc.Spread, len(urls))
			for i := range urls {
				u := urls[(start+attempt+i)%len(urls)]
				synced, err := f.stream(ctx, rc, u)
				if synced {
					backoff = time.Second // it worked for a while: reconnect at once
				}
				if ctx.Err() != nil {
					return
				}
				logger.Info("Location relay stream ended", "relay", u, "synced", synced, "err", err)
				if synced {
					break
				}
			}
		} else {
			logger.Error(err, "Listing location relays failed")
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, rc.MaxBackoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// spreadIndex is where a follower called key starts in a list of n endpoints.
func spreadIndex(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// stream follows one relay until its stream breaks; synced says whether its snapshot arrived.
func (f *Follower) stream(ctx context.Context, rc RelayConfig, base string) (synced bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+RelayPath, nil)
	if err != nil {
		relayConnects.WithLabelValues("failed").Inc()
		return false, fmt.Errorf("relay %s: %w", base, err)
	}
	req.Header.Set("Accept", ContentType)
	if rc.TokenFile != "" {
		tok, err := os.ReadFile(rc.TokenFile)
		if err != nil {
			relayConnects.WithLabelValues("failed").Inc()
			return false, fmt.Errorf("token for relay %s: %w", base, err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := rc.Client.Do(req)
	if err != nil {
		relayConnects.WithLabelValues("failed").Inc()
		return false, fmt.Errorf("relay %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		relayConnects.WithLabelValues("refused").Inc()
		return false, fmt.Errorf("relay %s answered %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		relayConnects.WithLabelValues("refused").Inc()
		return false, fmt.Errorf("relay %s sent %q, not %s", base, ct, ContentType)
	}
	// A stream that stays silent past the idle timeout is dead (the relay heartbeats).
	idle := time.AfterFunc(rc.IdleTimeout, func() { cancel(fmt.Errorf("nothing from relay %s for %s", base, rc.IdleTimeout)) })
	defer idle.Stop()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var buf []byte
	seen := map[string]bool{} // slices of the snapshot, until it is complete
	defer func() {
		if !synced {
			relayConnects.WithLabelValues("failed").Inc()
		}
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			err = c
		}
	}()
	for {
		var kind byte
		var p []byte
		kind, p, buf, err = readFrame(r, buf)
		if err != nil {
			return synced, fmt.Errorf("relay %s: %w", base, err)
		}
		idle.Reset(rc.IdleTimeout)
		switch kind {
		case FrameSlice:
			st, err := decodeSlice(p)
			if err != nil {
				return synced, fmt.Errorf("relay %s: %w", base, err)
			}
			if seen != nil {
				seen[st.name] = true
			}
			f.set(st.name, &st)
			relayFrames.WithLabelValues("slice").Inc()
		case FrameDelete:
			name, err := decodeDelete(p)
			if err != nil {
				return synced, fmt.Errorf("relay %s: %w", base, err)
			}
			if seen != nil {
				delete(seen, name)
			}
			f.set(name, nil)
			relayFrames.WithLabelValues("delete").Inc()
		case FrameSynced:
			if seen != nil {
				f.dropExcept(seen)
				seen = nil
				synced = true
				relayConnects.WithLabelValues("synced").Inc()
				klog.FromContext(ctx).WithName(Name).V(2).Info("Location relay snapshot applied", "relay", base, "ips", f.Len())
			}
			relayFrames.WithLabelValues("synced").Inc()
		case FrameHeartbeat:
			relayFrames.WithLabelValues("heartbeat").Inc()
		default:
			// Kinds this follower does not know are skipped: relays may add some.
		}
	}
}
