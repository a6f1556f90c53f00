// Command kubectl-ecloud is the kubectl plugin of ecloud (`kubectl ecloud ...` once it is on the
// PATH): IP pools, who holds an IP, a workload's spread over the datacenters, why a pod does not
// start, and OpenFlow traces from a pod. See docs/kubectl-ecloud.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/ecloud-io/ecloud/kubectl-ecloud/commands"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := commands.NewRoot(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	err := root.ExecuteContext(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	os.Exit(commands.ExitCode(err))
}
