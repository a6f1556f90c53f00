// Package rdt puts pods that ask for an RDT class (annotations rdt.resources.beta.kubernetes.io/pod
// and rdt.resources.beta.kubernetes.io/container.<name>) into that goresctrl class, thread by
// thread, keeps reconciling new threads, and exports per-pod LLC occupancy and memory bandwidth
// from monitoring groups.
package rdt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	grdt "github.com/intel/goresctrl/pkg/rdt"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
	"github.com/ecloud-io/ecloud/node-agent/pkg/podcgroup"
)

// Name of the manager (and of its collector).
const Name = "rdt"

// Event reasons.
const (
	ReasonUnknownClass = "RDTClassUnknown"
	ReasonAssignFailed = "RDTAssignFailed"
)

// PodSource lists this node's pods.
type PodSource interface {
	Pods() []*v1.Pod
}

// monKey identifies a pod's monitoring group in one class.
type monKey struct {
	uid, class string
}

// Manager applies RDT classes to pods.
type Manager struct {
	cfg      config.RDT
	hier     cgroups.Hierarchy
	pods     PodSource
	resolver *podcgroup.Resolver
	recorder record.EventRecorder
	reader   cgroups.Reader

	available bool
	// lastConfig is the content of the config file last tried (applied or rejected).
	lastConfig []byte
	// warned dedups Warning Events per pod and message.
	warned map[string]bool

	mu        sync.Mutex
	monGroups map[monKey]grdt.MonGroup
}

var _ collector.Collector = &Manager{}

// New returns a manager; Start detects resctrl.
func New(cfg config.RDT, hier cgroups.Hierarchy, pods PodSource, recorder record.EventRecorder) *Manager {
	return &Manager{cfg: cfg, hier: hier, pods: pods, resolver: podcgroup.NewResolver(hier), recorder: recorder,
		warned: map[string]bool{}, monGroups: map[monKey]grdt.MonGroup{}}
}

// Start initializes goresctrl with our group prefix and applies the config file. Without resctrl it
// logs why, sets node_agent_rdt_available to 0 and returns nil: everything else keeps working.
func (m *Manager) Start(ctx context.Context) error {
	logger := klog.LoggerWithName(klog.FromContext(ctx), "rdt")
	grdt.SetLogger(slog.New(logr.ToSlogHandler(logger)))
	if err := grdt.Initialize(m.cfg.GroupPrefix); err != nil {
		agentmetrics.RDTAvailable.Set(0)
		logger.Info("RDT disabled: no usable resctrl filesystem on this host; cache and memory bandwidth isolation are off, metrics collection continues", "err", err.Error())
		return nil
	}
	m.available = true
	agentmetrics.RDTAvailable.Set(1)
	if err := m.reloadConfig(ctx); err != nil {
		logger.Error(err, "RDT configuration rejected; classes stay as they are", "file", m.cfg.ConfigFile)
	}
	return nil
}

// Available reports whether resctrl was found.
func (m *Manager) Available() bool { return m.available }

// Run reloads the config when the file changed and reconciles threads every interval.
func (m *Manager) Run(ctx context.Context) {
	if !m.available {
		return
	}
	logger := klog.LoggerWithName(klog.FromContext(ctx), "rdt")
	ticker := time.NewTicker(m.cfg.ReconcileInterval)
	defer ticker.Stop()
	for {
		if err := m.reloadConfig(ctx); err != nil {
			logger.Error(err, "RDT configuration rejected; the previous one stays in effect", "file", m.cfg.ConfigFile)
		}
		m.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// reloadConfig applies the config file when its content differs from what was last tried.
func (m *Manager) reloadConfig(ctx context.Context) error {
	data, err := os.ReadFile(m.cfg.ConfigFile)
	if err != nil {
		if m.lastConfig == nil {
			agentmetrics.RDTErrors.WithLabelValues("config").Inc()
			m.lastConfig = []byte{}
			return fmt.Errorf("read RDT config %s: %w", m.cfg.ConfigFile, err)
		}
		return nil // keep the applied config while the file is being replaced
	}
	if m.lastConfig != nil && bytes.Equal(data, m.lastConfig) {
		return nil
	}
	m.lastConfig = data
	return m.ApplyConfig(ctx, data)
}

// ApplyConfig validates and applies a goresctrl configuration; an invalid one is rejected with
// goresctrl's message and the previous configuration stays.
func (m *Manager) ApplyConfig(ctx context.Context, data []byte) error {
	if err := grdt.SetConfigFromData(data, false); err != nil {
		agentmetrics.RDTErrors.WithLabelValues("config").Inc()
		return fmt.Errorf("apply RDT config %s: %w", m.cfg.ConfigFile, err)
	}
	agentmetrics.RDTConfigApplied.Inc()
	var names []string
	for _, c := range grdt.GetClasses() {
		names = append(names, c.Name())
	}
	klog.FromContext(ctx).Info("RDT configuration applied", "file", m.cfg.ConfigFile, "classes", names)
	return nil
}

// Reconcile moves every thread of every opted-in container into its class and its pod's monitoring
// group, and removes monitoring groups of pods that are gone.
func (m *Manager) Reconcile(ctx context.Context) {
	logger := klog.FromContext(ctx)
	classThreads := map[string][]string{}
	monThreads := map[monKey][]string{}
	monPods := map[monKey]*v1.Pod{}
	for _, pod := range m.pods.Pods() {
		if pod.Status.Phase != v1.PodRunning {
			continue
		}
		m.podThreads(ctx, pod, func(class string, tids []string) {
			classThreads[class] = append(classThreads[class], tids...)
			k := monKey{string(pod.UID), class}
			monThreads[k] = append(monThreads[k], tids...)
			monPods[k] = pod
		})
	}
	for class, tids := range classThreads {
		g, ok := grdt.GetClass(class)
		if !ok {
			continue
		}
		if err := assign(g, tids); err != nil {
			agentmetrics.RDTErrors.WithLabelValues("assign").Inc()
			logger.Error(err, "Moving threads into RDT class failed", "class", class, "threads", len(tids))
		}
	}
	if grdt.MonSupported() {
		m.reconcileMonGroups(ctx, monThreads, monPods)
	}
}

// podThreads reports the threads of each opted-in container of the pod with its class.
func (m *Manager) podThreads(ctx context.Context, pod *v1.Pod, emit func(class string, tids []string)) {
	if !hasRDTAnnotation(pod) {
		return
	}
	podDir, err := m.resolver.PodDir(pod)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("RDT: pod cgroup not found yet", "pod", klog.KObj(pod), "err", err)
		return
	}
	dirs, _ := m.resolver.ContainerDirs(pod, podDir)
	names := make([]string, 0, len(dirs))
	for name := range dirs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		class, err := grdt.ContainerClassFromAnnotations(name, nil, pod.Annotations)
		if err != nil {
			m.warn(pod, ReasonUnknownClass, fmt.Sprintf("container %s: %v; it keeps the default class", name, err))
			continue
		}
		if class == "" {
			continue
		}
		tids, err := m.threads(dirs[name])
		if err != nil {
			klog.FromContext(ctx).V(2).Info("RDT: listing threads failed", "pod", klog.KObj(pod), "container", name, "err", err)
			continue
		}
		emit(class, tids)
	}
}

func hasRDTAnnotation(pod *v1.Pod) bool {
	for k := range pod.Annotations {
		if k == grdt.RdtPodAnnotation || strings.HasPrefix(k, grdt.RdtPodAnnotationContainerPrefix) {
			return true
		}
	}
	return false
}

// threads lists the thread IDs of a container cgroup (v1 tasks, v2 cgroup.threads).
func (m *Manager) threads(dir string) ([]string, error) {
	file := m.hier.Path("cpu", dir) + "/tasks"
	if m.hier.Version == cgroups.V2 {
		file = m.hier.Path("", dir) + "/cgroup.threads"
	}
	b, err := m.reader.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// assign writes the threads to the group's tasks unless all are there already. It writes the whole
// set in one go: cheap for the kernel (moving a member is a no-op) and exact for test trees.
func assign(g grdt.ResctrlGroup, tids []string) error {
	sort.Strings(tids)
	cur, err := g.GetPids()
	if err != nil {
		return fmt.Errorf("read tasks of RDT group %s: %w", g.Name(), err)
	}
	have := make(map[string]bool, len(cur))
	for _, p := range cur {
		have[p] = true
	}
	for _, t := range tids {
		if !have[t] {
			if err := g.AddPids(tids...); err != nil {
				return fmt.Errorf("write tasks of RDT group %s: %w", g.Name(), err)
			}
			return nil
		}
	}
	return nil
}

func (m *Manager) reconcileMonGroups(ctx context.Context, monThreads map[monKey][]string, monPods map[monKey]*v1.Pod) {
	logger := klog.FromContext(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, tids := range monThreads {
		mg, ok := m.monGroups[k]
		if !ok {
			g, ok := grdt.GetClass(k.class)
			if !ok {
				continue
			}
			pod := monPods[k]
			var err error
			mg, err = g.CreateMonGroup(k.uid, map[string]string{"namespace": pod.Namespace, "pod": pod.Name})
			if err != nil {
				agentmetrics.RDTErrors.WithLabelValues("monitor").Inc()
				logger.Error(err, "Creating RDT monitoring group failed", "pod", klog.KObj(pod), "class", k.class)
				continue
			}
			m.monGroups[k] = mg
		}
		if err := assign(mg, tids); err != nil {
			agentmetrics.RDTErrors.WithLabelValues("monitor").Inc()
			logger.Error(err, "Moving threads into RDT monitoring group failed", "pod", klog.KObj(monPods[k]), "class", k.class)
		}
	}
	for k, mg := range m.monGroups {
		if _, ok := monThreads[k]; ok {
			continue
		}
		if err := mg.Parent().DeleteMonGroup(k.uid); err != nil && !errors.Is(err, os.ErrNotExist) {
			logger.V(2).Info("Removing RDT monitoring group failed", "group", k.uid, "class", k.class, "err", err)
		}
		delete(m.monGroups, k)
	}
}

// warn emits a Warning Event on the pod once per message.
func (m *Manager) warn(pod *v1.Pod, reason, msg string) {
	key := string(pod.UID) + "|" + msg
	if m.warned[key] || m.recorder == nil {
		return
	}
	m.warned[key] = true
	m.recorder.Event(pod, v1.EventTypeWarning, reason, msg)
}
