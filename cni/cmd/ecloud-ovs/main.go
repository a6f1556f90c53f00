// Command ecloud-ovs runs a node's Open vSwitch in the netd DaemonSet (container "ovs"):
// ovsdb-server with its database on the host and ovs-vswitchd, in the foreground. It loads the
// openvswitch kernel module when the node has it, restarts ovs-vswitchd when it comes up without
// upcall handler threads, and serves /metrics and /healthz. On a node labelled
// network.ecloud.io/ovs=host (it runs its own Open vSwitch) it starts nothing and waits.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/ovsnode"
)

func main() {
	if err := run(); err != nil {
		klog.ErrorS(err, "ecloud-ovs failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run() error {
	var cfg ovsnode.Config
	var nodeName, metricsAddr string
	var checkLabel bool
	fs := pflag.CommandLine
	fs.StringVar(&nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's Node name (default $NODE_NAME)")
	fs.BoolVar(&checkLabel, "check-node-label", true, "start nothing on a node labelled "+ovsnode.HostOVSLabel+"=host (needs in-cluster access to get the Node)")
	fs.StringVar(&cfg.DBFile, "db-file", "/var/lib/ecloud/ovs/conf.db", "OVSDB database (on a hostPath: bridges and ports survive restarts)")
	fs.StringVar(&cfg.Schema, "schema", "/usr/share/openvswitch/vswitch.ovsschema", "vswitch schema to create or convert the database with")
	fs.StringVar(&cfg.RunDir, "run-dir", "/run/openvswitch", "sockets and pid files (netd's --ovs-rundir)")
	fs.StringVar(&cfg.Modprobe, "modprobe", "/usr/sbin/modprobe", "modprobe binary to load the openvswitch module with (\"\" = do not load)")
	fs.StringVar(&cfg.ModuleDir, "module-dir", "/sys/module", "where the kernel lists loaded modules")
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":9463", "address for /metrics and /healthz (\"0\" = off)")
	klogFlags := goflagSet()
	fs.AddGoFlagSet(klogFlags)
	pflag.Parse()

	s, err := ovsnode.New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ovsnode.RegisterMetrics()
	if metricsAddr != "0" && metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", legacyregistry.Handler())
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		srv := &http.Server{Addr: metricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				klog.ErrorS(err, "metrics server failed", "address", metricsAddr)
			}
		}()
		defer srv.Close()
	}
	if checkLabel {
		host, err := hostRunsOVS(ctx, nodeName)
		if err != nil {
			return err
		}
		if host {
			klog.InfoS("This node runs its own Open vSwitch: starting none", "node", nodeName, "label", ovsnode.HostOVSLabel+"=host")
			<-ctx.Done()
			return nil
		}
	}
	return s.Run(ctx)
}

// hostRunsOVS reports whether the node is labelled as running its own Open vSwitch.
func hostRunsOVS(ctx context.Context, node string) (bool, error) {
	if node == "" {
		return false, fmt.Errorf("--node-name (or NODE_NAME) is required with --check-node-label")
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return false, fmt.Errorf("in-cluster config (or --check-node-label=false): %w", err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return false, err
	}
	var n interface{ GetLabels() map[string]string }
	for {
		got, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil {
			n = got
			break
		}
		klog.ErrorS(err, "Reading the node's labels failed; retrying", "node", node)
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	return n.GetLabels()[ovsnode.HostOVSLabel] == "host", nil
}
