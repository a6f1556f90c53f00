package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/kubectl-ecloud/report"
)

// kubectlEcloud runs `kubectl ecloud ARGS` as a user would: bin/kubectl finds the plugin
// bin/kubectl-ecloud (make build) on the PATH and hands it every flag after the plugin's name.
func kubectlEcloud(t *testing.T, c *cluster, args ...string) ([]byte, error) {
	t.Helper()
	bin := filepath.Join(c.root, "bin")
	if _, err := os.Stat(filepath.Join(bin, "kubectl-ecloud")); err != nil {
		t.Fatalf("the plugin is not built (make build): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), append([]string{"ecloud", "--kubeconfig", filepath.Join(c.workdir, "kubeconfig")}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("kubectl ecloud %s:\n%s%s", strings.Join(args, " "), out, stderr.String())
	return out, err
}

// checkKubectlEcloud: trace from the dc-a pod to the dc-b pod names the tunnel to dc-b's node, and
// why on a pod its pool refuses names the pool.
func checkKubectlEcloud(t *testing.T, c *cluster, ns string, pods map[string]*corev1.Pod, nodes map[string]string) {
	ctx := context.Background()
	t.Run("trace dc-a pod to dc-b pod", func(t *testing.T) {
		out, err := kubectlEcloud(t, c, "-n", ns, "trace", "dc-a", pods["dc-b"].Status.PodIP, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var r report.TraceReport
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		if r.Verdict != nodeapi.TraceTunnel || r.Out == nil || r.Out.Node != nodes["dc-b"] || r.Node != nodes["dc-a"] || r.TunnelDatacenter != "dc-b" {
			t.Errorf("trace: verdict %q out %+v on %s, want the tunnel to %s (dc-b) from %s", r.Verdict, r.Out, r.Node, nodes["dc-b"], nodes["dc-a"])
		}
		if r.DestinationOwner != ns+"/dc-b" {
			t.Errorf("destination owner %q, want %s/dc-b", r.DestinationOwner, ns)
		}
		table, err := kubectlEcloud(t, c, "-n", ns, "trace", "dc-a", pods["dc-b"].Status.PodIP)
		if err != nil || !strings.Contains(string(table), "to node "+nodes["dc-b"]+" (dc-b)") {
			t.Errorf("trace table (%v) does not name the tunnel to %s (dc-b):\n%s", err, nodes["dc-b"], table)
		}
	})
	t.Run("why names the pool that refuses the pod", func(t *testing.T) {
		// pool-dc-a (manifests/examples) only serves namespace ecloud-demo.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "refused", Annotations: map[string]string{v1alpha1.AnnotationIPPools: "pool-dc-a"}},
			Spec:       corev1.PodSpec{SchedulerName: "ecloud-scheduler", Containers: []corev1.Container{{Name: "c", Image: "ecloud/workload:dev"}}},
		}
		if _, err := c.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.kube.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{}) }()
		poll(t, time.Minute, "kubectl ecloud why refused names pool-dc-a", func(context.Context) (bool, error) {
			out, err := kubectlEcloud(t, c, "-n", ns, "why", pod.Name, "-o", "json")
			if err != nil {
				return false, err
			}
			var r report.WhyReport
			if err := json.Unmarshal(out, &r); err != nil {
				return false, err
			}
			for _, f := range r.Refusals {
				if f.Plugin == report.PluginIPPool && f.Pool == "pool-dc-a" {
					return true, nil
				}
			}
			return false, nil
		})
	})
	t.Run("pools, ip and spread answer", func(t *testing.T) {
		var pools report.PoolsReport
		out, err := kubectlEcloud(t, c, "pools", "-o", "json")
		if err != nil || json.Unmarshal(out, &pools) != nil {
			t.Fatalf("pools: %v", err)
		}
		found := false
		for _, p := range pools.Pools {
			found = found || (p.Name == "pool-default" && p.Used+p.Reserved >= 2 && p.ByDatacenter["dc-a"] >= 1 && p.ByDatacenter["dc-b"] >= 1)
		}
		if !found {
			t.Errorf("pools: %+v, want pool-default holding IPs in dc-a and dc-b", pools.Pools)
		}
		var ip report.IPReport
		out, err = kubectlEcloud(t, c, "ip", pods["dc-b"].Status.PodIP, "-o", "json")
		if err != nil || json.Unmarshal(out, &ip) != nil {
			t.Fatalf("ip: %v", err)
		}
		var sp report.SpreadReport
		out, err = kubectlEcloud(t, c, "-n", "ecloud-demo", "spread", "deployment/stateless", "-o", "json")
		if err != nil || json.Unmarshal(out, &sp) != nil {
			t.Fatalf("spread: %v", err)
		}
		if sp.Total["dc-a"] < 1 || sp.Total["dc-b"] < 1 || len(sp.Next) != 2 {
			t.Errorf("spread of the demo deployment: %+v, want pods in dc-a and dc-b and a verdict per datacenter", sp)
		}
		if !ip.Held || ip.Owner == nil || ip.Owner.Namespace != ns || ip.Owner.PodName != "dc-b" || ip.Node != nodes["dc-b"] {
			t.Errorf("ip %s: %+v, want held by %s/dc-b on %s", pods["dc-b"].Status.PodIP, ip, ns, nodes["dc-b"])
		}
	})
}
