package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// netdKillPods is how many pods start on the node while its netd is killed.
const netdKillPods = 30

// faultNetdKill: 30 pods start on dc-b's host; once the first has its IP (the others' CNI ADDs are
// in flight or queued), netd's process is SIGKILLed. Its container restarts; every pod must end
// Running with a unique IP, and the node must hold exactly one Bound claim, one br-int port and one
// veth per pod: nothing left over, nothing missing.
func faultNetdKill(t *testing.T, c *cluster) {
	ctx := context.Background()
	const node, host = "dc-b-node-0", "b"
	ns := chaosNamespace(t, c, "netd")
	netd, err := componentPod(ctx, c, "ecloud-netd", node)
	if err != nil {
		t.Fatal(err)
	}
	pods := c.kube.CoreV1().Pods(ns)
	var wg sync.WaitGroup
	errs := make(chan error, netdKillPods)
	for i := range netdKillPods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pods.Create(ctx, bareWorkload(fmt.Sprintf("p%02d", i), node), metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create pod: %v", err)
	}
	// running counts the pods Running with an IP.
	running := func(ctx context.Context) (int, error) {
		list, err := pods.List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				n++
			}
		}
		return n, nil
	}
	poll(t, 2*time.Minute, "the first pod Running", func(ctx context.Context) (bool, error) {
		n, err := running(ctx)
		return n > 0, err
	})
	atKill, _ := running(ctx)
	killPodProcess(t, netd, "netd")
	killed := time.Now()
	poll(t, 5*time.Minute, fmt.Sprintf("%d pods Running after netd's restart", netdKillPods), func(ctx context.Context) (bool, error) {
		n, err := running(ctx)
		if err != nil {
			return false, err
		}
		if n < netdKillPods {
			return false, fmt.Errorf("%d of %d Running", n, netdKillPods)
		}
		return true, nil
	})
	recoverS := since(killed)
	// The datapath and the claims settle right after: give them the same poll, then audit.
	var a *datapathAudit
	poll(t, time.Minute, "pods, claims, ports and veths agreeing on "+node, func(ctx context.Context) (bool, error) {
		var err error
		if a, err = auditNode(ctx, c, ns, node, host); err != nil {
			return false, err
		}
		if len(a.problems) > 0 {
			return false, fmt.Errorf("%s", strings.Join(a.problems, "; "))
		}
		return true, nil
	})
	// The kubelet reports the restart in the pod's status a moment after the container runs again.
	restarts := int32(-1)
	poll(t, 30*time.Second, "netd's restart in the status of "+netd.Name, func(ctx context.Context) (bool, error) {
		p, err := c.kube.CoreV1().Pods("kube-system").Get(ctx, netd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		restarts = containerRestarts(p, "netd") - containerRestarts(netd, "netd")
		return restarts >= 1, nil
	})
	if a != nil {
		figure(t, "netd-kill", "pods", a.pods, "running_at_kill", atKill, "running", a.running, "duplicate_ips", a.duplicateIPs,
			"leaked_ports", a.leakedPorts, "leaked_veths", a.leakedVeths, "leaked_claims", a.leakedClaims, "missing", a.missing,
			"netd_restarts", restarts, "recover_s", recoverS)
	}
	checkNothingLeftBehind(t, c, ns)
}
