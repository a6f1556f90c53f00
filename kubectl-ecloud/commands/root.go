package commands

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
)

// Exit codes of kubectl-ecloud.
const (
	// ExitOK: the answer was printed.
	ExitOK = 0
	// ExitFailed: the question could not be answered (API error, object not found, netd
	// unreachable).
	ExitFailed = 1
	// ExitUsage: bad command line (unknown flag, wrong arguments, bad -o).
	ExitUsage = 2
)

// UsageError is a bad command line; main exits with ExitUsage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error { return &UsageError{fmt.Errorf(format, args...)} }

// ExitCode maps an error returned by the root command to the process exit code.
func ExitCode(err error) int {
	var u *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	}
	return ExitFailed
}

// Options are the flags every subcommand shares.
type Options struct {
	Config *genericclioptions.ConfigFlags
	Output string
	Topo   TopologyFlags
	genericiooptions.IOStreams
}

// clients are the API clients of one run.
type clients struct {
	kube   kubernetes.Interface
	ecloud *client.Clientset
	ns     string
}

func (o *Options) clients() (*clients, error) {
	rc, err := o.Config.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ec, err := client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("ecloud client: %w", err)
	}
	ns, _, err := o.Config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	return &clients{kube: kube, ecloud: ec, ns: ns}, nil
}

func (o *Options) write(r report.Renderer) error {
	f, err := report.ParseFormat(o.Output)
	if err != nil {
		return &UsageError{err}
	}
	return report.Write(o.Out, f, r)
}

// NewRoot is the kubectl-ecloud command.
func NewRoot(streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Config: genericclioptions.NewConfigFlags(true), IOStreams: streams}
	root := &cobra.Command{
		Use:   "kubectl-ecloud",
		Short: "Inspect ecloud: IP pools, who holds an IP, workload spread, why a pod does not start, pod datapath traces",
		Long: `kubectl ecloud answers the questions an operator of ecloud asks most:
  pools                     per IP pool: used, reserved and free addresses, per datacenter; low-IP warnings
  ip <IP>                   who holds an IP, its mode and release policy, node, since when, and what would free it
  spread <kind>/<name>      a workload's pods per datacenter and revision, what the two-datacenter rule allows next,
                            and the deletion costs that order a scale-down
  why <pod>                 why a pod is Pending (DualDatacenter/IPPool refusals, with the fix) or stuck in
                            ContainerCreating (the CNI error)
  trace <pod> <IP>          an OpenFlow trace, by the pod's node's netd, of a packet from the pod to an IP

Exit codes: 0 answered, 1 could not answer (API error, not found), 2 bad command line.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q", strings.Join(args, " "))
			}
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{err} })
	o.Config.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&o.Output, "output", "o", "", "output format: wide, json or yaml (default: a table)")
	o.Topo.AddFlags(root.PersistentFlags())
	root.AddCommand(newPools(o), newIP(o), newSpread(o), newWhy(o), newTrace(o))
	return root
}

// exactArgs is cobra.ExactArgs returning a UsageError.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d argument(s)", names, len(args))
		}
		return nil
	}
}
