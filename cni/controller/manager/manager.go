// Package manager runs the IP controller: the pool status, release-policy, GC and location
// slice controllers on shared informers, under leader election (a coordination.k8s.io Lease),
// with /healthz and /metrics. cni/cmd/ip-controller is a thin main around Run; tests run Run
// in-process and stop and restart it at will.
package manager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/legacyregistry"
	// The work queues and the API client report their metrics (workqueue_*, rest_client_*).
	_ "k8s.io/component-base/metrics/prometheus/restclient"
	_ "k8s.io/component-base/metrics/prometheus/workqueue"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/controller/gc"
	"github.com/ecloud-io/ecloud/cni/controller/locationslices"
	"github.com/ecloud-io/ecloud/cni/controller/poolstatus"
	"github.com/ecloud-io/ecloud/cni/controller/release"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// Component is the event source and user-agent name.
const Component = "ecloud-ip-controller"

// eventScheme knows the built-in types and IPPool/IPClaim, so Events can point at both.
var eventScheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(eventScheme))
	utilruntime.Must(v1alpha1.AddToScheme(eventScheme))
}

// Run runs the IP controller against the apiserver of cfg until ctx ends (then it returns nil) or
// leadership is lost (an error: the process should exit and restart).
func Run(ctx context.Context, cfg *rest.Config, o *Options) error {
	if errs := o.Validate(); len(errs) > 0 {
		return fmt.Errorf("ip-controller options: %w", errs.ToAggregate())
	}
	logger := klog.FromContext(ctx).WithName("ip-controller")
	ctx = klog.NewContext(ctx, logger)
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = Component
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ec, err := client.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ipam.RegisterMetrics()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(eventScheme, corev1.EventSource{Component: Component})

	watchdog := leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
	var wg sync.WaitGroup
	if o.BindAddress != "" {
		if err := serve(ctx, &wg, o.BindAddress, watchdog); err != nil {
			return err
		}
	}
	defer wg.Wait()

	if !o.LeaderElect {
		return runControllers(ctx, kube, ec, recorder, o)
	}
	id := o.Identity
	if id == "" {
		host, _ := os.Hostname()
		id = host + "_" + string(uuid.NewUUID())
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.LeaseNamespace, Name: o.LeaseName},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder},
	}
	// OnStartedLeading runs in a goroutine of its own; gate it so that Run never returns while the
	// controllers still run (and never starts them after Run returned).
	var (
		mu      sync.Mutex
		closed  bool
		leading sync.WaitGroup
		runErr  error
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: Component, ReleaseOnCancel: true, WatchDog: watchdog,
		LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				if closed {
					mu.Unlock()
					return
				}
				leading.Add(1)
				mu.Unlock()
				defer leading.Done()
				logger.Info("Started leading", "identity", id)
				runErr = runControllers(ctx, kube, ec, recorder, o)
			},
			OnStoppedLeading: func() { logger.Info("Stopped leading", "identity", id) },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(ctx)
	mu.Lock()
	closed = true
	mu.Unlock()
	leading.Wait()
	if ctx.Err() != nil {
		return runErr
	}
	return errors.Join(errors.New("leader election lost"), runErr)
}

// runControllers runs the controllers on shared informers until ctx ends.
func runControllers(ctx context.Context, kube kubernetes.Interface, ec *client.Clientset, recorder record.EventRecorder, o *Options) error {
	factory := informers.NewSharedInformerFactory(kube, 0)
	pools := client.NewIPPoolInformer(ec, 0)
	claims := client.NewIPClaimInformer(ec, 0, ipam.ClaimIndexers())
	pods, sets, nodes := factory.Core().V1().Pods(), factory.Apps().V1().StatefulSets(), factory.Core().V1().Nodes()

	status, err := poolstatus.New(ec, pools, claims, recorder)
	if err != nil {
		return err
	}
	rel, err := release.New(kube, ec.IPClaims(), claims, pods, sets, recorder, o.ReservationWindow)
	if err != nil {
		return err
	}
	var slices cache.SharedIndexInformer
	var locs *locationslices.Controller
	if o.LocationSlices {
		slices = client.NewIPLocationSliceInformer(ec, 0)
		if locs, err = locationslices.New(ec, claims, pools, nodes.Informer(), slices, locationslices.Config{BatchDelay: o.LocationBatchDelay}); err != nil {
			return err
		}
	}
	collector := gc.New(gc.Config{Interval: o.GCInterval, Grace: o.GCGrace, ReservationWindow: o.ReservationWindow},
		kube, ec.IPClaims(), claims, pods, nodes, recorder)

	var wg sync.WaitGroup
	start := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	start(func() { pools.RunWithContext(ctx) })
	start(func() { claims.RunWithContext(ctx) })
	if locs != nil {
		start(func() { slices.RunWithContext(ctx) })
	}
	factory.Start(ctx.Done())
	start(func() { status.Run(ctx, o.Workers) })
	start(func() { rel.Run(ctx, o.Workers) })
	if locs != nil {
		start(func() { locs.Run(ctx, o.LocationWorkers) })
	}
	start(func() { collector.Run(ctx) })
	<-ctx.Done()
	wg.Wait()
	factory.Shutdown()
	return nil
}

// serve runs /healthz (with the leader-election watchdog) and /metrics on addr until ctx ends.
func serve(ctx context.Context, wg *sync.WaitGroup, addr string, watchdog *leaderelection.HealthzAdaptor) error {
	mux := http.NewServeMux()
	healthz.InstallHandler(mux, healthz.PingHealthz, watchdog)
	mux.Handle("/metrics", legacyregistry.Handler())
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for /healthz and /metrics: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	klog.FromContext(ctx).Info("Serving /healthz and /metrics", "address", l.Addr().String())
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(l) }()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}
