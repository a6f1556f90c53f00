package commands

import (
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
)

func newPools(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "pools",
		Short: "Per IP pool: total, used, reserved and free addresses, the datacenters it reaches and holds IPs in; low-IP warnings",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := o.clients()
			if err != nil {
				return err
			}
			topo, err := o.Topo.resolve(ctx, c)
			if err != nil {
				return err
			}
			pools, err := c.ecloud.IPPools().List(ctx, metav1.ListOptions{})
			if err != nil {
				return wrap(err, "listing IP pools")
			}
			claims, err := c.ecloud.IPClaims().List(ctx, metav1.ListOptions{})
			if err != nil {
				return wrap(err, "listing IP claims")
			}
			nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return wrap(err, "listing nodes")
			}
			return o.write(report.BuildPools(pools.Items, claims.Items, nodes.Items, topo))
		},
	}
}
