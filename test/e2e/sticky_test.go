package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
)

// checkStickyMove follows one pod of the example StatefulSet that runs on the dc-a host: deleted,
// it comes back with the same IP; drained off its host (the whole of its datacenter, so the
// scheduler's Degrade policy applies), it runs on the other host with the same IP, is reachable
// from a pod that stays on the first host (another pod of the StatefulSet: its pool's VLAN is not
// the other pools'), through the tunnel, the flows having followed the IP; and after the uncordon
// the controller restores the 2/2 spread.
func checkStickyMove(t *testing.T, c *cluster, nodes map[string]string) {
	ctx := context.Background()
	pods := c.kube.CoreV1().Pods(demoNS)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=stateful"})
	if err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	for i := range list.Items {
		if p := &list.Items[i]; p.Spec.NodeName == nodes["dc-a"] && podReady(p) {
			pod = p
			break
		}
	}
	if pod == nil {
		t.Fatalf("no Ready stateful pod on %s", nodes["dc-a"])
	}
	name, ip := pod.Name, pod.Status.PodIP
	t.Logf("following %s/%s (IP %s, on %s)", demoNS, name, ip, pod.Spec.NodeName)

	// back waits for a new incarnation of the pod (another UID), Ready, on node (any if ""), and
	// checks it kept the IP.
	back := func(old types.UID, node string) *corev1.Pod {
		var got *corev1.Pod
		poll(t, 2*time.Minute, fmt.Sprintf("%s recreated, Ready, on %q", name, node), func(ctx context.Context) (bool, error) {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.UID == old || !podReady(p) || (node != "" && p.Spec.NodeName != node) {
				return false, fmt.Errorf("uid %s on %q: %s %s", p.UID, p.Spec.NodeName, p.Status.Phase, p.Status.Message)
			}
			got = p
			return true, nil
		})
		if got.Status.PodIP != ip {
			t.Fatalf("%s came back with IP %s, had %s", name, got.Status.PodIP, ip)
		}
		return got
	}

	t.Run("stateful pod deleted comes back with the same IP", func(t *testing.T) {
		if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		pod = back(pod.UID, "")
	})
	if t.Failed() {
		return
	}

	t.Run("stateful pod drained to the other datacenter keeps its IP and is reachable", func(t *testing.T) {
		host := pod.Spec.NodeName
		other := nodes["dc-b"]
		if host == other {
			other = nodes["dc-a"]
		}
		setUnschedulable(t, c, host, true)
		// kubectl drain: cordon, then evict (the eviction API honours PodDisruptionBudgets).
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: demoNS}}
		if err := pods.EvictV1(ctx, ev); err != nil {
			t.Fatal(err)
		}
		// The probe: a Ready pod of the StatefulSet that stays on the drained host.
		var probe string
		sts, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=stateful"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range sts.Items {
			if p := &sts.Items[i]; p.Name != name && p.Spec.NodeName == host && podReady(p) {
				probe = p.Name
			}
		}
		if probe == "" {
			t.Fatalf("no other Ready stateful pod on %s to probe from", host)
		}
		moved := back(pod.UID, other)
		poll(t, 30*time.Second, "Warning "+dualdatacenter.ReasonDegraded+" on "+name, func(ctx context.Context) (bool, error) {
			evs, err := c.kube.CoreV1().Events(demoNS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.uid=" + string(moved.UID)})
			if err != nil {
				return false, err
			}
			for _, e := range evs.Items {
				if e.Reason == dualdatacenter.ReasonDegraded && e.Type == corev1.EventTypeWarning {
					return true, nil
				}
			}
			return false, fmt.Errorf("%d events, none %s", len(evs.Items), dualdatacenter.ReasonDegraded)
		})
		poll(t, 30*time.Second, fmt.Sprintf("pod %s (on %s) -> %s at %s (on %s)", probe, host, name, ip, other), func(ctx context.Context) (bool, error) {
			body, err := fetchFrom(ctx, c, demoNS, probe, "http://"+ip+":8080/")
			if err != nil {
				return false, err
			}
			if !strings.HasPrefix(body, "hello from "+name+" ") {
				return false, fmt.Errorf("answer %q is not from %s", body, name)
			}
			return true, nil
		})
	})
	// Uncordon whatever the drain subtest did (it may have stopped half-way).
	setUnschedulable(t, c, nodes["dc-a"], false)
	setUnschedulable(t, c, nodes["dc-b"], false)
	t.Run("after the uncordon the controller restores the 2/2 spread", func(t *testing.T) {
		poll(t, 3*time.Minute, "StatefulSet stateful 2/2 again", spread(c, "app=stateful", 2))
	})
}

func setUnschedulable(t *testing.T, c *cluster, node string, on bool) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	if _, err := c.kube.CoreV1().Nodes().Patch(context.Background(), node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Errorf("node %s unschedulable=%t: %v", node, on, err)
	}
}
