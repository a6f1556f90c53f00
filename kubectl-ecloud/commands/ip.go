package commands

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/controller/manager"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
)

func newIP(o *Options) *cobra.Command {
	window := manager.NewOptions().ReservationWindow
	cmd := &cobra.Command{
		Use:   "ip <IP>",
		Short: "Who holds an IP: pod, mode and release policy, node, since when, and what would free it",
		Args:  exactArgs(1, "one IP address"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ip, err := netip.ParseAddr(args[0])
			if err != nil {
				return usagef("%q is not an IP address", args[0])
			}
			c, err := o.clients()
			if err != nil {
				return err
			}
			obs, err := observeIP(cmd.Context(), c, ip.Unmap())
			if err != nil {
				return err
			}
			obs.ReservationWindow = window
			return o.write(report.BuildIP(obs))
		},
	}
	cmd.Flags().DurationVar(&window, "reservation-window", window, "the IP controller's --reservation-window (a younger Reserved claim is never released)")
	return cmd
}

func observeIP(ctx context.Context, c *clients, ip netip.Addr) (report.IPObservation, error) {
	o := report.IPObservation{IP: ip, Now: time.Now()}
	pools, err := c.ecloud.IPPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return o, wrap(err, "listing IP pools")
	}
	o.Pools = pools.Items
	claim, err := c.ecloud.IPClaims().Get(ctx, v1alpha1.ClaimName(ip.String()), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return o, nil
	}
	if err != nil {
		return o, wrap(err, "getting the IP claim of %s", ip)
	}
	o.Claim = claim
	owner := claim.Spec.Owner
	siblings, err := c.ecloud.IPClaims().List(ctx, metav1.ListOptions{FieldSelector: ipam.OwnerSelector(owner.Namespace, owner.PodName)})
	if err != nil {
		return o, wrap(err, "listing the claims of pod %s/%s", owner.Namespace, owner.PodName)
	}
	for i := range siblings.Items {
		if siblings.Items[i].Name != claim.Name {
			o.Siblings = append(o.Siblings, &siblings.Items[i])
		}
	}
	pod, err := c.kube.CoreV1().Pods(owner.Namespace).Get(ctx, owner.PodName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return o, wrap(err, "getting pod %s/%s", owner.Namespace, owner.PodName)
	default:
		o.Pod = pod
		o.PodNodeGone, err = nodeGone(ctx, c, pod)
		if err != nil {
			return o, err
		}
	}
	if owner.Kind == ipam.KindStatefulSet && owner.Name != "" {
		set, err := c.kube.AppsV1().StatefulSets(owner.Namespace).Get(ctx, owner.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return o, wrap(err, "getting statefulset %s/%s", owner.Namespace, owner.Name)
		default:
			o.StatefulSet = set
		}
	}
	return o, nil
}

func nodeGone(ctx context.Context, c *clients, pod *corev1.Pod) (bool, error) {
	if pod.Spec.NodeName == "" {
		return false, nil
	}
	_, err := c.kube.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("getting node %s: %w", pod.Spec.NodeName, err)
	}
	return false, nil
}
