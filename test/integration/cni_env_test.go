package integration

// Test environment for the CNI tests: namespace "hosts", each with its own Open vSwitch
// (userspace datapath) and an in-process netd, joined by an underlay veth, and the
// ip-controller's location slice controller; pods are network
// namespaces plumbed by the real ecloud-cni binary. Everything is named ecni<id>-… and removed
// at cleanup, also when the test fails.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/controller/locationslices"
	"github.com/ecloud-io/ecloud/cni/netd"
	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/cni/ovs/ovstest"
	"github.com/ecloud-io/ecloud/test/harness"
	"github.com/ecloud-io/ecloud/test/prereq"
)

// buildCNIBinaries builds ecloud-cni and cnitool into dir.
func buildCNIBinaries(tb testing.TB, dir string) {
	tb.Helper()
	for _, pkg := range []string{"github.com/ecloud-io/ecloud/cni/cmd/ecloud-cni", "github.com/containernetworking/cni/cnitool"} {
		cmd := exec.Command("go", "build", "-o", dir+"/", pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("go build %s: %v: %s", pkg, err, out)
		}
	}
}

// skipUnlessCNIRoot ends the test when the datapath tests cannot run here: a failure naming what
// is missing under CI=true, a skip elsewhere (prereq.Missing).
func skipUnlessCNIRoot(tb testing.TB) {
	tb.Helper()
	ovstest.Require(tb)
	if _, err := exec.LookPath("ip"); err != nil {
		prereq.Missing(tb, "needs iproute2 (ip not on PATH)")
	}
}

func sh(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func shOut(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

func shOK(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// cniEnv is one apiserver with namespace hosts.
type cniEnv struct {
	tb    testing.TB
	cp    *harness.ControlPlane
	id    string // ecni<hex>
	dir   string // short state dir
	bins  string
	hosts []*cniHost
	pods  int
	mu    sync.Mutex

	tunnel ovs.TunnelType
	// datapath is every host's netd --datapath (default netdev: this kernel has no openvswitch
	// module, and the hosts' underlay sits on br-phy).
	datapath ovs.DatapathType
	// observePhase is netd's phase hook (benchmarks); pluginEnv is added to every plugin run.
	observePhase func(op, phase, containerID string, d time.Duration)
	pluginEnv    map[string]string
	// wrapSwitch, if set, wraps each host's OVS driver (to count what netd asks of OVS).
	wrapSwitch func(h *cniHost, sw ovs.Switch) ovs.Switch
}

// cniHost is one simulated node.
type cniHost struct {
	env     *cniEnv
	idx     int
	Node    string
	NS      string // netns name
	IP      string // underlay / tunnel endpoint
	OVS     *ovstest.Instance
	Socket  string
	BinDir  string
	ConfDir string
	cancel  context.CancelFunc
	done    chan error
	daemon  *netd.Daemon
}

// newCNIEnv starts hosts namespace hosts (joined by an underlay when there are two) with netd
// using the given tunnel type ("" = the default, VXLAN).
func newCNIEnv(tb testing.TB, hosts int, tunnel ovs.TunnelType, opts ...func(*cniEnv)) *cniEnv {
	tb.Helper()
	skipUnlessCNIRoot(tb)
	cp := harness.Start(tb)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	e := &cniEnv{tb: tb, cp: cp, id: "ecni" + hex.EncodeToString(b), tunnel: tunnel, datapath: ovs.Netdev}
	for _, o := range opts {
		o(e)
	}
	dir, err := os.MkdirTemp("/tmp", e.id+"-")
	if err != nil {
		tb.Fatal(err)
	}
	e.dir = dir
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	e.bins = filepath.Join(dir, "bin")
	buildCNIBinaries(tb, e.bins)
	// Cleanups run last-in first-out: netns removal is registered first so it runs last.
	tb.Cleanup(e.removeNetns)
	for i := 1; i <= hosts; i++ {
		e.hosts = append(e.hosts, e.addHost(i))
	}
	if hosts == 2 {
		e.underlay()
	}
	tb.Cleanup(func() {
		if tb.Failed() || os.Getenv("ECNI_DUMP") != "" {
			for _, h := range e.hosts {
				h.dump()
			}
		}
		if d, err := time.ParseDuration(os.Getenv("ECNI_HOLD")); err == nil && tb.Failed() {
			tb.Logf("holding the environment %s for debugging (ECNI_HOLD)", d)
			time.Sleep(d)
		}
	})
	// netd learns where the other hosts' IPs live from the ip-controller's IPLocationSlices.
	startLocationSlices(tb, cp, locationslices.Config{})
	for _, h := range e.hosts {
		h.startNetd()
	}
	return e
}

// dump logs the host's datapath state (on failure).
func (h *cniHost) dump() {
	run := func(args ...string) string {
		out, _ := exec.Command(args[0], args[1:]...).CombinedOutput()
		return string(out)
	}
	ctl := filepath.Join(h.OVS.Dir, "ovs-vswitchd.ctl")
	h.env.tb.Logf("=== %s (%s)\n%s\n%s\n%s\n%s\n%s\n%s", h.Node, h.NS,
		run("ovs-vsctl", "--db="+h.OVS.DB(), "show"),
		run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "unix:"+filepath.Join(h.OVS.Dir, "br-int.mgmt")),
		run("ovs-appctl", "-t", ctl, "ovs/route/show"),
		run("ovs-appctl", "-t", ctl, "tnl/arp/show"),
		run("ip", "-n", h.NS, "addr"),
		run("ip", "-n", h.NS, "route"))
}

// removeNetns deletes every netns and stray link of this env.
func (e *cniEnv) removeNetns() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], e.id+"-") {
			_ = shOK("ip", "netns", "del", f[0])
		}
	}
	for _, l := range []string{e.id + "-u1", e.id + "-u2"} {
		_ = shOK("ip", "link", "del", l)
	}
}

func (e *cniEnv) addHost(i int) *cniHost {
	tb := e.tb
	h := &cniHost{env: e, idx: i, Node: fmt.Sprintf("%s-node-%d", e.id, i), NS: fmt.Sprintf("%s-h%d", e.id, i), IP: fmt.Sprintf("172.31.254.%d", i)}
	sh(tb, "ip", "netns", "add", h.NS)
	sh(tb, "ip", "-n", h.NS, "link", "set", "lo", "up")
	hdir := filepath.Join(e.dir, fmt.Sprintf("h%d", i))
	inst, err := ovstest.Start(filepath.Join(hdir, "ovs"), h.NS)
	if err != nil {
		tb.Fatalf("start OVS for %s: %v", h.NS, err)
	}
	h.OVS = inst
	tb.Cleanup(inst.Stop)
	h.Socket = filepath.Join(hdir, "netd.sock")
	h.BinDir = filepath.Join(hdir, "bin")
	h.ConfDir = filepath.Join(hdir, "net.d")
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: h.Node},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: h.IP}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "Test"}}},
	}
	created, err := e.cp.Kube.CoreV1().Nodes().Create(e.cp.Ctx, node, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("create node %s: %v", h.Node, err)
	}
	if len(created.Status.Addresses) == 0 {
		created.Status = node.Status
		if _, err := e.cp.Kube.CoreV1().Nodes().UpdateStatus(e.cp.Ctx, created, metav1.UpdateOptions{}); err != nil {
			tb.Fatalf("node %s status: %v", h.Node, err)
		}
	}
	return h
}

// underlay joins the two hosts with a veth whose ends sit on each host's br-phy, which holds
// the tunnel endpoint IP (the OVS userspace-tunneling layout).
func (e *cniEnv) underlay() {
	tb := e.tb
	sh(tb, "ip", "link", "add", e.id+"-u1", "type", "veth", "peer", "name", e.id+"-u2")
	for _, h := range e.hosts {
		ul := fmt.Sprintf("%s-u%d", e.id, h.idx)
		sh(tb, "ip", "link", "set", ul, "netns", h.NS)
		// br-phy gets a MAC of its own (the veth's with another first octet): with the veth's, the
		// kernel would also take every frame for the host off the veth itself, and each packet
		// (tunnel packets included) would arrive twice.
		mac := strings.TrimSpace(sh(tb, "ip", "netns", "exec", h.NS, "cat", "/sys/class/net/"+ul+"/address"))
		first := "0a"
		if strings.HasPrefix(mac, "0a:") {
			first = "0e"
		}
		_, rest, _ := strings.Cut(mac, ":")
		v := []string{"ovs-vsctl", "--db=" + h.OVS.DB()}
		sh(tb, append(v, "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev", "fail-mode=standalone", "other_config:hwaddr="+first+":"+rest)...)
		sh(tb, append(v, "add-port", "br-phy", ul)...)
		sh(tb, "ip", "-n", h.NS, "link", "set", ul, "up")
		sh(tb, "ip", "-n", h.NS, "addr", "add", h.IP+"/24", "dev", "br-phy")
		sh(tb, "ip", "-n", h.NS, "link", "set", "br-phy", "up")
	}
}

// netdConfig is the host's daemon configuration.
func (h *cniHost) netdConfig() netd.Config {
	return netd.Config{
		NodeName: h.Node, Socket: h.Socket, HostNetNS: "/run/netns/" + h.NS,
		OVS:       ovs.Config{DB: h.OVS.DB(), RunDir: h.OVS.Dir},
		CNIBinDir: h.BinDir, CNIConfDir: h.ConfDir, PluginBinary: filepath.Join(h.env.bins, "ecloud-cni"),
		ResyncPeriod: 30 * time.Second, TunnelType: h.env.tunnel, Datapath: h.env.datapath,
	}
}

// startNetd runs the host's daemon in-process until stopNetd or the end of the test.
func (h *cniHost) startNetd() {
	tb := h.env.tb
	deps := netd.Deps{Kube: h.env.cp.Kube, Ecloud: h.env.cp.Ecloud, ObservePhase: h.env.observePhase}
	if h.env.wrapSwitch != nil {
		deps.Switch = h.env.wrapSwitch(h, ovs.NewExec(h.OVS.Config()))
	}
	d, err := netd.New(h.netdConfig(), deps)
	if err != nil {
		tb.Fatalf("netd for %s: %v", h.Node, err)
	}
	ctx, cancel := context.WithCancel(h.env.cp.Ctx)
	h.cancel, h.done = cancel, make(chan error, 1)
	h.daemon = d
	go func() { h.done <- d.Run(ctx) }()
	tb.Cleanup(h.stopNetd)
	harness.Eventually(tb, 20*time.Second, func() (bool, error) {
		select {
		case err := <-h.done:
			return false, fmt.Errorf("netd for %s exited: %v", h.Node, err)
		default:
		}
		// A blocked node (no openvswitch module for the system datapath) is as far as it gets.
		return d.Ready() || strings.Contains(d.NotReadyReason(), "kernel module"), nil
	}, "netd on %s ready", h.Node)
}

func (h *cniHost) stopNetd() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.env.tb.Errorf("netd on %s: %v", h.Node, err)
	}
	h.cancel = nil
}

// vsctl runs ovs-vsctl against the host's OVS.
func (h *cniHost) vsctl(args ...string) string {
	return sh(h.env.tb, append([]string{"ovs-vsctl", "--db=" + h.OVS.DB()}, args...)...)
}

// flows dumps br-int's flows.
func (h *cniHost) flows() []ovs.Flow {
	f, err := h.OVS.Switch().DumpFlows(context.Background(), "br-int")
	if err != nil {
		h.env.tb.Fatal(err)
	}
	return f
}

// pod is one simulated pod: a netns plumbed by the plugin.
type pod struct {
	Namespace, Name, UID string
	ContainerID          string
	NS                   string // netns name
	Host                 *cniHost
	IP                   string // after ADD, without prefix
	Result               map[string]any
}

func (p *pod) netnsPath() string { return "/run/netns/" + p.NS }

// newPod makes the pod's netns on host h (and the Pod object when annotations are given).
func (e *cniEnv) newPod(h *cniHost, name string, annotations map[string]string) *pod {
	e.mu.Lock()
	e.pods++
	n := e.pods
	e.mu.Unlock()
	p := &pod{Namespace: "ecni", Name: name, UID: fmt.Sprintf("uid-%s-%d", name, n), ContainerID: fmt.Sprintf("%s-ctr-%d", e.id, n), NS: fmt.Sprintf("%s-p%d", e.id, n), Host: h}
	sh(e.tb, "ip", "netns", "add", p.NS)
	if annotations != nil {
		e.ensureNamespace("ecni")
		obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: name, Annotations: annotations},
			Spec: corev1.PodSpec{NodeName: h.Node, Containers: []corev1.Container{{Name: "c", Image: "pause"}}}}
		if _, err := e.cp.Kube.CoreV1().Pods(p.Namespace).Create(e.cp.Ctx, obj, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
			e.tb.Fatalf("create pod %s: %v", name, err)
		}
	}
	return p
}

func (e *cniEnv) ensureNamespace(ns string) {
	_, err := e.cp.Kube.CoreV1().Namespaces().Create(e.cp.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		e.tb.Fatalf("create namespace %s: %v", ns, err)
	}
}

// netConf is the plugin's configuration as the runtime passes it.
func (h *cniHost) netConf(extra map[string]any) []byte {
	cfg := h.netdConfig()
	cfg.Default()
	c := map[string]any{"cniVersion": "1.1.0", "name": "ecloud", "type": "ecloud-cni", "socket": h.Socket, "mtu": cfg.MTU, "datapath": string(cfg.Datapath)} // as netd's conflist
	for k, v := range extra {
		c[k] = v
	}
	b, _ := json.Marshal(c)
	return b
}

// cniResult is one plugin run.
type cniResult struct {
	Stdout []byte
	Stderr string
	Err    error
	Code   uint // CNI error code, 0 on success
	Msg    string
}

// invoke runs the real plugin binary in the host's netns like a runtime would.
func (h *cniHost) invoke(command string, env map[string]string, stdin []byte) cniResult {
	// nsenter only switches the netns (ip netns exec also remounts /sys): closest to a runtime
	// that execs the plugin in the host's netns.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.NS, filepath.Join(h.env.bins, "ecloud-cni"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CNI_COMMAND=" + command, "CNI_PATH=" + h.env.bins}
	for _, m := range []map[string]string{h.env.pluginEnv, env} {
		for k, v := range m {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cniResult{Stdout: out.Bytes(), Stderr: errb.String(), Err: err}
	if err != nil {
		var e struct {
			Code uint   `json:"code"`
			Msg  string `json:"msg"`
		}
		_ = json.Unmarshal(out.Bytes(), &e)
		r.Code, r.Msg = e.Code, e.Msg
		r.Err = fmt.Errorf("%s: %v: stdout %s stderr %s", command, err, out.String(), errb.String())
	}
	return r
}

func (p *pod) env(withNetns bool) map[string]string {
	m := map[string]string{
		"CNI_CONTAINERID": p.ContainerID, "CNI_IFNAME": "eth0",
		"CNI_ARGS": fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s", p.Namespace, p.Name, p.ContainerID, p.UID),
	}
	if withNetns {
		m["CNI_NETNS"] = p.netnsPath()
	}
	return m
}

// add runs ADD and records the IP.
func (p *pod) add(tb testing.TB) cniResult {
	tb.Helper()
	r := p.Host.invoke("ADD", p.env(true), p.Host.netConf(nil))
	if r.Err != nil {
		tb.Fatalf("ADD %s/%s on %s: %v", p.Namespace, p.Name, p.Host.Node, r.Err)
	}
	p.parseResult(tb, r.Stdout)
	return r
}

func (p *pod) parseResult(tb testing.TB, stdout []byte) {
	tb.Helper()
	if err := json.Unmarshal(stdout, &p.Result); err != nil {
		tb.Fatalf("ADD result %s: %v", stdout, err)
	}
	ips, _ := p.Result["ips"].([]any)
	if len(ips) != 1 {
		tb.Fatalf("ADD result has %d IPs: %s", len(ips), stdout)
	}
	addr := ips[0].(map[string]any)["address"].(string)
	ip, _, err := net.ParseCIDR(addr)
	if err != nil {
		tb.Fatalf("ADD result address %q: %v", addr, err)
	}
	p.IP = ip.String()
}

// del runs DEL (with or without the netns, as the runtime's first and second DEL).
func (p *pod) del(tb testing.TB, withNetns bool) cniResult {
	tb.Helper()
	stdin := p.Host.netConf(nil)
	if withNetns && p.Result != nil {
		stdin = p.Host.netConf(map[string]any{"prevResult": p.Result})
	}
	r := p.Host.invoke("DEL", p.env(withNetns), stdin)
	if r.Err != nil {
		tb.Fatalf("DEL %s/%s (netns %v): %v", p.Namespace, p.Name, withNetns, r.Err)
	}
	return r
}

// ping from inside netns ns.
func ping(ns, ip string) error {
	return shOK("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", ip)
}

// inNetns runs fn on a thread inside the named netns (sockets it opens stay there).
func inNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	defer func() { _ = netns.Set(orig) }()
	return fn()
}

// tcpEcho listens on dst:port in dstNS, dials from srcNS and checks an echoed payload.
func tcpEcho(srcNS, dstNS, dstIP string) error {
	var ln net.Listener
	if err := inNetns(dstNS, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(dstIP, "7777"))
		return err
	}); err != nil {
		return fmt.Errorf("listen in %s: %w", dstNS, err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				_, _ = c.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	var conn net.Conn
	if err := inNetns(srcNS, func() (err error) {
		conn, err = net.DialTimeout("tcp4", net.JoinHostPort(dstIP, "7777"), 5*time.Second)
		return err
	}); err != nil {
		return fmt.Errorf("connect from %s to %s: %w", srcNS, dstIP, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	payload := bytes.Repeat([]byte("ecloud-"), 20000) // 140 KB: many full-size segments
	go func() { _, _ = conn.Write(payload) }()
	got := make([]byte, len(payload))
	if _, err := ioReadFull(conn, got); err != nil {
		return fmt.Errorf("echo from %s: %w", dstIP, err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo from %s differs", dstIP)
	}
	return nil
}

func ioReadFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// createPool creates an IPPool.
func (e *cniEnv) createPool(name, cidr, gw string, vlan int32, def bool, namespaces ...string) {
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPPoolSpec{CIDR: cidr, Gateway: gw, VLAN: vlan, Default: def, Namespaces: namespaces}}
	if _, err := e.cp.Ecloud.IPPools().Create(e.cp.Ctx, p, metav1.CreateOptions{}); err != nil {
		e.tb.Fatalf("create pool %s: %v", name, err)
	}
}

// podPorts lists the pod ports on a host's br-int.
func (h *cniHost) podPorts() []ovs.Port {
	ports, err := h.OVS.Switch().ListPorts(context.Background(), "br-int", map[string]string{"ecloud-role": "pod"})
	if err != nil {
		h.env.tb.Fatal(err)
	}
	return ports
}

// hostVeths lists the ecloud veths in the host netns.
func (h *cniHost) hostVeths() []string {
	out := sh(h.env.tb, "ip", "-n", h.NS, "-o", "link", "show")
	var v []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], "ecv") {
			v = append(v, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	return v
}

// podFlows lists the flows that mention a single pod IP starting with ipPrefix ("10.61.0.");
// the per-pool flows (CIDR matches) do not count.
func (h *cniHost) podFlows(ipPrefix string) []string {
	re := regexp.MustCompile(`(nw_dst|nw_src|arp_spa)=` + regexp.QuoteMeta(ipPrefix) + `\d+(,|$)`)
	var out []string
	for _, f := range h.flows() {
		if re.MatchString(f.Match) {
			out = append(out, f.String())
		}
	}
	return out
}
