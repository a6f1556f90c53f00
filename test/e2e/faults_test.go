package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
)

// TestFaultMatrix runs the fault matrix on the local cluster (ECLOUD_CHAOS=1, make chaos; make
// test runs it after TestLocalCluster, on the same cluster). Each fault prints one figure line
// (chaos NAME: key=value ...) of what was lost and how long recovery took, asserts that nothing
// was, and leaves the cluster as it found it:
//
//   - netd-kill: SIGKILL netd while 30 pods start on its node;
//   - scheduler-leader: SIGKILL the ecloud-scheduler leader during a rolling update;
//   - apiserver-down: the apiserver stopped for 60 s while pods talk across the datacenters;
//   - node-death: a whole node dies, its Node is deleted, a sticky StatefulSet pod moves;
//   - relay-stop: the location relay a netd follows hangs (SIGSTOP) while a pod starts elsewhere;
//   - odin-outage: the Odin receiver down (ECLOUD_CHAOS_ODIN_OUTAGE, default 5m) while a node
//     agent restarts; it runs alongside the others (its node agent lives on the first dc-a host).
func TestFaultMatrix(t *testing.T) {
	if os.Getenv("ECLOUD_CHAOS") != "1" {
		t.Skip("the fault matrix on the local cluster runs with ECLOUD_CHAOS=1 (make chaos; make test runs it after the e2e)")
	}
	c := localCluster(t)
	outage := 5 * time.Minute
	if v := os.Getenv("ECLOUD_CHAOS_ODIN_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("ECLOUD_CHAOS_ODIN_OUTAGE=%q: want a positive duration such as 5m", v)
		}
		outage = d
	}
	only := os.Getenv("ECLOUD_CHAOS_ONLY") // comma-separated fault names; empty runs all
	run := func(name string) bool { return only == "" || strings.Contains(","+only+",", ","+name+",") }
	start := time.Now()
	var odin *odinFault
	if run("odin-outage") {
		odin = startOdinFault(t, c)
	}
	t.Run("faults", func(t *testing.T) {
		if odin != nil {
			t.Run("odin-outage", func(t *testing.T) {
				t.Parallel()
				odin.run(t, outage)
			})
		}
		t.Run("serial", func(t *testing.T) {
			t.Parallel()
			for _, f := range []struct {
				name string
				fn   func(*testing.T, *cluster)
			}{
				{"netd-kill", faultNetdKill},
				{"scheduler-leader", faultSchedulerLeader},
				{"apiserver-down", faultAPIServerDown},
				{"node-death", faultNodeDeath},
				{"relay-stop", faultRelayStop},
			} {
				if run(f.name) {
					t.Run(f.name, func(t *testing.T) { f.fn(t, c) })
				}
			}
		})
	})
	t.Logf("fault matrix done in %s", time.Since(start).Round(time.Second))
}

// figure prints a fault's figure line, "chaos NAME: k=v k=v ...", on stdout (where make chaos and
// CI logs show it unindented) and in the test's log.
func figure(t *testing.T, name string, kv ...any) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "chaos %s:", name)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if f, ok := v.(float64); ok {
			v = strconv.FormatFloat(f, 'f', 1, 64)
		}
		fmt.Fprintf(&b, " %v=%v", kv[i], v)
	}
	fmt.Println(b.String())
	t.Log(b.String())
}

// spareHost is lib.sh's SPARE_HOST: host.sh add starts it on the running cluster.
const (
	spareHost = "c"
	spareNode = "dc-a-node-1"
)

// podProcesses lists the processes of pod uid (its cgroup under the kubelet's cgroupfs tree is
// pod<uid>) whose command name is comm; with comm "" every process but the sandbox's pause.
func podProcesses(uid types.UID, comm string) ([]int, error) {
	procs, err := filepath.Glob("/proc/[0-9]*/cgroup")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		cg, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(cg), "/pod"+string(uid)+"/") {
			continue
		}
		dir := filepath.Dir(p)
		name, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil {
			continue
		}
		n := strings.TrimSpace(string(name))
		if (comm == "" && n != "pause") || (comm != "" && n == comm) {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// killPodProcess SIGKILLs the process comm of pod p (a container's main process); it fails when
// there is none.
func killPodProcess(t *testing.T, p *corev1.Pod, comm string) {
	t.Helper()
	signalPodProcess(t, p, comm, syscall.SIGKILL)
}

// signalPodProcess sends sig to every process comm of pod p.
func signalPodProcess(t *testing.T, p *corev1.Pod, comm string, sig syscall.Signal) {
	t.Helper()
	pids, err := podProcesses(p.UID, comm)
	if err != nil || len(pids) == 0 {
		t.Fatalf("no process %q of pod %s/%s (%s): %v", comm, p.Namespace, p.Name, p.UID, err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatalf("%v to %s (pid %d) of pod %s/%s: %v", sig, comm, pid, p.Namespace, p.Name, err)
		}
	}
	t.Logf("sent %v to %s (pids %v) of pod %s/%s on %s", sig, comm, pids, p.Namespace, p.Name, p.Spec.NodeName)
}

// podNetns opens the network namespace of pod uid (through one of its processes).
func podNetns(uid types.UID) (*os.File, error) {
	pids, err := podProcesses(uid, "")
	if err != nil {
		return nil, err
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("no process of pod %s", uid)
	}
	return os.Open(fmt.Sprintf("/proc/%d/ns/net", pids[0]))
}

// componentPod returns the kube-system pod of app.kubernetes.io/name=app on node ("" = any).
func componentPod(ctx context.Context, c *cluster, app, node string) (*corev1.Pod, error) {
	list, err := c.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + app})
	if err != nil {
		return nil, err
	}
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp == nil && (node == "" || p.Spec.NodeName == node) {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no %s pod on %q", app, node)
}

// chaosNamespace creates a namespace for one fault; checkNothingLeftBehind removes it at the end.
func chaosNamespace(t *testing.T, c *cluster, fault string) string {
	t.Helper()
	ns := fmt.Sprintf("chaos-%s-%d", fault, time.Now().Unix())
	if _, err := c.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

// bareWorkload is a workload pod bound to node (no scheduler), without a readiness probe.
func bareWorkload(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "chaos"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{
				Name: "workload", Image: "ecloud/workload:dev", ImagePullPolicy: corev1.PullIfNotPresent,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
		},
	}
}

// podPort is a pod's port on a host's br-int (netd's external_ids).
type podPort struct{ name, namespace, pod, uid string }

// podPorts lists the pod ports on host h's br-int.
func podPorts(c *cluster, h string) ([]podPort, error) {
	out, err := c.inHost(h, "ovs-vsctl", "--format=csv", "--data=bare", "--no-headings", "--columns=name,external_ids",
		"find", "Port", "external_ids:ecloud-role=pod")
	if err != nil {
		return nil, err
	}
	var ports []podPort
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		name, ids, ok := strings.Cut(l, ",")
		if !ok {
			continue
		}
		p := podPort{name: name}
		for _, kv := range strings.Fields(ids) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "ecloud-pod-namespace":
				p.namespace = v
			case "ecloud-pod-name":
				p.pod = v
			case "ecloud-pod-uid":
				p.uid = v
			}
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// hostVeths lists the veths of host h but its NIC (eth0).
func hostVeths(c *cluster, h string) ([]string, error) {
	out, err := c.inHost(h, "ip", "-o", "link", "show", "type", "veth")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name != "eth0" {
			names = append(names, name)
		}
	}
	return names, nil
}

// datapathAudit compares, on one node, the pods of a namespace with their IPClaims, the pod ports
// on br-int and the host's veths.
type datapathAudit struct {
	pods, running, duplicateIPs, leakedPorts, leakedVeths, leakedClaims, missing int
	problems                                                                     []string
}

func (a *datapathAudit) problem(format string, args ...any) {
	a.problems = append(a.problems, fmt.Sprintf(format, args...))
}

// auditNode checks node (host key h) for namespace ns: every pod Running with an IP no other pod
// of the cluster has; exactly one claim per pod, Bound to node with the pod's IP and UID; one
// br-int port per pod; and no veth on the host that is not a pod port.
func auditNode(ctx context.Context, c *cluster, ns, node, h string) (*datapathAudit, error) {
	a := &datapathAudit{}
	all, err := c.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	ipOwners := map[string][]string{}
	mine := map[string]*corev1.Pod{}
	for i := range all.Items {
		p := &all.Items[i]
		if p.Spec.HostNetwork || p.Status.PodIP == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			if p.Namespace == ns {
				mine[p.Name] = p
			}
			continue
		}
		ipOwners[p.Status.PodIP] = append(ipOwners[p.Status.PodIP], p.Namespace+"/"+p.Name)
		if p.Namespace == ns {
			mine[p.Name] = p
		}
	}
	a.pods = len(mine)
	for _, p := range mine {
		if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			a.running++
		}
		if owners := ipOwners[p.Status.PodIP]; p.Status.PodIP != "" && len(owners) > 1 {
			a.duplicateIPs++
			a.problem("IP %s held by %v", p.Status.PodIP, owners)
		}
	}
	ec, err := client.NewForConfig(c.config)
	if err != nil {
		return nil, err
	}
	claims, err := ec.IPClaims().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	claimOf := map[string]*v1alpha1.IPClaim{}
	for i := range claims.Items {
		cl := &claims.Items[i]
		if cl.Spec.Owner.Namespace != ns {
			continue
		}
		p := mine[cl.Spec.Owner.PodName]
		switch {
		case p == nil:
			a.leakedClaims++
			a.problem("claim %s (%s) of missing pod %s", cl.Name, cl.Spec.IP, cl.Spec.Owner.PodName)
		case claimOf[p.Name] != nil:
			a.leakedClaims++
			a.problem("second claim %s for pod %s (first %s)", cl.Name, p.Name, claimOf[p.Name].Name)
		case cl.Status.Phase != v1alpha1.PhaseBound || cl.Status.Node != node || cl.Spec.IP != p.Status.PodIP || cl.Status.PodUID != p.UID:
			a.leakedClaims++
			a.problem("claim %s: %s on %q, IP %s uid %s; pod %s has IP %s uid %s", cl.Name, cl.Status.Phase, cl.Status.Node, cl.Spec.IP, cl.Status.PodUID, p.Name, p.Status.PodIP, p.UID)
		default:
			claimOf[p.Name] = cl
		}
	}
	ports, err := podPorts(c, h)
	if err != nil {
		return nil, err
	}
	portNames := map[string]bool{}
	portOf := map[string]bool{}
	for _, pp := range ports {
		portNames[pp.name] = true
		if pp.namespace != ns {
			continue
		}
		if p := mine[pp.pod]; p == nil || string(p.UID) != pp.uid || portOf[pp.pod] {
			a.leakedPorts++
			a.problem("port %s of pod %s (uid %s)", pp.name, pp.pod, pp.uid)
			continue
		}
		portOf[pp.pod] = true
	}
	veths, err := hostVeths(c, h)
	if err != nil {
		return nil, err
	}
	vethNames := map[string]bool{}
	for _, v := range veths {
		vethNames[v] = true
		if !portNames[v] {
			a.leakedVeths++
			a.problem("veth %s is no pod port", v)
		}
	}
	for _, pp := range ports {
		if pp.namespace == ns && portOf[pp.pod] && !vethNames[pp.name] {
			a.missing++
			a.problem("port %s of pod %s has no veth", pp.name, pp.pod)
		}
	}
	for name := range mine {
		if claimOf[name] == nil {
			a.missing++
			a.problem("pod %s has no Bound claim", name)
		}
		if !portOf[name] {
			a.missing++
			a.problem("pod %s has no port on %s's br-int", name, node)
		}
	}
	return a, nil
}

func since(t0 time.Time) float64 { return time.Since(t0).Seconds() }

// doneOr is a poll condition's answer: done when ok, else not yet because of err.
func doneOr(ok bool, err error) (bool, error) {
	if ok {
		return true, nil
	}
	return false, err
}
