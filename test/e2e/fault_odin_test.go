package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ecloud-io/ecloud/node-agent/testutil/falcontest"
	"github.com/ecloud-io/ecloud/test/netns"
)

// odinFault is the Odin outage: a receiver (falcontest, as in checkNodeAgentSamples) on the
// datacenter network, the node agents pointed at it.
type odinFault struct {
	c    *cluster
	addr string
	cpNS *os.File
	// before is the receiver until the outage; after the one on the same address after it.
	before, after *falcontest.Receiver
}

// odinHost is the host whose node agent restarts during the outage.
const (
	odinHost = "a"
	odinNode = "dc-a-node-0"
)

// startOdinFault starts the receiver and points the node agents at it (a restart of the DaemonSet's
// pods); the original URL is restored when t ends.
func startOdinFault(t *testing.T, c *cluster) *odinFault {
	t.Helper()
	ctx := context.Background()
	cpNS, err := os.Open("/run/netns/" + c.prefix + "-cp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpNS.Close() })
	l, err := netns.Listen(cpNS, net.JoinHostPort(controlPlaneIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	f := &odinFault{c: c, addr: l.Addr().String(), cpNS: cpNS, before: falcontest.NewOn(l)}
	cms := c.kube.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, nodeAgentConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setURL := func(url string) {
		patch := fmt.Sprintf(`{"data":{"odin-url":%q}}`, url)
		if _, err := cms.Patch(context.Background(), nodeAgentConfig, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Errorf("set odin-url: %v", err)
		}
		restartNodeAgents(t, c)
	}
	setURL(f.before.URL())
	t.Cleanup(func() {
		setURL(cm.Data["odin-url"])
		f.before.Close()
		if f.after != nil {
			f.after.Close()
		}
	})
	return f
}

// segment is a spool file: <seq>-<unix nanos>-<items>.seg (node-agent/pkg/spool).
type segment struct {
	unix  int64
	items int
}

// spooled lists the segments in host h's node-agent spool.
func spooled(c *cluster, h string) ([]segment, error) {
	files, err := filepath.Glob(filepath.Join(c.workdir, "hosts", h, "root/var/lib/ecloud/node-agent/*.seg"))
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".seg"), "-")
		if len(parts) != 3 {
			return nil, fmt.Errorf("spool file %s: not <seq>-<nanos>-<items>.seg", f)
		}
		nanos, err1 := strconv.ParseInt(parts[1], 10, 64)
		items, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("spool file %s: not <seq>-<nanos>-<items>.seg", f)
		}
		segs = append(segs, segment{unix: time.Unix(0, nanos).Unix(), items: items})
	}
	return segs, nil
}

// run: samples flow; the receiver goes away; the node agent of odinHost is SIGKILLed (its container
// restarts); after the outage a receiver comes back on the same address. Every sample the agent
// took while the receiver was away (its spool at the end of the outage) must arrive exactly once.
func (f *odinFault) run(t *testing.T, outage time.Duration) {
	ctx := context.Background()
	c := f.c
	poll(t, 2*time.Minute, "samples from "+odinNode+" before the outage", func(context.Context) (bool, error) {
		for _, it := range f.before.Items() {
			if it.Endpoint == odinNode {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d items, none from %s", len(f.before.Items()), odinNode)
	})
	f.before.Close()
	down := time.Now()
	agent, err := componentPod(ctx, c, nodeAgentDS, odinNode)
	if err != nil {
		t.Fatal(err)
	}
	restartsBefore := containerRestarts(agent, "node-agent")
	// Let the agent spool a few batches first, then crash it.
	time.Sleep(min(outage/4, 30*time.Second))
	killPodProcess(t, agent, "node-agent")
	poll(t, 2*time.Minute, "the node agent restarted and Ready", func(ctx context.Context) (bool, error) {
		p, err := c.kube.CoreV1().Pods("kube-system").Get(ctx, agent.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return doneOr(containerRestarts(p, "node-agent") > restartsBefore && podReady(p), fmt.Errorf("%d restarts", containerRestarts(p, "node-agent")))
	})
	time.Sleep(time.Until(down.Add(outage)))
	segs, err := spooled(c, odinHost)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]int{}
	spooledItems := 0
	for _, s := range segs {
		want[s.unix] += s.items
		spooledItems += s.items
	}
	l, err := netns.Listen(f.cpNS, f.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", f.addr, err)
	}
	f.after = falcontest.NewOn(l)
	back := time.Now()
	poll(t, 5*time.Minute, "the spool of "+odinNode+" drained", func(context.Context) (bool, error) {
		left, err := spooled(c, odinHost)
		if err != nil {
			return false, err
		}
		// What the agent spooled since is pushed as it comes: wait only for the outage's segments.
		n := 0
		for _, s := range left {
			if want[s.unix] > 0 {
				n++
			}
		}
		return doneOr(n == 0, fmt.Errorf("%d of the outage's segments still spooled", n))
	})
	drain := since(back)
	// Received: the outage's samples (by their timestamps) at either receiver, once per series.
	seen := map[string]int{}
	received := 0
	for _, r := range []*falcontest.Receiver{f.before, f.after} {
		for _, it := range r.Items() {
			if it.Endpoint != odinNode || want[it.Timestamp] == 0 {
				continue
			}
			received++
			seen[fmt.Sprintf("%d %s %s", it.Timestamp, it.Metric, it.Tags)]++
		}
	}
	duplicates := 0
	got := map[int64]int{}
	for k, n := range seen {
		duplicates += n - 1
		ts, _ := strconv.ParseInt(strings.Fields(k)[0], 10, 64)
		got[ts]++
	}
	lost := 0
	for ts, n := range want {
		if got[ts] < n {
			lost += n - got[ts]
		}
	}
	figure(t, "odin-outage", "outage_s", back.Sub(down).Seconds(), "agent_restarts", 1, "batches", len(segs), "samples_spooled", spooledItems,
		"received", received, "duplicates", duplicates, "lost", lost, "invalid", f.after.Invalid(), "drain_s", drain)
	if spooledItems == 0 {
		t.Errorf("the node agent on %s spooled nothing during the outage", odinNode)
	}
	if duplicates > 0 || lost > 0 {
		t.Errorf("%d samples spooled during the outage: %d received, %d duplicates, %d lost", spooledItems, received, duplicates, lost)
	}
	if n := f.after.Invalid(); n > 0 {
		t.Errorf("the receiver refused %d items", n)
	}
}

// containerRestarts is the restart count of the pod's container name.
func containerRestarts(p *corev1.Pod, name string) int32 {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == name {
			return s.RestartCount
		}
	}
	return 0
}
