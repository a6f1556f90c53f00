package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
)

// installDoc is the page a new user follows; the e2e runs its commands as written.
const installDoc = "docs/install.md"

// installSteps are the sections of docs/install.md the e2e runs, in this order.
var installSteps = []string{"Uninstall", "Install", "Check"}

// docBlock is one shell block of docs/install.md: on the admin's machine (kubectl) or, with the
// info string "sh node", on every node.
type docBlock struct {
	section string
	onNodes bool
	script  string
}

// installBlocks returns the shell blocks of the named sections of docs/install.md, section by
// section in the order given, each section's blocks in file order.
func installBlocks(t *testing.T, path string, sections []string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, s := range sections {
		want[s] = true
	}
	var blocks []docBlock
	found := map[string]bool{}
	section, fence, in := "", "", false
	var body []string
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.HasPrefix(l, "## "):
			section = strings.TrimSpace(strings.TrimPrefix(l, "## "))
		case !in && strings.HasPrefix(l, "```"):
			in, fence, body = true, strings.TrimSpace(strings.TrimPrefix(l, "```")), nil
		case in && strings.HasPrefix(l, "```"):
			in = false
			if want[section] && (fence == "sh" || fence == "sh node") {
				blocks = append(blocks, docBlock{section: section, onNodes: fence == "sh node", script: strings.Join(body, "\n")})
				found[section] = true
			}
		case in:
			body = append(body, l)
		}
	}
	// In the order of sections (the page has Install before Uninstall).
	var ordered []docBlock
	for _, s := range sections {
		if !found[s] {
			t.Fatalf("%s has no ```sh block under \"## %s\": the e2e follows that section", path, s)
		}
		for _, b := range blocks {
			if b.section == s {
				ordered = append(ordered, b)
			}
		}
	}
	return ordered
}

// checkInstallFromDocs removes ecloud from the cluster and installs it again by running the
// commands of docs/install.md as written (Uninstall, Install, Check), with bin/kubectl as kubectl;
// then every component is available, both nodes Ready, and the example pods have IPs from their
// pools, each held by a Bound IPClaim on the pod's node.
func checkInstallFromDocs(t *testing.T, c *cluster) {
	blocks := installBlocks(t, filepath.Join(c.root, installDoc), installSteps)
	env := append(os.Environ(),
		"PATH="+filepath.Join(c.root, "bin")+":"+os.Getenv("PATH"),
		"KUBECONFIG="+filepath.Join(c.workdir, "kubeconfig"))
	for i, b := range blocks {
		start := time.Now()
		if b.onNodes {
			for _, h := range []string{"a", "b"} {
				if out, err := c.inHost(h, "bash", "-euo", "pipefail", "-c", b.script); err != nil {
					t.Fatalf("%s, section %s, block %d on host %s:\n%s\n%v\n%s", installDoc, b.section, i+1, h, b.script, err, out)
				}
			}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", b.script)
			cmd.Dir, cmd.Env = c.root, env
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("%s, section %s, block %d:\n%s\n%v\n%s", installDoc, b.section, i+1, b.script, err, out)
			}
		}
		t.Logf("%s: %s block %d done in %s", installDoc, b.section, i+1, time.Since(start).Round(time.Second))
	}

	checkComponents(t, c)
	ec, err := client.NewForConfig(c.config)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 3*time.Minute, "every example pod Running with an IP of its pool, held by a Bound claim", func(ctx context.Context) (bool, error) {
		pods, err := c.kube.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		if len(pods.Items) == 0 {
			return false, fmt.Errorf("no pods in %s", demoNS)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return false, fmt.Errorf("pod %s: %s, IP %q", p.Name, p.Status.Phase, p.Status.PodIP)
			}
			if err := claimHolds(ctx, ec, p); err != nil {
				return false, err
			}
		}
		return true, nil
	})
}

// claimHolds checks that pod p's IP is held by a Bound IPClaim of p on p's node, inside the
// claim's pool.
func claimHolds(ctx context.Context, ec *client.Clientset, p *corev1.Pod) error {
	ip, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil {
		return fmt.Errorf("pod %s: IP %q: %w", p.Name, p.Status.PodIP, err)
	}
	cl, err := ec.IPClaims().Get(ctx, v1alpha1.ClaimName(ip.String()), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("pod %s: claim of %s: %w", p.Name, ip, err)
	}
	if cl.Spec.Owner.Namespace != p.Namespace || cl.Spec.Owner.PodName != p.Name ||
		cl.Status.Phase != v1alpha1.PhaseBound || cl.Status.Node != p.Spec.NodeName {
		return fmt.Errorf("pod %s on %s: claim %s is %s/%s, %s on %q", p.Name, p.Spec.NodeName, cl.Name,
			cl.Spec.Owner.Namespace, cl.Spec.Owner.PodName, cl.Status.Phase, cl.Status.Node)
	}
	pool, err := ec.IPPools().Get(ctx, cl.Spec.Pool, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("pod %s: pool %s: %w", p.Name, cl.Spec.Pool, err)
	}
	prefix, err := netip.ParsePrefix(pool.Spec.CIDR)
	if err != nil || !prefix.Contains(ip) {
		return fmt.Errorf("pod %s: IP %s outside pool %s (%s)", p.Name, ip, pool.Name, pool.Spec.CIDR)
	}
	return nil
}
