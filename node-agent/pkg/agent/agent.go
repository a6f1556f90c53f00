// Package agent wires the node agent together: pod discovery, collectors, the Prometheus exporter,
// the Odin pusher, RDT and the node checks.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/all"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
	"github.com/ecloud-io/ecloud/node-agent/pkg/discovery"
	"github.com/ecloud-io/ecloud/node-agent/pkg/nodecheck"
	"github.com/ecloud-io/ecloud/node-agent/pkg/odin"
	"github.com/ecloud-io/ecloud/node-agent/pkg/promsink"
	"github.com/ecloud-io/ecloud/node-agent/pkg/rdt"
	"github.com/ecloud-io/ecloud/node-agent/pkg/scrape"
)

// Agent is a configured node agent.
type Agent struct {
	cfg       config.Config
	kube      kubernetes.Interface
	clock     clock.WithTicker
	hier      cgroups.Hierarchy
	discovery *discovery.Discovery
	runner    *scrape.Runner
	exporter  *promsink.Exporter
	pusher    *odin.Pusher
	rdt       *rdt.Manager
	recorder  record.EventRecorder
	stopRec   func()
	listener  net.Listener
}

// New validates cfg and prepares the agent. Errors in the Odin settings only disable the push
// (logged), so a bad push URL never takes the node's metrics down.
func New(ctx context.Context, cfg config.Config, kube kubernetes.Interface, clk clock.WithTicker) (*Agent, error) {
	logger := klog.FromContext(ctx)
	agentmetrics.Register()
	var fatal field.ErrorList
	for _, e := range cfg.Validate() {
		if strings.HasPrefix(e.Field, "odin.") {
			logger.Error(e, "Odin push disabled: invalid setting")
			cfg.Odin.URL = ""
			continue
		}
		fatal = append(fatal, e)
	}
	if len(fatal) > 0 {
		return nil, fmt.Errorf("invalid node agent configuration: %w", fatal.ToAggregate())
	}
	hier, err := detectHierarchy(cfg.Cgroup)
	if err != nil {
		return nil, err
	}
	logger.Info("Cgroup hierarchy", "root", hier.Root, "version", hier.Version, "driver", hier.Driver, "parent", hier.Parent)
	if cfg.Datacenter == "" {
		cfg.Datacenter = nodeDatacenter(ctx, kube, cfg.NodeName, cfg.DatacenterLabel)
	}
	a := &Agent{cfg: cfg, kube: kube, clock: clk, hier: hier}
	a.discovery = discovery.New(ctx, kube, cfg.NodeName, hier)
	a.recorder, a.stopRec = NewRecorder(ctx, kube, cfg.NodeName)
	collectors := all.New()
	if cfg.RDT.Enabled {
		a.rdt = rdt.New(cfg.RDT, hier, a.discovery, a.recorder)
		collectors = append(collectors, a.rdt)
	}
	a.exporter = sharedExporter()
	a.runner = &scrape.Runner{
		Env:        &collector.Env{Hierarchy: hier, Reader: &cgroups.Reader{}, ProcRoot: cfg.ProcRoot, SysRoot: cfg.SysRoot},
		Collectors: collectors, Source: a.discovery, Node: cfg.NodeName, Datacenter: cfg.Datacenter,
		Step: cfg.Step, Clock: clk, Consumers: []scrape.Consumer{a.exporter},
	}
	if cfg.Odin.URL != "" {
		p, err := odin.New(cfg.Odin, cfg.Step, clk)
		if err != nil {
			logger.Error(err, "Odin push disabled")
		} else {
			a.pusher = p
			a.runner.Consumers = append(a.runner.Consumers, p)
		}
	} else {
		logger.Info("Odin push not configured; metrics only on /metrics")
	}
	return a, nil
}

var (
	exporterOnce sync.Once
	exporter     *promsink.Exporter
)

// sharedExporter returns the process's one exporter, registered in legacyregistry with every metric
// family an agent can emit (a process has one /metrics registry; agents in tests share it).
func sharedExporter() *promsink.Exporter {
	exporterOnce.Do(func() {
		exporter = promsink.New(append(scrape.Descs(all.New()), rdt.Descs()...))
		legacyregistry.CustomMustRegister(exporter)
	})
	return exporter
}

// detectHierarchy finds the cgroup version and, for "auto", the kubelet's driver.
func detectHierarchy(c config.Cgroup) (cgroups.Hierarchy, error) {
	v, err := cgroups.DetectVersion(c.Root)
	if err != nil {
		return cgroups.Hierarchy{}, err
	}
	if c.Parent == cgroups.ParentAuto {
		// Where this agent's own pod sits tells which kubelet root is this node's, whatever its
		// --cgroup-root (cgroup v1 without a cgroup namespace; on v2 set the flag).
		if c.Parent, err = cgroups.ParentFromSelf("/proc/self/cgroup", v); err != nil {
			return cgroups.Hierarchy{}, fmt.Errorf("--kubelet-cgroup-root=auto: %w", err)
		}
	}
	h := cgroups.Hierarchy{Root: c.Root, Version: v, Driver: cgroups.Driver(c.Driver), Parent: c.Parent}
	if c.Driver == "auto" {
		d, err := cgroups.DetectDriver(c.Root, v, c.Parent)
		if err != nil {
			return cgroups.Hierarchy{}, fmt.Errorf("set --cgroup-driver explicitly or start the kubelet first: %w", err)
		}
		h.Driver = d
	}
	return h, nil
}

// Hierarchy returns the detected cgroup hierarchy.
func (a *Agent) Hierarchy() cgroups.Hierarchy { return a.hier }

// Runner returns the collection loop (tests collect on demand).
func (a *Agent) Runner() *scrape.Runner { return a.runner }

// Pusher returns the Odin pusher, nil when the push is disabled.
func (a *Agent) Pusher() *odin.Pusher { return a.pusher }

// Discovery returns the pod discovery.
func (a *Agent) Discovery() *discovery.Discovery { return a.discovery }

// Handler serves /metrics and /healthz. /healthz fails when no pass finished within three steps
// (counted from the start until the first pass, which comes at the node's first grid point).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", legacyregistry.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, since := Healthy(a.runner.LastPass(), a.runner.Started(), a.clock.Now(), a.cfg.Step); !ok {
			http.Error(w, fmt.Sprintf("no collection pass since %s", since.Format(time.RFC3339)), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}

// Healthy reports whether a collection pass finished within three steps before now, counting from
// the start until the first pass; since is the time it counts from (zero: not started).
func Healthy(lastPass, started, now time.Time, step time.Duration) (ok bool, since time.Time) {
	since = lastPass
	if since.IsZero() {
		since = started
	}
	return !since.IsZero() && now.Sub(since) <= 3*step, since
}

// Listen binds the HTTP address (separate from Run so callers learn the port of ":0").
func (a *Agent) Listen() (net.Addr, error) {
	l, err := net.Listen("tcp", a.cfg.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for /metrics: %w", a.cfg.ListenAddress, err)
	}
	a.listener = l
	return l.Addr(), nil
}

// Run starts everything and blocks until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if a.listener == nil {
		if _, err := a.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Metrics server stopped")
		}
	}()
	defer srv.Close()
	defer a.stopRec()
	nodecheck.Run(ctx, a.cfg.NodeCheck.RuntimeRoot, a.cfg.NodeName, a.recorder)
	if err := a.discovery.Start(ctx); err != nil {
		return err
	}
	if a.rdt != nil {
		if err := a.rdt.Start(ctx); err != nil {
			return err
		}
		go a.rdt.Run(ctx)
	}
	if a.pusher != nil {
		go a.pusher.Run(ctx)
	}
	logger.Info("Node agent running", "step", a.cfg.Step, "address", a.listener.Addr().String())
	a.runner.Run(ctx)
	return nil
}
