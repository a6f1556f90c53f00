package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ecloud-io/ecloud/cni/ovs/ovstest"
	"github.com/ecloud-io/ecloud/test/harness"
)

// Addresses of the link between the benchmark (root netns, where the apiserver listens on
// loopback) and the namespace host the real netd runs in.
const (
	scaleRootIP = "169.254.90.1"
	scaleHostIP = "169.254.90.2"
)

// scaleHost is the namespace host of the real netd: its netns, its OVS, a relay to the
// apiserver, and the netd process when running.
type scaleHost struct {
	e          *scaleEnv
	ns         string
	node       int // index of the host's Node
	ovs        *ovstest.Instance
	kubeconfig string
	metrics    string // netd's metrics address, reachable from the benchmark
	bin        string
	cmd        *exec.Cmd
	exited     chan error
	log        string
}

// newScaleHost makes the netns, its OVS and the relay, once per run.
func (e *scaleEnv) newScaleHost(node int) *scaleHost {
	tb := e.tb
	h := &scaleHost{e: e, ns: e.id + "-h", node: node, metrics: scaleHostIP + ":9462"}
	sh(tb, "ip", "netns", "add", h.ns)
	tb.Cleanup(func() { _ = shOK("ip", "netns", "del", h.ns) })
	sh(tb, "ip", "-n", h.ns, "link", "set", "lo", "up")
	root, peer := e.id+"-r", e.id+"-p"
	sh(tb, "ip", "link", "add", root, "type", "veth", "peer", "name", peer)
	tb.Cleanup(func() { _ = shOK("ip", "link", "del", root) })
	sh(tb, "ip", "link", "set", peer, "netns", h.ns)
	sh(tb, "ip", "addr", "add", scaleRootIP+"/30", "dev", root)
	sh(tb, "ip", "link", "set", root, "up")
	sh(tb, "ip", "-n", h.ns, "addr", "add", scaleHostIP+"/30", "dev", peer)
	sh(tb, "ip", "-n", h.ns, "link", "set", peer, "up")
	inst, err := ovstest.Start(filepath.Join(e.dir, "ovs"), h.ns)
	if err != nil {
		tb.Fatalf("start OVS in %s: %v", h.ns, err)
	}
	tb.Cleanup(inst.Stop)
	h.ovs = inst
	h.kubeconfig = h.relay()
	return h
}

// relay forwards connections from the host's side of the link to the apiserver's loopback
// address and returns a kubeconfig for it (TLS verification off: the serving certificate
// names loopback only).
func (h *scaleHost) relay() string {
	tb := h.e.tb
	u, err := url.Parse(h.e.cp.Config.Host)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", scaleRootIP+":0")
	if err != nil {
		tb.Fatalf("relay listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	go pprof.Do(context.Background(), pprof.Labels("role", "relay"), func(context.Context) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", u.Host)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	})
	cfg := rest.CopyConfig(h.e.cp.Config)
	cfg.Host = "https://" + ln.Addr().String()
	cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile, cfg.TLSClientConfig.Insecure = nil, "", true
	path := filepath.Join(h.e.dir, "netd.kubeconfig")
	harness.WriteKubeconfig(tb, cfg, path)
	return path
}

func (h *scaleHost) nodeName() string { return h.e.nodes[h.node].name }

// mgmt is br-int's OpenFlow management socket.
func (h *scaleHost) mgmt() string { return "unix:" + filepath.Join(h.ovs.Dir, "br-int.mgmt") }

// start runs netd binary bin as the host's daemon (a process in the host's netns, userspace
// datapath, no CNI files installed).
func (h *scaleHost) start(bin string, extra ...string) {
	tb := h.e.tb
	h.bin = bin
	h.log = filepath.Join(h.e.dir, "netd.log")
	logf, err := os.OpenFile(h.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", h.ns, bin,
		"--node-name="+h.nodeName(), "--kubeconfig="+h.kubeconfig, "--kube-api-qps=50", "--kube-api-burst=100",
		"--socket="+filepath.Join(h.e.dir, "netd.sock"), "--datapath=netdev",
		"--ovsdb="+h.ovs.DB(), "--ovs-rundir="+h.ovs.Dir, "--cni-bin-dir=", "--cni-conf-dir=",
		"--metrics-bind-address="+h.metrics, "--v=1")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start netd %s: %v", bin, err)
	}
	h.cmd, h.exited = cmd, make(chan error, 1)
	go func() { h.exited <- cmd.Wait() }()
	tb.Cleanup(h.stop)
}

// pid is the netd process's own pid (ip netns exec execs it in place).
func (h *scaleHost) pid() int { return h.cmd.Process.Pid }

// stop ends netd (SIGTERM, as the kubelet does) and waits for it.
func (h *scaleHost) stop() {
	if h.cmd == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(20 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
	h.cmd = nil
}

// waitReady waits until netd's /readyz answers 200 (informers synced, first reconcile done).
func (h *scaleHost) waitReady(timeout time.Duration) time.Duration {
	d, err := h.ready(timeout)
	if err != nil {
		h.e.tb.Fatal(err)
	}
	return d
}

// ready is waitReady that returns an error when netd exits or is not ready in time.
func (h *scaleHost) ready(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Since(start) < timeout {
		select {
		case err := <-h.exited:
			h.cmd = nil
			return 0, fmt.Errorf("netd on %s exited: %v; log tail:\n%s", h.nodeName(), err, tail(h.log, 5))
		default:
		}
		resp, err := c.Get("http://" + h.metrics + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("netd on %s not ready after %s (log %s)", h.nodeName(), timeout, h.log)
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var flowCountRE = regexp.MustCompile(`flow_count=(\d+)`)

// flowCount is the number of flows on br-int.
func (h *scaleHost) flowCount() int {
	out, err := shOut("ovs-ofctl", "dump-aggregate", h.mgmt())
	if err != nil {
		h.e.tb.Fatalf("dump-aggregate: %v: %s", err, out)
	}
	m := flowCountRE.FindStringSubmatch(out)
	if m == nil {
		h.e.tb.Fatalf("dump-aggregate: no flow_count in %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// ports lists br-int's ports.
func (h *scaleHost) ports() map[string]bool {
	out := sh(h.e.tb, "ovs-vsctl", "--db="+h.ovs.DB(), "list-ports", "br-int")
	m := map[string]bool{}
	for _, p := range strings.Fields(out) {
		m[p] = true
	}
	return m
}

// daemonPID reads an OVS daemon's pid file.
func (h *scaleHost) daemonPID(name string) int {
	b, _ := os.ReadFile(filepath.Join(h.ovs.Dir, name+".pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// flowEvent is one change of a per-IP flow on br-int, as `ovs-ofctl monitor` reports it.
type flowEvent struct {
	kind string // ADDED, MODIFIED, DELETED
	ip   string // nw_dst of the flow
	at   time.Time
}

var monitorRE = regexp.MustCompile(`event=(ADDED|MODIFIED|DELETED)\b.*[, ]nw_dst=([0-9.]+)[ ,]`)

// monitor streams the changes of flows matching one destination IP (per-IP flows) to fn, with
// the time each was read, until the returned stop is called. (ovs-ofctl writes the events to
// stdout or stderr depending on its version: both are read.)
func (h *scaleHost) monitor(fn func(flowEvent)) (stop func()) {
	cmd := exec.Command("ovs-ofctl", "monitor", h.mgmt(), "watch:!initial")
	cmd.Env = append(os.Environ(), h.ovs.Env()...) // its control socket goes to the instance's run dir
	r, w, err := os.Pipe()
	if err != nil {
		h.e.tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		h.e.tb.Fatalf("ovs-ofctl monitor: %v", err)
	}
	w.Close()
	var other []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			now := time.Now()
			line := sc.Text()
			if m := monitorRE.FindStringSubmatch(line); m != nil {
				fn(flowEvent{kind: m[1], ip: m[2], at: now})
			} else if !strings.Contains(line, "event=") && !strings.Contains(line, "NXST_FLOW_MONITOR") && !strings.Contains(line, "terminating with signal") && len(other) < 20 {
				other = append(other, line)
			}
		}
	}()
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		r.Close()
		<-done
		if len(other) > 0 {
			h.e.tb.Logf("ovs-ofctl monitor: %s", strings.Join(other, "\n"))
		}
	}
}

// processCPUOf is a process's user+system CPU time from /proc (clock ticks of 10ms).
func processCPUOf(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return time.Duration(u+s) * 10 * time.Millisecond
}

// cpuProfile fetches the netd process's CPU profile over the next d (it runs with --profiling);
// the channel yields it, or nothing when the fetch failed.
func (h *scaleHost) cpuProfile(d time.Duration) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		defer close(out)
		c := &http.Client{Timeout: d + 30*time.Second}
		resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", h.metrics, int(d.Seconds())))
		if err != nil {
			h.e.logf("netd cpu profile: %v", err)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			h.e.logf("netd cpu profile: status %d, %v", resp.StatusCode, err)
			return
		}
		out <- b
	}()
	return out
}
