package scrape

import (
	"context"
	"errors"
	"hash/fnv"
	"io/fs"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// TargetSource lists the cgroups to collect (pod discovery, or a fixed list in benchmarks).
type TargetSource interface {
	Targets() []*collector.Target
}

// Consumer receives every snapshot (the Prometheus exporter, the Odin pusher).
type Consumer interface {
	Consume(ctx context.Context, snap *Snapshot)
}

// Runner collects every step.
type Runner struct {
	Env        *collector.Env
	Collectors []collector.Collector
	Source     TargetSource
	Node       string
	Datacenter string
	Step       time.Duration
	Clock      clock.WithTicker
	Consumers  []Consumer

	// lastErr remembers the last error per target and collector so a broken cgroup is logged once,
	// not every step.
	lastErr map[errKey]string
	// expected is the series count of the previous pass, to size the next one.
	expected int
	// last is the unix nanosecond time of the last finished pass (for /healthz).
	last atomic.Int64
	// started is the unix nanosecond time Run started.
	started atomic.Int64
}

// Started returns when Run started (zero before).
func (r *Runner) Started() time.Time {
	if n := r.started.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// LastPass returns when the last pass finished (zero before the first).
func (r *Runner) LastPass() time.Time {
	if n := r.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

type errKey struct {
	dir, collector string
}

// Descs lists the metric families of every collector.
func Descs(cs []collector.Collector) []*collector.Desc {
	var out []*collector.Desc
	for _, c := range cs {
		out = append(out, c.Describe()...)
	}
	return out
}

// CollectOnce runs one pass and returns its snapshot. Errors of single targets are counted and
// logged; they never stop the pass.
func (r *Runner) CollectOnce(ctx context.Context) *Snapshot {
	logger := klog.FromContext(ctx)
	if r.lastErr == nil {
		r.lastErr = map[errKey]string{}
	}
	start := r.Clock.Now()
	targets := r.Source.Targets()
	snap := &Snapshot{Time: start, Node: r.Node, Datacenter: r.Datacenter, Series: make([]Series, 0, r.expected)}
	for _, t := range targets {
		s := &sink{snap: snap, target: t}
		for _, c := range r.Collectors {
			err := c.Collect(r.Env, t, s)
			key := errKey{t.Dir, c.Name()}
			if err == nil {
				delete(r.lastErr, key)
				continue
			}
			agentmetrics.CollectErrors.WithLabelValues(c.Name()).Inc()
			if errors.Is(err, fs.ErrNotExist) {
				// The container exited between discovery and reading: expected churn.
				logger.V(4).Info("Cgroup vanished", "collector", c.Name(), "namespace", t.Namespace, "pod", t.Pod, "container", t.Container, "err", err)
				continue
			}
			if r.lastErr[key] != err.Error() {
				r.lastErr[key] = err.Error()
				logger.Error(err, "Collecting cgroup statistics failed; will retry every step", "collector", c.Name(),
					"namespace", t.Namespace, "pod", t.Pod, "container", t.Container, "cgroup", t.Dir)
			}
		}
	}
	r.expected = len(snap.Series)
	agentmetrics.CollectionDuration.Observe(r.Clock.Since(start).Seconds())
	agentmetrics.CollectionTargets.Set(float64(len(targets)))
	now := r.Clock.Now()
	r.last.Store(now.UnixNano())
	agentmetrics.LastCollection.Set(float64(now.Unix()))
	return snap
}

// Run collects at every point of the node's grid until ctx ends, handing each snapshot to the
// consumers. The grid is the multiples of Step shifted by an offset derived from the node's name
// (GridOffset): the nodes' pushes spread over the step, and an agent that restarts takes its first
// sample at the next point, never within the step of the last sample its previous process took
// (Odin keeps one value per series and step, and a second would overwrite the first).
func (r *Runner) Run(ctx context.Context) {
	r.started.Store(r.Clock.Now().UnixNano())
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.Clock.After(UntilNextPoint(r.Clock.Now(), r.Step, GridOffset(r.Node, r.Step))):
		}
		snap := r.CollectOnce(ctx)
		for _, c := range r.Consumers {
			c.Consume(ctx, snap)
		}
	}
}

// GridOffset is where node's collection points lie within a step: a hash of its name.
func GridOffset(node string, step time.Duration) time.Duration {
	if step <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(node))
	return time.Duration(h.Sum64() % uint64(step))
}

// UntilNextPoint is the wait from now to the next point of the grid of step shifted by offset,
// strictly after now (a full step when now is on a point).
func UntilNextPoint(now time.Time, step, offset time.Duration) time.Duration {
	if step <= 0 {
		return 0
	}
	into := (now.UnixNano() - int64(offset)) % int64(step)
	if into < 0 {
		into += int64(step)
	}
	return step - time.Duration(into)
}

// TargetsFunc adapts a function to TargetSource.
type TargetsFunc func() []*collector.Target

// Targets implements TargetSource.
func (f TargetsFunc) Targets() []*collector.Target { return f() }
