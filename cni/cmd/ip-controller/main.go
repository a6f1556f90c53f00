// Command ip-controller keeps IPPool status, applies IP release policies and collects leaked
// ephemeral claims (see cni/controller/manager). It is leader-elected; /healthz and /metrics are
// served on --bind-address.
package main

import (
	"context"
	goflag "flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/controller/manager"
)

func main() {
	opts := manager.NewOptions()
	fs := pflag.NewFlagSet("ip-controller", pflag.ExitOnError)
	opts.AddFlags(fs)
	klogFlags := goflag.NewFlagSet("klog", goflag.ExitOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	_ = fs.Parse(os.Args[1:])
	defer klog.Flush()

	cfg, err := client.RESTConfig(opts.Kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := manager.Run(ctx, cfg, opts); err != nil {
		klog.ErrorS(err, "ip-controller stopped")
		klog.Flush()
		os.Exit(1)
	}
}
