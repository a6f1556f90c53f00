package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/client"
)

// hostKeys are the simulated hosts of hack/cluster/lib.sh (HOSTS).
var hostKeys = []string{"a", "b"}

// checkNothingLeftBehind deletes every workload namespace and checks that the ecloud datapath
// and IPAM let go of everything: no IPClaim of theirs; on either host, no pod port on br-int and
// no pod veth but those of ecloud's own pod-network pods in kube-system.
func checkNothingLeftBehind(t *testing.T, c *cluster, namespaces ...string) {
	ctx := context.Background()
	for _, ns := range namespaces {
		if err := c.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("delete namespace %s: %v", ns, err)
		}
	}
	for _, ns := range namespaces {
		poll(t, 3*time.Minute, "namespace "+ns+" gone", func(ctx context.Context) (bool, error) {
			_, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, fmt.Errorf("namespace %s still there (%v)", ns, err)
		})
	}
	ec, err := client.NewForConfig(c.config)
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for _, ns := range namespaces {
		deleted[ns] = true
	}
	poll(t, 2*time.Minute, "no IPClaim of the deleted namespaces left", func(ctx context.Context) (bool, error) {
		claims, err := ec.IPClaims().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var left []string
		for _, cl := range claims.Items {
			if !deleted[cl.Spec.Owner.Namespace] {
				continue // ecloud's own pods in kube-system
			}
			left = append(left, fmt.Sprintf("%s (pool %s, %s/%s, %s)", cl.Name, cl.Spec.Pool, cl.Spec.Owner.Namespace, cl.Spec.Owner.PodName, cl.Status.Phase))
		}
		if len(left) > 0 {
			return false, fmt.Errorf("claims left: %s", strings.Join(left, ", "))
		}
		return true, nil
	})
	hosts := hostKeys
	if c.guestNodeName() != "" {
		hosts = append(hosts[:len(hosts):len(hosts)], guestKey)
	}
	for _, h := range hosts {
		poll(t, 2*time.Minute, "no pod port or veth of the deleted namespaces on host "+h, func(context.Context) (bool, error) {
			out, err := c.inHost(h, "ovs-vsctl", "--format=csv", "--data=bare", "--no-headings", "--columns=name,external_ids",
				"find", "Port", "external_ids:ecloud-role=pod")
			if err != nil {
				return false, err
			}
			var left []string
			kept := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				name, ids, ok := strings.Cut(l, ",")
				if !ok {
					continue
				}
				ns := ""
				for _, kv := range strings.Fields(ids) {
					if v, ok := strings.CutPrefix(kv, "ecloud-pod-namespace="); ok {
						ns = v
					}
				}
				if deleted[ns] {
					left = append(left, fmt.Sprintf("OVS port %s (%s)", name, ids))
				} else {
					kept[name] = true
				}
			}
			out, err = c.inHost(h, "ip", "-o", "link", "show", "type", "veth")
			if err != nil {
				return false, err
			}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				// "7: ecv0123@if2: <...>"; eth0, the host's NIC (a veth into the datacenter bridge), stays.
				f := strings.Fields(l)
				if len(f) < 2 {
					continue
				}
				name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
				if name != "eth0" && !kept[name] {
					left = append(left, "veth "+name)
				}
			}
			if len(left) > 0 {
				return false, fmt.Errorf("left on host %s: %s", h, strings.Join(left, "; "))
			}
			return true, nil
		})
	}
}

// guestKey is inHost's key for the guest node.
const guestKey = "g"

// inHost runs a command in host key's network and mount namespaces (its own /run, where its
// Open vSwitch sockets are), like hack/cluster/lib.sh's in_host; on the guest node (guestKey)
// through its exec endpoint.
func (c *cluster) inHost(key string, args ...string) (string, error) {
	if key == guestKey {
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		return c.guestExec(strings.Join(quoted, " "))
	}
	pid, err := os.ReadFile(filepath.Join(c.workdir, "state", "anchor-"+key+".pid"))
	if err != nil {
		return "", fmt.Errorf("host %s: %w", key, err)
	}
	cmd := exec.Command("nsenter", append([]string{"--target", strings.TrimSpace(string(pid)), "--mount", "--net", "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("host %s: %s: %w: %s", key, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
