package odin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
	"github.com/ecloud-io/ecloud/node-agent/pkg/scrape"
	"github.com/ecloud-io/ecloud/node-agent/pkg/spool"
)

// Pusher spools every snapshot and sends the spool, oldest first, to Odin.
type Pusher struct {
	cfg      config.Odin
	step     int64
	password string
	client   *http.Client
	clock    clock.Clock
	spool    *spool.Spool
	wake     chan struct{}
	// gzip is whether bodies are sent gzip-compressed: cfg.Gzip until the receiver refuses one.
	gzip atomic.Bool

	// encMu guards enc and items, reused between batches to keep memory flat.
	encMu sync.Mutex
	enc   encoder
	items []Item
}

var _ scrape.Consumer = &Pusher{}

// New opens the spool (keeping what a previous run left) and returns a pusher for cfg.
func New(cfg config.Odin, step time.Duration, clk clock.Clock) (*Pusher, error) {
	if cfg.URL == "" {
		return nil, errNoURL
	}
	p := &Pusher{cfg: cfg, step: int64(step / time.Second), clock: clk, wake: make(chan struct{}, 1),
		client: &http.Client{Timeout: cfg.Timeout}}
	p.gzip.Store(cfg.Gzip)
	// Every outcome has a series from the start, so a query over them sees 0 rather than nothing.
	for _, outcome := range []string{"sent", "invalid", "rejected", "spool_dropped"} {
		agentmetrics.OdinItems.WithLabelValues(outcome).Add(0)
	}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read odin password file %s: %w", cfg.PasswordFile, err)
		}
		p.password = strings.TrimSpace(string(b))
	}
	s, err := spool.Open(cfg.SpoolDir, cfg.SpoolMaxAge, cfg.SpoolMaxSize, clk, func(items int) {
		agentmetrics.OdinItems.WithLabelValues("spool_dropped").Add(float64(items))
	})
	if err != nil {
		return nil, fmt.Errorf("open odin spool: %w", err)
	}
	p.spool = s
	p.updateSpoolMetrics()
	return p, nil
}

// Gzip reports whether bodies are sent gzip-compressed (false after a fallback to plain JSON).
func (p *Pusher) Gzip() bool { return p.gzip.Load() }

// Spool returns the pusher's spool (for inspection).
func (p *Pusher) Spool() *spool.Spool { return p.spool }

// Consume implements scrape.Consumer: the snapshot is converted and spooled batch by batch.
func (p *Pusher) Consume(ctx context.Context, snap *scrape.Snapshot) {
	logger := klog.FromContext(ctx)
	p.encMu.Lock()
	defer p.encMu.Unlock()
	for start := 0; start < len(snap.Series); start += p.cfg.BatchSize {
		end := min(start+p.cfg.BatchSize, len(snap.Series))
		var tooLong []Item
		p.items, tooLong = appendItems(p.items[:0], snap, snap.Series[start:end], p.step)
		if len(tooLong) > 0 {
			agentmetrics.OdinItems.WithLabelValues("invalid").Add(float64(len(tooLong)))
			logger.Error(nil, "Dropping falcon items whose metric+tags exceed the limit", "limit", MaxMetricTagsLen,
				"count", len(tooLong), "example", tooLong[0].Metric+" "+tooLong[0].Tags)
		}
		if err := p.spoolLocked(snap.Time, p.items); err != nil {
			logger.Error(err, "Spooling Odin items failed; they are lost", "items", len(p.items))
		}
	}
	p.notify()
}

// Enqueue spools items in batches of BatchSize and wakes the sender.
func (p *Pusher) Enqueue(t time.Time, items []Item) error {
	p.encMu.Lock()
	defer p.encMu.Unlock()
	defer p.notify()
	for start := 0; start < len(items); start += p.cfg.BatchSize {
		if err := p.spoolLocked(t, items[start:min(start+p.cfg.BatchSize, len(items))]); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pusher) spoolLocked(t time.Time, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	gz, err := p.enc.encode(items)
	if err != nil {
		return err
	}
	return p.spool.Append(t, len(items), gz)
}

func (p *Pusher) notify() {
	p.updateSpoolMetrics()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Pusher) updateSpoolMetrics() {
	b, items, _ := p.spool.Stats()
	agentmetrics.OdinSpoolBytes.Set(float64(b))
	agentmetrics.OdinSpoolItems.Set(float64(items))
}

// Run sends spooled batches in order until ctx ends. A batch leaves the spool only once the receiver
// answered 200 (or 400, which is final); anything else is retried with exponential backoff.
func (p *Pusher) Run(ctx context.Context) {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "url", p.cfg.URL)
	backoff := time.Duration(0)
	for {
		seg, ok := p.spool.Oldest()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
				continue
			}
		}
		res := p.sendSegment(ctx, seg)
		if ctx.Err() != nil {
			return
		}
		switch res.outcome {
		case delivered:
			p.spool.Remove(seg)
			agentmetrics.OdinItems.WithLabelValues("sent").Add(float64(seg.Items - res.invalid))
			if res.invalid > 0 {
				agentmetrics.OdinItems.WithLabelValues("invalid").Add(float64(res.invalid))
				logger.Error(nil, "Odin accepted a batch but called some items invalid", "items", seg.Items, "invalid", res.invalid)
			}
			if backoff > 0 {
				logger.Info("Odin push recovered")
			}
			backoff = 0
		case rejected:
			p.spool.Remove(seg)
			agentmetrics.OdinItems.WithLabelValues("rejected").Add(float64(seg.Items))
			logger.Error(res.err, "Odin rejected a batch; dropped", "items", seg.Items)
		case gone:
		case retry:
			agentmetrics.OdinPushErrors.WithLabelValues(res.reason).Inc()
			backoff = nextBackoff(backoff, p.cfg.MinBackoff, p.cfg.MaxBackoff)
			_, items, segs := p.spool.Stats()
			logger.Error(res.err, "Odin push failed; keeping the data and retrying", "retryIn", backoff, "spooledItems", items, "spooledBatches", segs)
			select {
			case <-ctx.Done():
				return
			case <-p.clock.After(backoff):
			}
		}
		p.updateSpoolMetrics()
	}
}

func (p *Pusher) sendSegment(ctx context.Context, seg spool.Segment) result {
	gz, err := p.spool.Read(seg)
	if errors.Is(err, fs.ErrNotExist) {
		return result{outcome: gone}
	}
	if err != nil {
		// A segment that cannot be read will never be sent.
		return result{outcome: rejected, err: err}
	}
	return p.push(ctx, gz)
}

func nextBackoff(cur, lo, hi time.Duration) time.Duration {
	if cur == 0 {
		return wait.Jitter(lo, 0.2)
	}
	return min(wait.Jitter(cur*2, 0.2), hi)
}
