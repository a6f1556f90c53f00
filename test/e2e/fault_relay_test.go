package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// relaySnapshotRE finds the relay in netd's "Location relay snapshot applied" log lines.
var relaySnapshotRE = regexp.MustCompile(`"Location relay snapshot applied".* relay="http://([0-9.]+):`)

// followedRelay is the address of the location relay netd pod p last took a snapshot from.
func followedRelay(ctx context.Context, c *cluster, p *corev1.Pod) (string, error) {
	raw, err := c.kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "netd"}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("logs of %s: %w", p.Name, err)
	}
	var last string
	for _, line := range strings.Split(string(raw), "\n") {
		if m := relaySnapshotRE.FindStringSubmatch(line); m != nil {
			last = m[1]
		}
	}
	if last == "" {
		return "", fmt.Errorf("%s has not logged a relay snapshot", p.Name)
	}
	return last, nil
}

// faultRelayStop: the location relay that dc-a's netd follows is SIGSTOPped, so its stream stays
// open and silent, as when a relay's node hangs. A pod then starts on dc-b: dc-a's netd must drop
// the silent stream, follow the other relay and learn the new pod's location, so a client on dc-a
// reaches it. The stopped relay is SIGKILLed afterwards and must come back ready.
func faultRelayStop(t *testing.T, c *cluster) {
	ctx := context.Background()
	const nodeA, nodeB = "dc-a-node-0", "dc-b-node-0"
	ns := chaosNamespace(t, c, "relay")
	netdA, err := componentPod(ctx, c, "ecloud-netd", nodeA)
	if err != nil {
		t.Fatal(err)
	}
	var before string
	poll(t, time.Minute, "netd on "+nodeA+" following a relay", func(ctx context.Context) (bool, error) {
		before, err = followedRelay(ctx, c, netdA)
		return err == nil, err
	})
	relays, err := c.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=ecloud-location-relay"})
	if err != nil {
		t.Fatal(err)
	}
	var relay *corev1.Pod
	for i := range relays.Items {
		if p := &relays.Items[i]; p.Status.PodIP == before && p.DeletionTimestamp == nil {
			relay = p
		}
	}
	if relay == nil || len(relays.Items) < 2 {
		t.Fatalf("netd on %s follows the relay at %s: no such relay among %d pods (two are needed)", nodeA, before, len(relays.Items))
	}
	pods := c.kube.CoreV1().Pods(ns)
	waitRunning := func(name, node string) *corev1.Pod {
		t.Helper()
		if _, err := pods.Create(ctx, bareWorkload(name, node), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		var p *corev1.Pod
		poll(t, 2*time.Minute, name+" Running on "+node, func(ctx context.Context) (bool, error) {
			p, err = pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
		})
		return p
	}
	client := waitRunning("client", nodeA)
	clientNS, err := podNetns(client.UID)
	if err != nil {
		t.Fatal(err)
	}
	defer clientNS.Close()

	signalPodProcess(t, relay, "location-relay", syscall.SIGSTOP)
	stopped := time.Now()
	killed := false
	defer func() {
		if !killed {
			signalPodProcess(t, relay, "location-relay", syscall.SIGKILL)
		}
	}()
	server := waitRunning("server", nodeB)
	poll(t, 90*time.Second, "client on "+nodeA+" -> "+server.Name+" on "+nodeB, func(context.Context) (bool, error) {
		body, err := httpGetIn(clientNS, server.Status.PodIP+":8080", "/")
		if err != nil {
			return false, err
		}
		if !strings.HasPrefix(body, "hello from "+server.Name+" ") {
			return false, fmt.Errorf("answer %q", body)
		}
		return true, nil
	})
	reachS := since(stopped)
	after, err := followedRelay(ctx, c, netdA)
	if err != nil {
		t.Fatal(err)
	}
	restarts := int32(0)
	if p, err := c.kube.CoreV1().Pods("kube-system").Get(ctx, relay.Name, metav1.GetOptions{}); err == nil {
		restarts = containerRestarts(p, "location-relay")
	}
	signalPodProcess(t, relay, "location-relay", syscall.SIGKILL)
	killed = true
	killedAt := time.Now()
	poll(t, 3*time.Minute, relay.Name+" restarted and ready", func(ctx context.Context) (bool, error) {
		p, err := c.kube.CoreV1().Pods("kube-system").Get(ctx, relay.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if containerRestarts(p, "location-relay") <= restarts || !podReady(p) {
			return false, fmt.Errorf("restarts %d (%d before the kill), ready %v", containerRestarts(p, "location-relay"), restarts, podReady(p))
		}
		return true, nil
	})
	figure(t, "relay-stop", "stopped_relay", before, "followed_after", after, "reach_new_pod_s", reachS, "relay_back_s", since(killedAt))
	if after == before {
		t.Errorf("netd on %s still names the stopped relay %s as its last snapshot", nodeA, before)
	}
	checkNothingLeftBehind(t, c, ns)
}
