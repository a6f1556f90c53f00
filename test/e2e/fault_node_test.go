package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
)

// nodeDeathEphemeral is how many ephemeral pods run on the node that dies.
const nodeDeathEphemeral = 3

// faultNodeDeath: the spare host (dc-a-node-1, hack/cluster/host.sh add) runs a pod of a sticky
// StatefulSet and ephemeral pods; then it dies (host.sh kill: kubelet, containerd, OVS, netd and the
// pods, all at once, for good) and its Node is deleted, as an operator does for a dead machine. The
// ip-controller must free the ephemeral claims bound to it, and the StatefulSet pod, force-deleted,
// must come back on another node with the same IP and answer a pod in the other datacenter.
func faultNodeDeath(t *testing.T, c *cluster) {
	ctx := context.Background()
	added := time.Now()
	if out, err := c.script(5*time.Minute, "host.sh", "add", spareHost); err != nil {
		t.Fatalf("host.sh add %s: %v\n%s", spareHost, err, out)
	}
	// The host goes with the fault, whatever happens; make down would remove it too.
	t.Cleanup(func() {
		_ = c.kube.CoreV1().Nodes().Delete(context.Background(), spareNode, metav1.DeleteOptions{})
		if out, err := c.script(2*time.Minute, "host.sh", "remove", spareHost); err != nil {
			t.Errorf("host.sh remove %s: %v\n%s", spareHost, err, out)
		}
	})
	poll(t, 3*time.Minute, spareNode+" Ready, untainted, netd Ready on it", func(ctx context.Context) (bool, error) {
		n, err := c.kube.CoreV1().Nodes().Get(ctx, spareNode, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if len(n.Spec.Taints) > 0 || !nodeReady(n) {
			return false, fmt.Errorf("node %s: ready %v, taints %v", spareNode, nodeReady(n), n.Spec.Taints)
		}
		p, err := componentPod(ctx, c, "ecloud-netd", spareNode)
		if err != nil {
			return false, err
		}
		return doneOr(podReady(p), fmt.Errorf("netd %s not Ready", p.Name))
	})
	t.Logf("host %s (%s) joined in %.1fs", spareHost, spareNode, since(added))

	ns := chaosNamespace(t, c, "node")
	ec, err := client.NewForConfig(c.config)
	if err != nil {
		t.Fatal(err)
	}
	// A pool of the namespace, in both datacenters, for the sticky pods.
	pool := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: v1alpha1.IPPoolSpec{
			CIDR: "10.16.201.0/28", Gateway: "10.16.201.1", Namespaces: []string{ns},
			NodeSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: zoneLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"dc-a", "dc-b"}}}},
		},
	}
	if _, err := ec.IPPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ec.IPPools().Delete(context.Background(), pool.Name, metav1.DeleteOptions{}) })

	// dc-a's first host is cordoned while the StatefulSet starts: its dc-a pod lands on the spare host.
	cordon := func(on bool) {
		patch := fmt.Sprintf(`{"spec":{"unschedulable":%v}}`, on)
		if _, err := c.kube.CoreV1().Nodes().Patch(context.Background(), "dc-a-node-0", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("cordon %v dc-a-node-0: %v", on, err)
		}
	}
	cordon(true)
	t.Cleanup(func() { cordon(false) })
	labels := map[string]string{"app": "sticky"}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "sticky"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](2), ServiceName: "sticky", PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					"ecloud.io/ip-pools": pool.Name, "ecloud.io/ip-policy": "sticky", "ecloud.io/ip-release": "OnScaleDown"}},
				Spec: corev1.PodSpec{
					SchedulerName:                 "ecloud-scheduler",
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name: "app", Image: "ecloud/workload:dev", ImagePullPolicy: corev1.PullIfNotPresent,
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := c.kube.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := c.kube.CoreV1().Pods(ns)
	for i := range nodeDeathEphemeral {
		if _, err := pods.Create(ctx, bareWorkload(fmt.Sprintf("eph-%d", i), spareNode), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pods.Create(ctx, workloadPod("client", "dc-b-node-0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var victim *corev1.Pod
	poll(t, 3*time.Minute, "the StatefulSet, the ephemeral pods and the client Running", func(ctx context.Context) (bool, error) {
		list, err := pods.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		victim = nil
		var waiting []string
		for i := range list.Items {
			p := &list.Items[i]
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || (p.Labels["app"] != "chaos" && !podReady(p)) {
				waiting = append(waiting, fmt.Sprintf("%s %s on %q", p.Name, p.Status.Phase, p.Spec.NodeName))
			}
			if p.Labels["app"] == "sticky" && p.Spec.NodeName == spareNode {
				victim = p
			}
		}
		if len(list.Items) < 2+nodeDeathEphemeral+1 || len(waiting) > 0 {
			return false, fmt.Errorf("%d pods, waiting: %s", len(list.Items), strings.Join(waiting, ", "))
		}
		if victim == nil {
			return false, fmt.Errorf("no StatefulSet pod on %s", spareNode)
		}
		return true, nil
	})
	cordon(false)
	clientPod, err := pods.Get(ctx, "client", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clientNS, err := podNetns(clientPod.UID)
	if err != nil {
		t.Fatalf("network namespace of the client: %v", err)
	}
	defer clientNS.Close()
	reach := func(p *corev1.Pod) error {
		body, err := httpGetIn(clientNS, p.Status.PodIP+":8080", "/")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(body, "hello from "+p.Name+" ") {
			return fmt.Errorf("answer %q is not from %s", body, p.Name)
		}
		return nil
	}
	poll(t, 30*time.Second, "client -> "+victim.Name+" before the node dies", func(context.Context) (bool, error) { return true, reach(victim) })
	// bound lists the claims of a mode bound to the spare node.
	bound := func(ctx context.Context, mode v1alpha1.ClaimMode) ([]string, error) {
		list, err := ec.IPClaims().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		var names []string
		for _, cl := range list.Items {
			if cl.Status.Node == spareNode && cl.Spec.Mode == mode {
				names = append(names, cl.Name)
			}
		}
		return names, nil
	}
	ephemeral, err := bound(ctx, v1alpha1.ModeEphemeral)
	if err != nil {
		t.Fatal(err)
	}
	if len(ephemeral) < nodeDeathEphemeral {
		t.Fatalf("%d ephemeral claims bound to %s, want at least %d", len(ephemeral), spareNode, nodeDeathEphemeral)
	}

	if out, err := c.script(time.Minute, "host.sh", "kill", spareHost); err != nil {
		t.Fatalf("host.sh kill %s: %v\n%s", spareHost, err, out)
	}
	died := time.Now()
	if err := c.kube.CoreV1().Nodes().Delete(ctx, spareNode, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete node %s: %v", spareNode, err)
	}
	if err := pods.Delete(ctx, victim.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("force-delete %s: %v", victim.Name, err)
	}
	var moved *corev1.Pod
	poll(t, 3*time.Minute, victim.Name+" back, Ready, on another node", func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, victim.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.UID == victim.UID || !podReady(p) {
			return false, fmt.Errorf("uid %s on %q: %s %s", p.UID, p.Spec.NodeName, p.Status.Phase, p.Status.Message)
		}
		moved = p
		return true, nil
	})
	sameIP := "no"
	if moved.Status.PodIP == victim.Status.PodIP {
		sameIP = "yes"
	}
	poll(t, time.Minute, "client -> "+moved.Name+" on "+moved.Spec.NodeName, func(context.Context) (bool, error) { return true, reach(moved) })
	recovered := since(died)
	var left []string
	poll(t, 4*time.Minute, "the ephemeral claims bound to "+spareNode+" freed", func(ctx context.Context) (bool, error) {
		left, err = bound(ctx, v1alpha1.ModeEphemeral)
		if err != nil {
			return false, err
		}
		return doneOr(len(left) == 0, fmt.Errorf("left: %v", left))
	})
	freed := since(died)
	figure(t, "node-death", "ephemeral_claims", len(ephemeral), "claims_freed", len(ephemeral)-len(left), "claims_left", len(left),
		"freed_s", freed, "sticky_on", moved.Spec.NodeName, "same_ip", sameIP, "reachable", "yes", "recover_s", recovered)
	if sameIP != "yes" {
		t.Errorf("%s came back with IP %s, had %s", victim.Name, moved.Status.PodIP, victim.Status.PodIP)
	}
	if moved.Spec.NodeName == spareNode {
		t.Errorf("%s came back on the dead node", victim.Name)
	}
	checkNothingLeftBehind(t, c, ns)
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}
