package commands

import (
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
)

func newWhy(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "why <pod>",
		Short: "Why a pod does not run: the DualDatacenter/IPPool refusals of a Pending pod with the fix, the CNI error of a ContainerCreating pod",
		Args:  exactArgs(1, "one pod name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := o.clients()
			if err != nil {
				return err
			}
			pod, err := c.kube.CoreV1().Pods(c.ns).Get(ctx, args[0], metav1.GetOptions{})
			if err != nil {
				return wrap(err, "getting pod %s/%s", c.ns, args[0])
			}
			sel := fields.Set{"involvedObject.kind": "Pod", "involvedObject.name": pod.Name, "involvedObject.uid": string(pod.UID)}.AsSelector().String()
			events, err := c.kube.CoreV1().Events(c.ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
			if err != nil {
				return wrap(err, "listing the events of pod %s/%s", c.ns, pod.Name)
			}
			return o.write(report.BuildWhy(pod, events.Items))
		},
	}
}
