package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
	configv1 "github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/v1"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
)

// TopologyFlags say where the datacenters come from: flags, else the DualDatacenter args of
// ecloud-scheduler's ConfigMap, else the values of the default datacenter label on the nodes.
type TopologyFlags struct {
	Datacenters     []string
	TopologyKey     string
	MaxSkew         int32
	SchedulerConfig string // namespace/name of the scheduler's ConfigMap
}

// AddFlags registers the flags.
func (t *TopologyFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&t.Datacenters, "datacenters", nil, "datacenters of the two-datacenter rule (default: from the scheduler's ConfigMap, else the nodes' "+v1alpha1.DefaultDatacenterLabel+" values)")
	fs.StringVar(&t.TopologyKey, "topology-key", "", "node label naming a node's datacenter (default: from the scheduler's ConfigMap, else "+v1alpha1.DefaultDatacenterLabel+")")
	fs.Int32Var(&t.MaxSkew, "max-skew", 0, "maxSkew of the two-datacenter rule (default: from the scheduler's ConfigMap, else 1)")
	fs.StringVar(&t.SchedulerConfig, "scheduler-config", "kube-system/ecloud-scheduler-config", "namespace/name of the ConfigMap holding ecloud-scheduler's config.yaml")
}

// schedulerConfig is the part of a KubeSchedulerConfiguration read here.
type schedulerConfig struct {
	Profiles []struct {
		PluginConfig []struct {
			Name string          `json:"name"`
			Args json.RawMessage `json:"args"`
		} `json:"pluginConfig"`
	} `json:"profiles"`
}

// resolve returns the topology.
func (t *TopologyFlags) resolve(ctx context.Context, c *clients) (report.Topology, error) {
	topo := report.Topology{Key: t.TopologyKey, Datacenters: t.Datacenters, MaxSkew: t.MaxSkew, Source: "flags"}
	if len(topo.Datacenters) == 0 {
		if args, where, err := t.fromConfigMap(ctx, c); err != nil {
			return topo, err
		} else if args != nil {
			topo.Datacenters, topo.Source = args.Datacenters, where
			if topo.Key == "" {
				topo.Key = *args.TopologyKey
			}
			if topo.MaxSkew == 0 {
				topo.MaxSkew = *args.MaxSkew
			}
			topo.OutagePolicy = *args.OutagePolicy
		}
	}
	if topo.Key == "" {
		topo.Key = configv1.DefaultTopologyKey
	}
	if topo.MaxSkew == 0 {
		topo.MaxSkew = configv1.DefaultMaxSkew
	}
	if len(topo.Datacenters) == 0 {
		nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return topo, fmt.Errorf("listing nodes: %w", err)
		}
		for _, n := range nodes.Items {
			if dc := n.Labels[topo.Key]; dc != "" && !slices.Contains(topo.Datacenters, dc) {
				topo.Datacenters = append(topo.Datacenters, dc)
			}
		}
		sort.Strings(topo.Datacenters)
		topo.Source = "node label " + topo.Key
	}
	return topo, nil
}

// fromConfigMap reads the DualDatacenter args from the scheduler's ConfigMap (nil when there is
// none or it has no such args).
func (t *TopologyFlags) fromConfigMap(ctx context.Context, c *clients) (*configv1.DualDatacenterArgs, string, error) {
	ns, name, ok := strings.Cut(t.SchedulerConfig, "/")
	if !ok || ns == "" || name == "" {
		return nil, "", usagef("--scheduler-config %q: want namespace/name", t.SchedulerConfig)
	}
	cm, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading ConfigMap %s: %w", t.SchedulerConfig, err)
	}
	for key, data := range cm.Data {
		var sc schedulerConfig
		if yaml.Unmarshal([]byte(data), &sc) != nil {
			continue
		}
		for _, p := range sc.Profiles {
			for _, pc := range p.PluginConfig {
				if pc.Name != dualdatacenter.Name || len(pc.Args) == 0 {
					continue
				}
				var args configv1.DualDatacenterArgs
				if err := json.Unmarshal(pc.Args, &args); err != nil {
					return nil, "", fmt.Errorf("ConfigMap %s key %s: %s args: %w", t.SchedulerConfig, key, dualdatacenter.Name, err)
				}
				configv1.SetDefaults_DualDatacenterArgs(&args)
				return &args, "ConfigMap " + t.SchedulerConfig, nil
			}
		}
	}
	return nil, "", nil
}
