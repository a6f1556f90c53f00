package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/fileutil"
)

// referenceCNI switches the namespace hosts of the local cluster from the ecloud pod network to
// the containernetworking reference plugins (bridge + host-local) and back, for the pod-startup
// benchmark. How, on a live node:
//   - containerd's CRI uses the first network config (by file name) in /etc/cni/net.d and reloads
//     the directory when it changes (fsnotify); netd writes 10-ecloud.conflist once, at start.
//     A 00-reference.conflist written beside it (atomically: temp file, rename) takes over every
//     new sandbox; removing it hands them back to ecloud. Running pods keep their network.
//   - A sandbox is torn down (CNI DEL) by the network current at that moment, so every pod made
//     on one network must be gone before switching back: the benchmark deletes each batch's
//     namespace, and waits until it is gone, before the next batch or switch.
//   - The switch is confirmed, not assumed: a probe pod on every node must get its IP from the
//     network switched to (and, for the benchmark's pods, every pod's IP is checked too).
//   - The reference bridge (refbr0, the gateway of a /24 per node) and host-local's state (in the
//     host's /var/lib/ecloud, a per-host path) are removed when switching back; a failed test
//     switches back in its cleanup.
//
// The plugins are built by hack/build-k8s.sh (make up builds them) and copied into each host's
// /opt/cni/bin. Only the namespace hosts of make up ($WORKDIR/hosts/<key>) are switched; the
// benchmark's pods are pinned to them.
type referenceCNI struct {
	c     *cluster
	hosts []refHost
	on    bool
}

// refHost is one namespace host: its directory under $WORKDIR/hosts, node name and subnet.
type refHost struct {
	key, dir, node string
	subnet         *net.IPNet
}

const (
	refConfList = "00-reference.conflist"
	refBridge   = "refbr0"
	refIPAMDir  = "/var/lib/ecloud/bench-reference-ipam"
)

var hostnameOverride = regexp.MustCompile(`(?m)^hostnameOverride: (\S+)$`)

// newReferenceCNI finds the namespace hosts and installs the reference plugins on them.
func newReferenceCNI(t *testing.T, c *cluster) *referenceCNI {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(c.workdir, "hosts", "*", "kube-proxy.yaml"))
	slices.Sort(dirs)
	r := &referenceCNI{c: c}
	for i, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := hostnameOverride.FindSubmatch(b)
		if m == nil {
			t.Fatalf("no hostnameOverride in %s", f)
		}
		dir := filepath.Dir(f)
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.99.%d.0/24", i+1))
		r.hosts = append(r.hosts, refHost{key: filepath.Base(dir), dir: dir, node: string(m[1]), subnet: subnet})
	}
	if len(r.hosts) < 2 {
		t.Fatalf("want the two namespace hosts of make up under %s/hosts, found %d", c.workdir, len(r.hosts))
	}
	build := exec.Command(filepath.Join(c.root, "hack", "build-k8s.sh"), "cni/bridge", "cni/host-local")
	build.Dir = c.root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the reference plugins: %v\n%s", err, out)
	}
	for _, h := range r.hosts {
		for _, p := range []string{"bridge", "host-local"} {
			b, err := os.ReadFile(filepath.Join(c.root, "bin", "cni", p))
			if err != nil {
				t.Fatal(err)
			}
			if err := fileutil.WriteAtomic(filepath.Join(h.dir, "root", "opt", "cni", "bin", p), 0o755, bytes.NewReader(b)); err != nil {
				t.Fatalf("install %s on %s: %v", p, h.node, err)
			}
		}
	}
	t.Cleanup(func() {
		if r.on {
			r.switchBack(t)
		}
	})
	return r
}

func (r *referenceCNI) nodeNames() []string {
	var names []string
	for _, h := range r.hosts {
		names = append(names, h.node)
	}
	return names
}

// confList is the reference network of host h: a Linux bridge with the host as gateway and
// host-local addresses from the host's /24 (cniVersion 1.0.0: every containerd make up may run).
func (r *referenceCNI) confList(h refHost) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "reference",
		"plugins": []map[string]any{{
			"type": "bridge", "bridge": refBridge, "isGateway": true, "ipMasq": false, "hairpinMode": false,
			"ipam": map[string]any{
				"type": "host-local", "dataDir": refIPAMDir,
				"ranges": [][]map[string]string{{{"subnet": h.subnet.String()}}},
				"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
			},
		}},
	}, "", "  ")
}

// switchTo makes every host's new sandboxes use the reference network, and waits until they do.
func (r *referenceCNI) switchTo(t *testing.T) {
	t.Helper()
	r.on = true
	for _, h := range r.hosts {
		b, err := r.confList(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := fileutil.WriteAtomic(filepath.Join(h.dir, "root", "etc", "cni", "net.d", refConfList), 0o644, bytes.NewReader(b)); err != nil {
			t.Fatalf("switch %s to the reference network: %v", h.node, err)
		}
	}
	r.probe(t, "reference", func(h refHost, ip net.IP) bool { return h.subnet.Contains(ip) })
}

// switchBack removes the reference network from every host, waits until new sandboxes are on
// ecloud again, and removes the reference bridge and IPAM state.
func (r *referenceCNI) switchBack(t *testing.T) {
	t.Helper()
	for _, h := range r.hosts {
		if err := os.Remove(filepath.Join(h.dir, "root", "etc", "cni", "net.d", refConfList)); err != nil && !os.IsNotExist(err) {
			t.Errorf("switch %s back to ecloud: %v", h.node, err)
		}
	}
	r.on = false
	r.probe(t, "ecloud", func(_ refHost, ip net.IP) bool { return ecloudPodCIDR.Contains(ip) })
	for _, h := range r.hosts {
		ns := "/run/netns/" + r.c.prefix + "-" + h.key
		if out, err := exec.Command("ip", "-n", filepath.Base(ns), "link", "del", refBridge).CombinedOutput(); err != nil {
			t.Logf("remove %s on %s: %v %s", refBridge, h.node, err, out)
		}
		if err := os.RemoveAll(filepath.Join(h.dir, "root", refIPAMDir)); err != nil {
			t.Errorf("remove the reference IPAM state on %s: %v", h.node, err)
		}
	}
}

// probe starts one pod per host and waits until each has an IP that ok accepts (the runtime has
// picked up the switch), then deletes them and waits until they are gone.
func (r *referenceCNI) probe(t *testing.T, network string, ok func(h refHost, ip net.IP) bool) {
	t.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("bench-probe-%s-%d", network, time.Now().Unix())
	if _, err := r.c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = r.c.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		poll(t, 3*time.Minute, "namespace "+ns+" gone", func(ctx context.Context) (bool, error) {
			_, err := r.c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	}()
	poll(t, time.Minute, "the default ServiceAccount of "+ns, func(ctx context.Context) (bool, error) {
		_, err := r.c.kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	for _, h := range r.hosts {
		h := h
		name := "probe-" + h.key
		// A pod whose sandbox went up on the old network (the runtime had not reloaded yet) is
		// replaced until one comes up on the new one.
		poll(t, 2*time.Minute, "a pod on "+h.node+" on the "+network+" network", func(ctx context.Context) (bool, error) {
			p, err := r.c.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				pod := workloadPod(name, h.node)
				pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
				_, err = r.c.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
				return false, err
			}
			if err != nil {
				return false, err
			}
			if p.Status.PodIP == "" {
				return false, fmt.Errorf("pod %s: no IP yet (%s)", name, p.Status.Phase)
			}
			if ip := net.ParseIP(p.Status.PodIP); !ok(h, ip) {
				err := r.c.kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
				return false, fmt.Errorf("pod %s got %s, not from the %s network (replaced: %v)", name, ip, network, err)
			}
			return true, nil
		})
	}
}

// checkPod tells whether a benchmark pod has its address from its node's reference subnet.
func (r *referenceCNI) checkPod(p *corev1.Pod) error {
	for _, h := range r.hosts {
		if h.node == p.Spec.NodeName {
			if !h.subnet.Contains(net.ParseIP(p.Status.PodIP)) {
				return fmt.Errorf("pod IP %s is not from the reference subnet %s of %s", p.Status.PodIP, h.subnet, h.node)
			}
			return nil
		}
	}
	return fmt.Errorf("pod on %s, not on a host switched to the reference network", p.Spec.NodeName)
}
