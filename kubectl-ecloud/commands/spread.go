package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

func newSpread(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "spread <deployment|statefulset|replicaset|group>/<name>",
		Short: "A workload's pods per datacenter and revision, what the two-datacenter rule allows next, and the deletion costs",
		Long: `spread counts a workload's running pods per datacenter and revision, says for each datacenter
whether the two-datacenter rule lets the next pod (of the newest revision) go there, and lists the
pods in the order a scale-down removes them with the deletion cost the controller set on each.
The workload is deployment/<name> (deploy), statefulset/<name> (sts), replicaset/<name> (rs) or
group/<name> (pods labelled ecloud.io/group=<name>), in the namespace of -n.`,
		Args: exactArgs(1, "one workload, e.g. deployment/web"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, ok := strings.Cut(args[0], "/")
			if !ok || name == "" {
				return usagef("workload %q: want <kind>/<name>, e.g. deployment/web", args[0])
			}
			c, err := o.clients()
			if err != nil {
				return err
			}
			obs, desired, err := observeSpread(cmd.Context(), c, kind, name)
			if err != nil {
				return err
			}
			if obs.Topo, err = o.Topo.resolve(cmd.Context(), c); err != nil {
				return err
			}
			r := report.BuildSpread(obs)
			if desired != nil {
				r.Desired = *desired
			}
			return o.write(r)
		},
	}
}

// observeSpread finds the group through dcrule's resolver, from a pod the workload would create
// next (so the group and its next revision are exactly what the scheduler computes).
func observeSpread(ctx context.Context, c *clients, kind, name string) (report.SpreadObservation, *int32, error) {
	var obs report.SpreadObservation
	ns := c.ns
	rsList, err := c.kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return obs, nil, wrap(err, "listing replicasets of namespace %s", ns)
	}
	stsList, err := c.kube.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return obs, nil, wrap(err, "listing statefulsets of namespace %s", ns)
	}
	rsIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	stsIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for i := range rsList.Items {
		_ = rsIdx.Add(&rsList.Items[i])
	}
	for i := range stsList.Items {
		_ = stsIdx.Add(&stsList.Items[i])
	}
	resolver := &dcrule.Resolver{ReplicaSets: appslisters.NewReplicaSetLister(rsIdx), StatefulSets: appslisters.NewStatefulSetLister(stsIdx)}

	next := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: map[string]string{}}}
	controlledBy := func(kind, name string, uid types.UID) {
		next.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}}
	}
	var desired *int32
	switch strings.ToLower(kind) {
	case "deployment", "deployments", "deploy":
		d, err := c.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return obs, nil, wrap(err, "getting deployment %s/%s", ns, name)
		}
		rs := newestReplicaSet(rsList.Items, d)
		if rs == nil {
			return obs, nil, fmt.Errorf("deployment %s/%s has no ReplicaSet yet", ns, name)
		}
		controlledBy("ReplicaSet", rs.Name, rs.UID)
		desired = d.Spec.Replicas
	case "statefulset", "statefulsets", "sts":
		sts, err := c.kube.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return obs, nil, wrap(err, "getting statefulset %s/%s", ns, name)
		}
		controlledBy("StatefulSet", sts.Name, sts.UID)
		next.Labels[appsv1.ControllerRevisionHashLabelKey] = sts.Status.UpdateRevision
	case "replicaset", "replicasets", "rs":
		rs, err := c.kube.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return obs, nil, wrap(err, "getting replicaset %s/%s", ns, name)
		}
		controlledBy("ReplicaSet", rs.Name, rs.UID)
	case "group":
		next.Labels[v1alpha1.LabelGroup] = name
	default:
		return obs, nil, usagef("workload kind %q: want deployment, statefulset, replicaset or group", kind)
	}
	g, err := resolver.GroupOf(next)
	if err != nil {
		return obs, nil, err
	}
	if g == nil {
		return obs, nil, fmt.Errorf("%s/%s in namespace %s is not under the two-datacenter rule", kind, name, ns)
	}
	pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return obs, nil, wrap(err, "listing pods of namespace %s", ns)
	}
	nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return obs, nil, wrap(err, "listing nodes")
	}
	obs = report.SpreadObservation{Group: g, Pods: pods.Items, Nodes: nodes.Items}
	if g.Kind != dcrule.KindLabel {
		obs.NextRevision, _ = g.Revision(next)
	}
	return obs, desired, nil
}

// newestReplicaSet is the deployment's ReplicaSet with the highest revision.
func newestReplicaSet(all []appsv1.ReplicaSet, d *appsv1.Deployment) *appsv1.ReplicaSet {
	var best *appsv1.ReplicaSet
	bestRev := -1
	for i := range all {
		rs := &all[i]
		if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID {
			continue
		}
		rev, _ := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"])
		if rev > bestRev {
			best, bestRev = rs, rev
		}
	}
	return best
}
