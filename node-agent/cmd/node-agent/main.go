// Command node-agent is the ecloud DaemonSet that exports per-container cgroup metrics to Prometheus
// and Odin and applies Intel RDT classes to pods.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agent"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
)

func main() {
	cfg := config.Default()
	var kubeconfig string
	fs := pflag.NewFlagSet("node-agent", pflag.ExitOnError)
	addFlags(fs, &cfg, &kubeconfig)
	klogFlags := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	_ = fs.Parse(os.Args[1:])
	if cfg.NodeName == "" {
		cfg.NodeName = os.Getenv("NODE_NAME")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, cfg, kubeconfig); err != nil {
		klog.FromContext(ctx).Error(err, "Node agent failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.Config, kubeconfig string) error {
	var restCfg *rest.Config
	var err error
	if kubeconfig != "" {
		restCfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		restCfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return fmt.Errorf("load kubeconfig %q: %w", kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("create kubernetes client: %w", err)
	}
	a, err := agent.New(ctx, cfg, kube, clock.RealClock{})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func addFlags(fs *pflag.FlagSet, c *config.Config, kubeconfig *string) {
	fs.StringVar(kubeconfig, "kubeconfig", "", "kubeconfig file (empty: in-cluster)")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "this node's name (default $NODE_NAME)")
	fs.StringVar(&c.Datacenter, "datacenter", c.Datacenter, "datacenter label value (empty: read the node's --datacenter-label)")
	fs.StringVar(&c.DatacenterLabel, "datacenter-label", c.DatacenterLabel, "node label holding the datacenter")
	fs.DurationVar(&c.Step, "step", c.Step, "collection interval")
	fs.StringVar(&c.ListenAddress, "listen-address", c.ListenAddress, "address of /metrics and /healthz")
	fs.StringVar(&c.ProcRoot, "proc-root", c.ProcRoot, "the host's /proc")
	fs.StringVar(&c.SysRoot, "sys-root", c.SysRoot, "the host's /sys")
	fs.StringVar(&c.Cgroup.Root, "cgroup-root", c.Cgroup.Root, "cgroup mount point")
	fs.StringVar(&c.Cgroup.Parent, "kubelet-cgroup-root", c.Cgroup.Parent, "the kubelet's --cgroup-root; \"auto\": read it from the agent's own pod cgroup (cgroup v1)")
	fs.StringVar(&c.Cgroup.Driver, "cgroup-driver", c.Cgroup.Driver, "auto, cgroupfs or systemd")
	fs.StringVar(&c.Odin.URL, "odin-url", c.Odin.URL, "Open-Falcon push URL (empty disables the push)")
	fs.StringVar(&c.Odin.Username, "odin-username", c.Odin.Username, "basic auth user")
	fs.StringVar(&c.Odin.PasswordFile, "odin-password-file", c.Odin.PasswordFile, "file holding the basic auth password")
	fs.BoolVar(&c.Odin.Gzip, "odin-gzip", c.Odin.Gzip, "gzip the push bodies (only for receivers that decode Content-Encoding: gzip; falcon transfer does not). A 400 or 415 answer to a gzip body resends the batch as plain JSON and turns gzip off")
	fs.IntVar(&c.Odin.BatchSize, "odin-batch-size", c.Odin.BatchSize, "items per push")
	fs.DurationVar(&c.Odin.Timeout, "odin-timeout", c.Odin.Timeout, "timeout of one push")
	fs.StringVar(&c.Odin.SpoolDir, "odin-spool-dir", c.Odin.SpoolDir, "on-disk spool (keep it on a hostPath to survive restarts)")
	fs.DurationVar(&c.Odin.SpoolMaxAge, "odin-spool-max-age", c.Odin.SpoolMaxAge, "drop spooled data older than this")
	fs.Int64Var(&c.Odin.SpoolMaxSize, "odin-spool-max-bytes", c.Odin.SpoolMaxSize, "drop the oldest spooled data beyond this size")
	fs.DurationVar(&c.Odin.MinBackoff, "odin-min-backoff", c.Odin.MinBackoff, "first retry delay")
	fs.DurationVar(&c.Odin.MaxBackoff, "odin-max-backoff", c.Odin.MaxBackoff, "longest retry delay")
	fs.BoolVar(&c.RDT.Enabled, "rdt", c.RDT.Enabled, "apply Intel RDT classes to pods")
	fs.StringVar(&c.RDT.ConfigFile, "rdt-config", c.RDT.ConfigFile, "goresctrl RDT configuration file (reloaded on change)")
	fs.StringVar(&c.RDT.GroupPrefix, "rdt-group-prefix", c.RDT.GroupPrefix, "prefix of our resctrl groups")
	fs.DurationVar(&c.RDT.ReconcileInterval, "rdt-reconcile-interval", c.RDT.ReconcileInterval, "how often threads are moved into their class")
	fs.StringVar(&c.NodeCheck.RuntimeRoot, "runtime-root", c.NodeCheck.RuntimeRoot, "container runtime state directory checked for overlayfs on XFS without ftype=1")
}
