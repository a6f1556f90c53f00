package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
)

// traceFlags say where netd runs and what packet to trace.
type traceFlags struct {
	namespace string
	selector  string
	port      int
	protocol  string
	dstPort   int
}

func newTrace(o *Options) *cobra.Command {
	f := traceFlags{}
	cmd := &cobra.Command{
		Use:   "trace <pod> <destination IP>",
		Short: "Ask the pod's node's netd for an OpenFlow trace of a packet from the pod to an IP: local port, tunnel to which node, or drop by which rule",
		Long: `trace asks netd on the pod's node, through the apiserver's pod proxy, to run
ovs-appctl ofproto/trace for a packet from the pod's port to the destination and prints the rules
the packet matched and where it goes: a local pod port, the tunnel to another node, the gateway
into the host network, or a drop and the rule that dropped it. It needs get on pods/proxy of the
netd pods (namespace --netd-namespace).`,
		Args: exactArgs(2, "a pod name and a destination IP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst, err := netip.ParseAddr(args[1])
			if err != nil || !dst.Is4() {
				return usagef("destination %q: want an IPv4 address", args[1])
			}
			switch f.protocol {
			case "icmp", "tcp", "udp":
			default:
				return usagef("--protocol %q: want icmp, tcp or udp", f.protocol)
			}
			c, err := o.clients()
			if err != nil {
				return err
			}
			r, err := runTrace(cmd.Context(), c, o, f, args[0], dst)
			if err != nil {
				return err
			}
			return o.write(r)
		},
	}
	cmd.Flags().StringVar(&f.namespace, "netd-namespace", "kube-system", "namespace of the netd DaemonSet")
	cmd.Flags().StringVar(&f.selector, "netd-selector", "app.kubernetes.io/name=ecloud-netd", "label selector of the netd pods")
	cmd.Flags().IntVar(&f.port, "netd-port", 9462, "netd's metrics port (its --metrics-bind-address)")
	cmd.Flags().StringVar(&f.protocol, "protocol", "icmp", "protocol of the traced packet: icmp, tcp or udp")
	cmd.Flags().IntVar(&f.dstPort, "port", 80, "destination port for tcp and udp")
	return cmd
}

func runTrace(ctx context.Context, c *clients, o *Options, f traceFlags, podName string, dst netip.Addr) (*report.TraceReport, error) {
	pod, err := c.kube.CoreV1().Pods(c.ns).Get(ctx, podName, metav1.GetOptions{})
	if err != nil {
		return nil, wrap(err, "getting pod %s/%s", c.ns, podName)
	}
	if pod.Spec.NodeName == "" || pod.Spec.HostNetwork {
		return nil, fmt.Errorf("pod %s/%s has no port on a node's bridge (not scheduled, or host network)", c.ns, podName)
	}
	netds, err := c.kube.CoreV1().Pods(f.namespace).List(ctx, metav1.ListOptions{LabelSelector: f.selector,
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", pod.Spec.NodeName).String()})
	if err != nil {
		return nil, wrap(err, "listing the netd pods of node %s", pod.Spec.NodeName)
	}
	if len(netds.Items) == 0 {
		return nil, fmt.Errorf("no netd pod (%s in namespace %s) on node %s", f.selector, f.namespace, pod.Spec.NodeName)
	}
	netd := netds.Items[0]
	params := map[string]string{nodeapi.TraceQueryNamespace: pod.Namespace, nodeapi.TraceQueryPod: pod.Name, nodeapi.TraceQueryDst: dst.String(),
		nodeapi.TraceQueryProtocol: f.protocol, nodeapi.TraceQueryPort: strconv.Itoa(f.dstPort)}
	body, err := c.kube.CoreV1().Pods(netd.Namespace).ProxyGet("http", netd.Name, strconv.Itoa(f.port), nodeapi.PathTrace, params).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("netd %s/%s on node %s: trace: %w: %s", netd.Namespace, netd.Name, pod.Spec.NodeName, err, body)
	}
	var res nodeapi.TraceResult
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("netd %s/%s: decoding the trace: %w", netd.Namespace, netd.Name, err)
	}
	topo, err := o.Topo.resolve(ctx, c)
	if err != nil {
		return nil, err
	}
	nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, wrap(err, "listing nodes")
	}
	dcOf := func(name string) string {
		for i := range nodes.Items {
			if nodes.Items[i].Name == name {
				return topo.Datacenter(&nodes.Items[i])
			}
		}
		return ""
	}
	var owner, node string
	claim, err := c.ecloud.IPClaims().Get(ctx, v1alpha1.ClaimName(dst.String()), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, wrap(err, "getting the IP claim of %s", dst)
	default:
		owner, node = claim.Spec.Owner.Namespace+"/"+claim.Spec.Owner.PodName, claim.Status.Node
	}
	return report.BuildTrace(pod.Namespace+"/"+pod.Name, res, owner, node, dcOf), nil
}
