// Command location-relay follows the pod IPs' locations once (from the IPClaims, or the
// ip-controller's IPLocationSlices) and streams them to the netds of a few hundred nodes (see
// cni/locrelay). It keeps no state of its own: run as many replicas as the
// cluster needs, one per few hundred nodes.
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
	"github.com/ecloud-io/ecloud/cni/locrelay"
)

func main() {
	opts := locrelay.NewOptions()
	fs := pflag.NewFlagSet(locrelay.Name, pflag.ExitOnError)
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
	if err := locrelay.Run(ctx, cfg, opts); err != nil {
		klog.ErrorS(err, "location-relay stopped")
		klog.Flush()
		os.Exit(1)
	}
}
