// Package ovstest starts private Open vSwitch instances (ovsdb-server + ovs-vswitchd, userspace
// datapath) for tests and benchmarks, optionally inside a network namespace so that each
// instance plays one host. All state lives in one short temp directory (OVS unix socket paths
// are limited to 107 bytes); Stop shuts the daemons down with `exit --cleanup` so the
// datapath's tap devices go too.
package ovstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/test/prereq"
)

// Schema is the OVSDB schema the Debian package installs.
const Schema = "/usr/share/openvswitch/vswitch.ovsschema"

// Instance is one running OVS.
type Instance struct {
	Dir   string
	NetNS string
}

// DB is the ovsdb-server socket in ovs-vsctl --db syntax.
func (i *Instance) DB() string { return "unix:" + filepath.Join(i.Dir, "db.sock") }

// Config is how ovs.NewExec reaches this instance.
func (i *Instance) Config() ovs.Config { return ovs.Config{DB: i.DB(), RunDir: i.Dir} }

// Switch is a driver for this instance.
func (i *Instance) Switch() *ovs.Exec { return ovs.NewExec(i.Config()) }

// Env is the environment that points the OVS tools at this instance.
func (i *Instance) Env() []string {
	return []string{"OVS_RUNDIR=" + i.Dir, "OVS_LOGDIR=" + i.Dir, "OVS_DBDIR=" + i.Dir, "OVS_SYSCONFDIR=" + i.Dir}
}

// Available reports why OVS cannot be started here ("" when it can): a missing Open vSwitch
// program or schema, or not root.
func Available() string {
	for _, c := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl"} {
		if _, err := exec.LookPath(c); err != nil {
			return "needs Open vSwitch (apt-get install openvswitch-switch): " + c + " not on PATH"
		}
	}
	if _, err := os.Stat(Schema); err != nil {
		return "needs the Open vSwitch schema " + Schema + " (apt-get install openvswitch-switch)"
	}
	if os.Geteuid() != 0 {
		return "needs root: runs ovs-vswitchd and network namespaces"
	}
	return ""
}

// Require ends tb when OVS cannot be started here (Available): a failure under CI=true, a skip
// elsewhere (prereq.Missing).
func Require(tb testing.TB) {
	tb.Helper()
	if why := Available(); why != "" {
		prereq.Missing(tb, why)
	}
}

// Start starts an instance with its state in dir (created if missing), inside netns when set.
func Start(dir, netns string) (*Instance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ovs state dir: %w", err)
	}
	i := &Instance{Dir: dir, NetNS: netns}
	if len(filepath.Join(dir, "ovs-vswitchd.12345.ctl")) > 100 {
		return nil, fmt.Errorf("ovs state dir %s: too long for unix socket paths (107 bytes)", dir)
	}
	db := filepath.Join(dir, "conf.db")
	_ = os.Remove(db)
	steps := [][]string{
		{"ovsdb-tool", "create", db, Schema},
		i.inNS("ovsdb-server", db, "--remote=punix:"+filepath.Join(dir, "db.sock"),
			"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"), "--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
			"--log-file="+filepath.Join(dir, "ovsdb-server.log"), "-vconsole:off", "--detach"),
		{"ovs-vsctl", "--db=" + i.DB(), "--no-wait", "init"},
		{"ovs-vsctl", "--db=" + i.DB(), "--no-wait", "set", "Open_vSwitch", ".", "other_config:hw-offload=false"},
		i.inNS("ovs-vswitchd", i.DB(), "--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"),
			"--unixctl="+filepath.Join(dir, "ovs-vswitchd.ctl"), "--log-file="+filepath.Join(dir, "ovs-vswitchd.log"),
			"-vconsole:off", "--detach"),
	}
	for _, s := range steps {
		if err := i.run(s...); err != nil {
			i.Stop()
			return nil, err
		}
	}
	return i, nil
}

func (i *Instance) inNS(args ...string) []string {
	if i.NetNS == "" {
		return args
	}
	return append([]string{"ip", "netns", "exec", i.NetNS}, args...)
}

func (i *Instance) run(args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), i.Env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// Stop shuts the instance down (datapath and its taps included) and waits for both daemons.
// It is safe to call more than once.
func (i *Instance) Stop() {
	for _, d := range []struct{ name, arg string }{{"ovs-vswitchd", "--cleanup"}, {"ovsdb-server", ""}} {
		pid := readPID(filepath.Join(i.Dir, d.name+".pid"))
		ctl := filepath.Join(i.Dir, d.name+".ctl")
		if _, err := os.Stat(ctl); err == nil {
			args := []string{"ovs-appctl", "--timeout=10", "-t", ctl, "exit"}
			if d.arg != "" {
				args = append(args, d.arg)
			}
			_ = i.run(args...)
		}
		if pid > 0 {
			waitGone(pid, 3*time.Second)
		}
	}
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func waitGone(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// TempDir makes a short, unique state directory under /tmp (t.TempDir paths are too long for
// OVS's unix sockets).
func TempDir(tb testing.TB) string {
	tb.Helper()
	d, err := os.MkdirTemp("/tmp", "ecni-ovs-")
	if err != nil {
		tb.Fatalf("ovs temp dir: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// StartT starts an instance for a test (Require: under CI=true a missing OVS fails the test,
// elsewhere it skips) and stops it at cleanup. With netns "" the instance runs in a network
// namespace of its own, made for the test and deleted at cleanup: every userspace-datapath
// ovs-vswitchd makes a tap device "ovs-netdev" and one per internal port, so two instances in
// one namespace (tests of two packages run in parallel) break each other's ports.
func StartT(tb testing.TB, netns string) *Instance {
	tb.Helper()
	Require(tb)
	dir := TempDir(tb)
	if netns == "" {
		netns = "ecni-" + filepath.Base(dir)[len("ecni-ovs-"):]
		if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
			tb.Fatalf("network namespace %s for OVS: %v: %s", netns, err, out)
		}
		tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", netns).Run() })
	}
	i, err := Start(dir, netns)
	if err != nil {
		tb.Fatalf("start OVS: %v", err)
	}
	tb.Cleanup(i.Stop)
	return i
}
