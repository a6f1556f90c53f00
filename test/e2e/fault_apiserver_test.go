package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiserverOutage is how long the apiserver stays stopped.
const apiserverOutage = 60 * time.Second

// faultAPIServerDown: a pod in each datacenter; the apiserver is stopped (SIGTERM, hack/cluster/
// daemon.sh) for 60 s while each pod calls the other every second, from inside its network
// namespace, across the datacenters (through the tunnel). The datapath must carry every call. After
// the apiserver is back, a new pod must get an IP and reach both, and every ecloud component must
// be available again (netd Ready on every node).
func faultAPIServerDown(t *testing.T, c *cluster) {
	ctx := context.Background()
	ns := chaosNamespace(t, c, "apiserver")
	pods := c.kube.CoreV1().Pods(ns)
	nodeOf := map[string]string{"dc-a": "dc-a-node-0", "dc-b": "dc-b-node-0"}
	running := map[string]*corev1.Pod{}
	for _, dc := range []string{"dc-a", "dc-b"} {
		if _, err := pods.Create(ctx, workloadPod(dc, nodeOf[dc]), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitReady := func(name string) *corev1.Pod {
		var got *corev1.Pod
		poll(t, 2*time.Minute, "pod "+name+" Ready", func(ctx context.Context) (bool, error) {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got = p
			return podReady(p) && p.Status.PodIP != "", nil
		})
		return got
	}
	netnsOf := map[string]*os.File{}
	for _, dc := range []string{"dc-a", "dc-b"} {
		running[dc] = waitReady(dc)
		f, err := podNetns(running[dc].UID)
		if err != nil {
			t.Fatalf("network namespace of pod %s: %v", dc, err)
		}
		defer f.Close()
		netnsOf[dc] = f
	}
	// call: pod from GETs / of pod to by its IP, from inside from's network namespace.
	call := func(from *os.File, to *corev1.Pod) error {
		body, err := httpGetIn(from, to.Status.PodIP+":8080", "/")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(body, "hello from "+to.Name+" ") {
			return fmt.Errorf("answer %q is not from %s", body, to.Name)
		}
		return nil
	}
	for _, dir := range [][2]string{{"dc-a", "dc-b"}, {"dc-b", "dc-a"}} {
		poll(t, 30*time.Second, dir[0]+" -> "+dir[1]+" before the outage", func(context.Context) (bool, error) {
			return true, call(netnsOf[dir[0]], running[dir[1]])
		})
	}

	var (
		mu              sync.Mutex
		calls, failures int
		lastErr         error
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			for _, dir := range [][2]string{{"dc-a", "dc-b"}, {"dc-b", "dc-a"}} {
				err := call(netnsOf[dir[0]], running[dir[1]])
				mu.Lock()
				calls++
				if err != nil {
					failures++
					lastErr = fmt.Errorf("%s -> %s: %w", dir[0], dir[1], err)
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	if out, err := c.script(time.Minute, "daemon.sh", "stop", "kube-apiserver"); err != nil {
		close(stop)
		<-done
		t.Fatalf("stop the apiserver: %v\n%s", err, out)
	}
	down := time.Now()
	time.Sleep(apiserverOutage)
	out, err := c.script(time.Minute, "daemon.sh", "start", "kube-apiserver")
	back := time.Now()
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("start the apiserver again: %v\n%s", err, out)
	}
	outage := back.Sub(down).Seconds()
	poll(t, 2*time.Minute, "the apiserver ready again", func(context.Context) (bool, error) { return true, c.ready() })
	ready := since(back)

	// Reconciled: a new pod gets an IP and reaches both, the components are available.
	if _, err := pods.Create(ctx, workloadPod("after", "dc-a-node-0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	after := waitReady("after")
	f, err := podNetns(after.UID)
	if err != nil {
		t.Fatalf("network namespace of pod after: %v", err)
	}
	defer f.Close()
	for _, dc := range []string{"dc-a", "dc-b"} {
		poll(t, time.Minute, "new pod -> "+dc, func(context.Context) (bool, error) { return true, call(f, running[dc]) })
	}
	recovered := since(back)
	checkComponents(t, c)
	figure(t, "apiserver-down", "outage_s", outage, "calls", calls, "failures", failures, "apiserver_ready_s", ready,
		"new_pod_ip", after.Status.PodIP, "recover_s", recovered)
	if failures > 0 {
		t.Errorf("%d of %d calls between the pods failed during the outage, last: %v", failures, calls, lastErr)
	}
	if calls < int(apiserverOutage/time.Second) {
		t.Errorf("only %d calls during a %s outage", calls, apiserverOutage)
	}
	checkNothingLeftBehind(t, c, ns)
}
