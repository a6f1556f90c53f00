package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/kubectl-ecloud/commands"
	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/test/harness"
)

// kubectlEcloud runs the kubectl-ecloud command line in this process against the harness
// apiserver and returns its output and exit code.
func kubectlEcloud(t *testing.T, cp *harness.ControlPlane, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := commands.NewRoot(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(append([]string{"--kubeconfig", cp.Kubeconfig}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	ctx, cancel := context.WithTimeout(cp.Ctx, 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err != nil {
		errOut.WriteString(err.Error())
	}
	t.Logf("kubectl ecloud %s -> %d\n%s%s", strings.Join(args, " "), commands.ExitCode(err), out.String(), errOut.String())
	return out.String() + errOut.String(), commands.ExitCode(err)
}

func kubectlEcloudJSON(t *testing.T, cp *harness.ControlPlane, into any, args ...string) {
	t.Helper()
	out, code := kubectlEcloud(t, cp, append(args, "-o", "json")...)
	if code != commands.ExitOK {
		t.Fatalf("exit code %d: %s", code, out)
	}
	if err := json.Unmarshal([]byte(out), into); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
}

// TestKubectlEcloudPools: pools, ip and why against the real scheduler with the IPPool plugin:
// pool-a (dc-a) and pool-b (dc-b) with 2 IPs each, usable by namespace shop.
func TestKubectlEcloudPools(t *testing.T) {
	cp := startIPPoolScheduler(t, 2, "shop")
	// One at a time: each pod is bound (its claim written) before the next is created.
	for i := range 2 {
		name := fmt.Sprintf("a%d", i)
		if _, err := cp.Kube.CoreV1().Pods("shop").Create(cp.Ctx, ipPoolPod("shop", name, "pool-a"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 90*time.Second, func() (bool, error) {
			p, err := cp.Kube.CoreV1().Pods("shop").Get(cp.Ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.Spec.NodeName != "", fmt.Errorf("pod %s: %s", name, unschedulableMessage(p))
		}, "pod %s bound", name)
	}
	// A third pod of shop finds pool-a exhausted; a pod of namespace other may not use pool-a.
	for _, p := range []*v1.Pod{ipPoolPod("shop", "a2", "pool-a"), ipPoolPod("other", "o1", "pool-a")} {
		if _, err := cp.Kube.CoreV1().Pods(p.Namespace).Create(cp.Ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 90*time.Second, func() (bool, error) {
		for _, id := range [][2]string{{"shop", "a2"}, {"other", "o1"}} {
			p, err := cp.Kube.CoreV1().Pods(id[0]).Get(cp.Ctx, id[1], metav1.GetOptions{})
			if err != nil || unschedulableMessage(p) == "" {
				return false, err
			}
		}
		return true, nil
	}, "the third pod and the other namespace's pod unschedulable")

	t.Run("pools", func(t *testing.T) {
		var r report.PoolsReport
		kubectlEcloudJSON(t, cp, &r, "pools", "--datacenters", "dc-a,dc-b")
		got := map[string]report.PoolUsage{}
		for _, p := range r.Pools {
			got[p.Name] = p
		}
		a, b := got["pool-a"], got["pool-b"]
		if a.Total != 2 || a.Used+a.Reserved != 2 || a.Free != 0 || a.ByDatacenter["dc-a"] != 2 || strings.Join(a.Reaches, ",") != "dc-a" || a.Status != v1alpha1.PoolLowOnIPs {
			t.Errorf("pool-a %+v, want 2 of 2 held in dc-a, none free", a)
		}
		if b.Total != 2 || b.Free != 2 || strings.Join(b.Reaches, ",") != "dc-b" || b.Status != v1alpha1.PoolReady {
			t.Errorf("pool-b %+v, want 2 free, reaching dc-b", b)
		}
		out, code := kubectlEcloud(t, cp, "pools")
		if code != commands.ExitOK || !strings.Contains(out, "Warning: pool pool-a: exhausted, 0 of 2 IPs free") || strings.Contains(out, "pool pool-b:") {
			t.Errorf("table (exit %d) should warn about pool-a only:\n%s", code, out)
		}
	})

	t.Run("ip", func(t *testing.T) {
		pod, err := cp.Kube.CoreV1().Pods("shop").Get(cp.Ctx, "a0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		claims, err := cp.Ecloud.IPClaims().List(cp.Ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ip string
		for _, c := range claims.Items {
			if c.Spec.Owner.PodName == "a0" {
				ip = c.Spec.IP
			}
		}
		var r report.IPReport
		kubectlEcloudJSON(t, cp, &r, "ip", ip)
		if !r.Held || r.Pool != "pool-a" || r.Owner == nil || r.Owner.PodName != "a0" || r.Mode != string(v1alpha1.ModeEphemeral) ||
			r.Node != pod.Spec.NodeName || r.Since == nil || r.ReleaseNow || !strings.Contains(r.FreedBy, "pod shop/a0 going away") {
			t.Errorf("ip %s: %+v, want held by shop/a0 on %s, ephemeral, kept", ip, r, pod.Spec.NodeName)
		}
		var free report.IPReport
		kubectlEcloudJSON(t, cp, &free, "ip", "10.21.0.10")
		if free.Held || free.Pool != "pool-b" {
			t.Errorf("10.21.0.10: %+v, want free in pool-b", free)
		}
		if out, code := kubectlEcloud(t, cp, "ip", "not-an-ip"); code != commands.ExitUsage {
			t.Errorf("bad IP: exit %d, want %d: %s", code, commands.ExitUsage, out)
		}
	})

	t.Run("why", func(t *testing.T) {
		for _, tc := range []struct{ ns, pod, want string }{
			{"other", "o1", `namespace "other" is not allowed to use IP pool "pool-a"`},
			{"shop", "a2", "pool-a"},
		} {
			var r report.WhyReport
			kubectlEcloudJSON(t, cp, &r, "why", tc.pod, "-n", tc.ns)
			found := false
			for _, f := range r.Refusals {
				found = found || (f.Plugin == report.PluginIPPool && f.Pool == "pool-a" && strings.Contains(f.Plain, tc.want))
			}
			if r.State != "Unschedulable" || !found {
				t.Errorf("why %s/%s: %+v, want an IPPool refusal naming pool-a (%q)", tc.ns, tc.pod, r, tc.want)
			}
		}
		out, code := kubectlEcloud(t, cp, "why", "o1", "-n", "other")
		if code != commands.ExitOK || !strings.Contains(out, "- IPPool: namespace \"other\" is not allowed to use IP pool \"pool-a\"") {
			t.Errorf("table (exit %d):\n%s", code, out)
		}
		if out, code := kubectlEcloud(t, cp, "why", "nope", "-n", "shop"); code != commands.ExitFailed || !strings.Contains(out, "not found") {
			t.Errorf("missing pod: exit %d, want %d: %s", code, commands.ExitFailed, out)
		}
	})
}

// TestKubectlEcloudSpread: spread and why against the real scheduler with DualDatacenter, the
// Deployment and ReplicaSet controllers and the deletion-cost controller.
func TestKubectlEcloudSpread(t *testing.T) {
	cp := startDualDC(t, config.OutageHold)
	createSettled(t, cp, 4, 2)
	spreadArgs := []string{"spread", "deployment/web", "-n", dualDCNamespace, "--datacenters", "dc-a,dc-b"}
	var r report.SpreadReport
	harness.Eventually(t, 90*time.Second, func() (bool, error) {
		kubectlEcloudJSON(t, cp, &r, spreadArgs...)
		for _, p := range r.Pods {
			if p.Cost != fmt.Sprint(p.Expected) {
				return false, fmt.Errorf("pod %s cost %q, rule says %d", p.Pod, p.Cost, p.Expected)
			}
		}
		return len(r.Pods) == 4, fmt.Errorf("%d pods", len(r.Pods))
	}, "the controller's deletion costs on all 4 pods")
	if r.Workload != "deployment shop/web" || r.Desired != 4 || r.Total["dc-a"] != 2 || r.Total["dc-b"] != 2 || len(r.Revisions) != 1 || r.Revisions[0].Revision != r.NextRevision {
		t.Errorf("spread %+v, want 2+2 pods of one revision", r)
	}
	for _, n := range r.Next {
		if !n.Allowed {
			t.Errorf("next pod refused in %s: %s", n.Datacenter, n.Reason)
		}
	}

	// dc-b cordoned, outage policy Hold: a 5th pod goes to dc-a (skew 1), a 6th waits.
	for _, n := range []string{"dc-b-node-0", "dc-b-node-1", "dc-b-node-2"} {
		cp.SetUnschedulable(t, n, true)
	}
	scaleDeployment(t, cp, "web", 6)
	var pending string
	harness.Eventually(t, 60*time.Second, func() (bool, error) {
		for _, p := range listPods(t, cp, "app=web") {
			if p.Spec.NodeName == "" && unschedulableMessage(p) != "" {
				pending = p.Name
				return true, nil
			}
		}
		return false, nil
	}, "a pod of web Pending")
	kubectlEcloudJSON(t, cp, &r, spreadArgs...)
	if len(r.Out) != 1 || r.Out[0] != "dc-b" || r.Total["dc-a"] != 3 || r.Waiting != 1 || r.Next[0].Allowed || r.Next[1].Allowed {
		t.Errorf("spread with dc-b out: %+v, want 3+2, dc-b out, nothing allowed", r)
	}
	var why report.WhyReport
	kubectlEcloudJSON(t, cp, &why, "why", pending, "-n", dualDCNamespace)
	found := false
	for _, f := range why.Refusals {
		found = found || (f.Plugin == report.PluginDualDatacenter && strings.Contains(f.Plain, "more than 1 ahead") && strings.Contains(f.Plain, "outage policy is Hold"))
	}
	if !found {
		t.Errorf("why %s: %+v, want the DualDatacenter skew refusal under outage policy Hold", pending, why)
	}
}
