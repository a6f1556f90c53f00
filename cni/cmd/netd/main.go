// Command netd is the ecloud node network daemon (DaemonSet, hostNetwork, privileged): it
// serves the ecloud-cni plugin's socket, installs the plugin and its conflist, keeps br-int (on
// the kernel or the userspace OVS datapath), the gateway port and the tunnels to the other
// nodes, and programs the OpenFlow rules that say where every pod IP lives.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/netd"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

func main() {
	if err := run(); err != nil {
		klog.ErrorS(err, "netd failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run() error {
	var cfg netd.Config
	var profiling bool
	var kubeconfig, metricsAddr, tunnel, datapath string
	var qps float32
	var burst int
	fs := pflag.CommandLine
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's Node name (default $NODE_NAME)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster)")
	// client-go's own default (5/s, burst 10) makes a node starting many pods at once queue every
	// CNI ADD behind the client's rate limiter: an ADD costs one or two apiserver calls.
	fs.Float32Var(&qps, "kube-api-qps", 50, "requests per second to the apiserver (sustained)")
	fs.IntVar(&burst, "kube-api-burst", 100, "requests to the apiserver allowed in a burst above --kube-api-qps")
	fs.StringVar(&cfg.Socket, "socket", "/run/ecloud/netd.sock", "unix socket the CNI plugin talks to (root only)")
	fs.StringVar(&cfg.Bridge, "bridge", "br-int", "OVS integration bridge")
	fs.StringVar(&datapath, "datapath", "system", "OVS datapath of the bridge: system (the openvswitch kernel module; tunnels through the host's IP stack) or netdev (userspace; the host's uplink must sit on an OVS bridge br-phy that owns the tunnel endpoint IP). A node's label "+netd.DatapathLabel+" overrides it")
	fs.StringVar(&cfg.GatewayPort, "gateway-port", "ecloud-gw", "internal port joining pods and the host stack")
	fs.StringVar(&tunnel, "tunnel-type", "vxlan", "tunnel encapsulation between nodes: vxlan or geneve")
	fs.IntVar(&cfg.MTU, "mtu", 1400, "MTU of pod interfaces (leave room for the tunnel header)")
	fs.StringVar(&cfg.OVS.DB, "ovsdb", "unix:/var/run/openvswitch/db.sock", "ovsdb-server socket")
	fs.StringVar(&cfg.OVS.RunDir, "ovs-rundir", "/var/run/openvswitch", "ovs-vswitchd run dir (holds <bridge>.mgmt)")
	fs.StringVar(&cfg.CNIBinDir, "cni-bin-dir", "/opt/cni/bin", "where to install the plugin binary (\"\" = do not install)")
	fs.StringVar(&cfg.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "where to write "+netd.ConfListName+" (\"\" = do not write)")
	fs.StringVar(&cfg.PluginBinary, "plugin-binary", "/opt/ecloud/bin/ecloud-cni", "the ecloud-cni binary to install")
	fs.StringVar(&cfg.NetworkName, "network-name", "ecloud", "network name in the conflist")
	fs.StringVar(&cfg.CNIVersion, "cni-version", "1.1.0", "cniVersion of the conflist: 1.1.0, or 1.0.0 for runtimes that stop at CNI 1.0 (containerd 1.6/1.7)")
	fs.DurationVar(&cfg.ResyncPeriod, "resync-period", 30*time.Second, "how often to reconcile the datapath without a trigger")
	fs.DurationVar(&cfg.FlowReconcilePeriod, "flow-reconcile-period", netd.DefaultFlowReconcilePeriod, "how often a reconcile replaces the bridge's whole flow table (dump, diff, replace; repairs flows changed behind netd's back); other syncs send only what changed. At least --resync-period")
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":9462", "address for /metrics, /healthz and /readyz (\"0\" = off)")
	fs.BoolVar(&profiling, "profiling", false, "serve Go's profiles (/debug/pprof/) on --metrics-bind-address")
	fs.StringVar(&cfg.Locations.RelayService, "location-relay-service", "", "namespace/name of the location relays' Service: follow IP locations from its ready endpoints (port \""+netd.RelayPortName+"\") instead of watching every IPLocationSlice through the apiserver")
	fs.StringSliceVar(&cfg.Locations.Relays, "location-relays", nil, "location relays' URLs (http://host:port), instead of --location-relay-service")
	fs.StringVar(&cfg.Locations.TokenFile, "location-relay-token-file", "", "token shown to the location relays (a projected ServiceAccount token for their audience)")
	fs.StringVar(&cfg.Locations.CAFile, "location-relay-ca-file", "", "reach the location relays over HTTPS, verified with this CA")
	klogFlags := goflagSet()
	fs.AddGoFlagSet(klogFlags)
	pflag.Parse()
	cfg.TunnelType = ovs.TunnelType(tunnel)
	cfg.Datapath = ovs.DatapathType(datapath)
	if cfg.CNIBinDir == "" {
		cfg.PluginBinary = ""
	}

	if qps <= 0 || burst < 1 {
		return fmt.Errorf("--kube-api-qps must be positive and --kube-api-burst at least 1 (got %v, %d)", qps, burst)
	}
	rc, err := client.RESTConfig(kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = qps, burst
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ec, err := client.NewForConfig(rc)
	if err != nil {
		return err
	}
	d, err := netd.New(cfg, netd.Deps{Kube: kube, Ecloud: ec})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	netd.RegisterMetrics()
	netd.ReportReady(d)
	if metricsAddr != "0" && metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", legacyregistry.Handler())
		// Liveness: the process serves. Readiness: informers synced, bridge and socket up.
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !d.Ready() {
				http.Error(w, "not ready: "+d.NotReadyReason(), http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		mux.Handle(nodeapi.PathTrace, d.TraceHandler()) // read-only OpenFlow trace for kubectl ecloud trace
		if profiling {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		srv := &http.Server{Addr: metricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				klog.ErrorS(err, "metrics server failed", "address", metricsAddr)
			}
		}()
		defer srv.Close()
	}
	return d.Run(ctx)
}
