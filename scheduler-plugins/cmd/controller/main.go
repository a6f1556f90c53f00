// Command controller runs ecloud's scheduler-side controller (deletion cost and post-outage
// rebalancing for the DualDatacenter rule) with leader election, /healthz and /metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	configv1 "github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/v1"
	"github.com/ecloud-io/ecloud/scheduler-plugins/controller/deletioncost"
)

type options struct {
	kubeconfig     string
	bindAddress    string
	workers        int
	leaderElect    bool
	leaseNamespace string
	leaseName      string
	topologyKey    string
	datacenters    []string
	maxSkew        int32
	outagePolicy   string
	// schedulerConfig, when set, is the KubeSchedulerConfiguration the args come from.
	schedulerConfig string
	schedulerName   string
}

func main() {
	o := options{}
	fs := pflag.NewFlagSet("controller", pflag.ExitOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (in-cluster config when empty)")
	fs.StringVar(&o.bindAddress, "bind-address", ":10262", "address of the /healthz and /metrics server (empty: none)")
	fs.IntVar(&o.workers, "workers", 2, "namespaces reconciled in parallel")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "run only while holding the lease")
	fs.StringVar(&o.leaseNamespace, "leader-elect-resource-namespace", "kube-system", "namespace of the lease")
	fs.StringVar(&o.leaseName, "leader-elect-resource-name", "ecloud-scheduler-controller", "name of the lease")
	fs.StringVar(&o.topologyKey, "topology-key", configv1.DefaultTopologyKey, "node label naming a node's datacenter (as the DualDatacenter args)")
	fs.StringSliceVar(&o.datacenters, "datacenters", nil, "datacenters every workload is spread over, at least two (required, as the DualDatacenter args)")
	fs.Int32Var(&o.maxSkew, "max-skew", configv1.DefaultMaxSkew, "largest allowed pod-count difference between datacenters")
	fs.StringVar(&o.outagePolicy, "outage-policy", configv1.DefaultOutagePolicy, "the scheduler's outage policy (Hold or Degrade)")
	fs.StringVar(&o.schedulerConfig, "scheduler-config", "", "ecloud-scheduler's KubeSchedulerConfiguration file: take the DualDatacenter args of profile --scheduler-name from it (instead of --topology-key, --datacenters, --max-skew, --outage-policy)")
	fs.StringVar(&o.schedulerName, "scheduler-name", "ecloud-scheduler", "the scheduler whose pods the controller looks after (spec.schedulerName), and the profile of --scheduler-config whose DualDatacenter args apply")
	klogFlags := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	_ = fs.Parse(os.Args[1:])
	if o.schedulerConfig != "" {
		for _, f := range []string{"topology-key", "datacenters", "max-skew", "outage-policy"} {
			if fs.Changed(f) {
				fmt.Fprintf(os.Stderr, "--%s and --scheduler-config exclude each other: the args come from the scheduler configuration\n", f)
				os.Exit(2)
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.FromContext(ctx).Error(err, "controller failed")
		os.Exit(1)
	}
}

// args are the DualDatacenter args: from the scheduler's configuration file, else the flags.
func (o options) args() (config.DualDatacenterArgs, error) {
	if o.schedulerConfig != "" {
		return argsFromSchedulerConfig(o.schedulerConfig, o.schedulerName)
	}
	return config.DualDatacenterArgs{TopologyKey: o.topologyKey, Datacenters: o.datacenters, MaxSkew: o.maxSkew, OutagePolicy: config.OutagePolicy(o.outagePolicy)}, nil
}

func run(ctx context.Context, o options) error {
	logger := klog.FromContext(ctx)
	args, err := o.args()
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading the client config: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the client: %w", err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := deletioncost.New(client, factory, args, o.schedulerName)
	if err != nil {
		return err
	}
	if o.bindAddress != "" {
		go serve(ctx, o.bindAddress)
	}
	runController := func(ctx context.Context) {
		factory.Start(ctx.Done())
		if err := ctrl.Run(ctx, o.workers); err != nil {
			logger.Error(err, "deletion-cost controller stopped")
		}
	}
	if !o.leaderElect {
		runController(ctx)
		return nil
	}
	host, _ := os.Hostname()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.leaseNamespace, o.leaseName,
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())})
	if err != nil {
		return fmt.Errorf("creating the lease lock %s/%s: %w", o.leaseNamespace, o.leaseName, err)
	}
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true, Name: deletioncost.Name,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: runController,
			OnStoppedLeading: func() { logger.Info("Lost the lease, stopping") },
		},
	})
	return nil
}

// serve exposes /healthz and the component-base legacy registry on /metrics.
func serve(ctx context.Context, addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("/metrics", legacyregistry.Handler())
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		klog.FromContext(ctx).Error(err, "health/metrics server failed", "address", addr)
	}
}
