package ovs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Config says how to reach one Open vSwitch instance.
type Config struct {
	// DB is the ovsdb-server socket ("unix:/var/run/openvswitch/db.sock"); empty means the
	// tools' default.
	DB string
	// RunDir is where ovs-vswitchd puts the per-bridge "<bridge>.mgmt" OpenFlow sockets;
	// empty means the tools' default (OVS_RUNDIR or /var/run/openvswitch).
	RunDir string
	// Timeout bounds every command (default 10 s).
	Timeout time.Duration
	// NetNS, if set, runs the commands through "ip netns exec NetNS" (tests and tools only;
	// the database and OpenFlow sockets work from any netns).
	NetNS string
}

// Exec implements Switch with ovs-vsctl and ovs-ofctl.
type Exec struct {
	cfg Config
}

var _ Switch = &Exec{}

// NewExec returns the exec-based driver for the instance cfg names.
func NewExec(cfg Config) *Exec {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Exec{cfg: cfg}
}

// CommandError is a failed ovs-vsctl/ovs-ofctl run with what it printed.
type CommandError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, strings.TrimSpace(e.Stderr))
}

func (e *CommandError) Unwrap() error { return e.Err }

func (x *Exec) run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	return x.runFor(ctx, x.cfg.Timeout, stdin, name, args...)
}

// flowsPerTimeout is how many flows one Timeout covers in a command that dumps or replaces a
// bridge's flows: such a command gets one Timeout per this many flows, at least one (a node of
// a large cluster has a flow per remote pod IP, and ovs-vswitchd takes seconds per ten
// thousand of them in its userspace datapath).
const flowsPerTimeout = 20000

// flowTimeout bounds a command over n flows.
func (x *Exec) flowTimeout(n int) time.Duration {
	return x.cfg.Timeout * time.Duration(1+n/flowsPerTimeout)
}

func (x *Exec) runFor(ctx context.Context, timeout time.Duration, stdin string, name string, args ...string) (string, error) {
	var in func(*bufio.Writer) error
	if stdin != "" {
		in = func(w *bufio.Writer) error { _, err := w.WriteString(stdin); return err }
	}
	var out bytes.Buffer
	err := x.runWith(ctx, timeout, in, func(r io.Reader) error { _, err := out.ReadFrom(r); return err }, name, args...)
	return out.String(), err
}

// runWith runs a command whose input in writes (nil: none) and whose output out reads as it
// comes: neither needs to be held whole in memory.
func (x *Exec) runWith(ctx context.Context, timeout time.Duration, in func(*bufio.Writer) error, out func(io.Reader) error, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	full := append([]string{name}, args...)
	if x.cfg.NetNS != "" {
		full = append([]string{"ip", "netns", "exec", x.cfg.NetNS}, full...)
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return &CommandError{Args: full, Err: err}
	}
	var stdin io.WriteCloser
	if in != nil {
		if stdin, err = cmd.StdinPipe(); err != nil {
			return &CommandError{Args: full, Err: err}
		}
	}
	if err := cmd.Start(); err != nil {
		return &CommandError{Args: full, Stderr: errb.String(), Err: err}
	}
	// The output is read while the input is written: a command may answer before it has read
	// everything.
	outErr := make(chan error, 1)
	go func() {
		err := out(stdout)
		_, _ = io.Copy(io.Discard, stdout) // what out left, so that Wait does not cut it off
		outErr <- err
	}()
	var inErr error
	if in != nil {
		w := bufio.NewWriterSize(stdin, 64<<10)
		if inErr = in(w); inErr == nil {
			inErr = w.Flush()
		}
		if err := stdin.Close(); inErr == nil {
			inErr = err
		}
		if errors.Is(inErr, syscall.EPIPE) {
			inErr = nil // the command did not read all of it: its exit status tells
		}
	}
	readErr := <-outErr
	if err := cmd.Wait(); err != nil {
		return &CommandError{Args: full, Stderr: errb.String(), Err: err}
	}
	for _, err := range []error{inErr, readErr} {
		if err != nil {
			return &CommandError{Args: full, Stderr: errb.String(), Err: err}
		}
	}
	return nil
}

func (x *Exec) vsctl(ctx context.Context, args ...string) (string, error) {
	return x.run(ctx, "", "ovs-vsctl", x.vsctlArgs(args...)...)
}

func (x *Exec) vsctlArgs(args ...string) []string {
	base := []string{fmt.Sprintf("--timeout=%d", int(x.cfg.Timeout.Seconds()))}
	if x.cfg.DB != "" {
		base = append(base, "--db="+x.cfg.DB)
	}
	return append(base, args...)
}

// ofTarget is the OpenFlow endpoint of a bridge for ovs-ofctl.
func (x *Exec) ofTarget(bridge string) string {
	if x.cfg.RunDir == "" {
		return bridge
	}
	return "unix:" + filepath.Join(x.cfg.RunDir, bridge+".mgmt")
}

func (x *Exec) ofctl(ctx context.Context, stdin string, cmd, bridge string, args ...string) (string, error) {
	return x.ofctlFor(ctx, x.cfg.Timeout, stdin, cmd, bridge, args...)
}

func (x *Exec) ofctlFor(ctx context.Context, timeout time.Duration, stdin string, cmd, bridge string, args ...string) (string, error) {
	a := append([]string{"-O", "OpenFlow14", "--no-names", cmd, x.ofTarget(bridge)}, args...)
	return x.runFor(ctx, timeout, stdin, "ovs-ofctl", a...)
}

// EnsureBridge implements Switch.
func (x *Exec) EnsureBridge(ctx context.Context, bridge string, dp DatapathType) error {
	if err := dp.Validate(); err != nil {
		return fmt.Errorf("ensure bridge %s: %w", bridge, err)
	}
	_, err := x.vsctl(ctx, ensureBridgeArgs(bridge, dp)...)
	if err != nil {
		return fmt.Errorf("ensure bridge %s (datapath %s): %w", bridge, dp, err)
	}
	return nil
}

func ensureBridgeArgs(bridge string, dp DatapathType) []string {
	return []string{"--may-exist", "add-br", bridge, "--",
		"set", "Bridge", bridge, "datapath_type=" + string(dp), "fail_mode=secure",
		"protocols=OpenFlow10,OpenFlow13,OpenFlow14", "other_config:disable-in-band=true"}
}

// UpdatePorts implements Switch.
func (x *Exec) UpdatePorts(ctx context.Context, bridge string, add []Port, del []string) error {
	args := updatePortsArgs(bridge, add, del)
	if len(args) == 0 {
		return nil
	}
	if _, err := x.vsctl(ctx, args...); err != nil {
		return fmt.Errorf("update ports of %s (%d added, %d deleted): %w", bridge, len(add), len(del), err)
	}
	return nil
}

func updatePortsArgs(bridge string, add []Port, del []string) []string {
	var args []string
	if len(add) == 0 && len(del) > 0 {
		// Deletes alone do not wait for ovs-vswitchd: the rows are gone when the transaction
		// commits, and the next add waits for ovs-vswitchd to have applied everything.
		args = append(args, "--no-wait")
	}
	sep := func() {
		if len(args) > 0 && args[len(args)-1] != "--no-wait" {
			args = append(args, "--")
		}
	}
	for _, name := range del {
		sep()
		args = append(args, "--if-exists", "del-port", bridge, name)
	}
	for _, p := range add {
		sep()
		args = append(args, addPortArgs(bridge, p)...)
	}
	return args
}

// AddPort implements Switch.
func (x *Exec) AddPort(ctx context.Context, bridge string, p Port) (int, error) {
	if _, err := x.vsctl(ctx, addPortArgs(bridge, p)...); err != nil {
		return 0, fmt.Errorf("add port %s to %s: %w", p.Name, bridge, err)
	}
	out, err := x.vsctl(ctx, "get", "Interface", p.Name, "ofport")
	if err != nil {
		return 0, fmt.Errorf("ofport of %s: %w", p.Name, err)
	}
	n, err := parseOFPort(strings.TrimSpace(out))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("port %s on %s has no OpenFlow port (ofport %q): see ovs-vswitchd.log", p.Name, bridge, strings.TrimSpace(out))
	}
	return n, nil
}

func addPortArgs(bridge string, p Port) []string {
	// --if-exists del-port first makes the call idempotent and replaces stale settings.
	args := []string{"--if-exists", "del-port", bridge, p.Name, "--", "add-port", bridge, p.Name}
	if p.Tag > 0 {
		args = append(args, fmt.Sprintf("tag=%d", p.Tag))
	}
	for _, k := range sortedKeys(p.ExternalIDs) {
		args = append(args, fmt.Sprintf("external_ids:%s=%s", k, quote(p.ExternalIDs[k])))
	}
	var iface []string
	if p.Type != "" {
		iface = append(iface, "type="+p.Type)
	}
	for _, k := range sortedKeys(p.Options) {
		iface = append(iface, fmt.Sprintf("options:%s=%s", k, quote(p.Options[k])))
	}
	if p.MAC != "" {
		iface = append(iface, fmt.Sprintf("mac=%s", quote(p.MAC)))
	}
	if p.OFPortRequest > 0 {
		iface = append(iface, fmt.Sprintf("ofport_request=%d", p.OFPortRequest))
	}
	if len(iface) > 0 {
		args = append(append(args, "--", "set", "Interface", p.Name), iface...)
	}
	return args
}

// DeletePort implements Switch.
func (x *Exec) DeletePort(ctx context.Context, bridge, name string) error {
	if _, err := x.vsctl(ctx, "--if-exists", "del-port", bridge, name); err != nil {
		var ce *CommandError
		// A missing bridge means the port is gone too.
		if errors.As(err, &ce) && isNoBridge(ce.Stderr, bridge) {
			return nil
		}
		return fmt.Errorf("delete port %s from %s: %w", name, bridge, err)
	}
	return nil
}

// ListPorts implements Switch: one ovs-vsctl run reads the bridge's port set, the Port rows
// and the Interface rows.
func (x *Exec) ListPorts(ctx context.Context, bridge string, match map[string]string) ([]Port, error) {
	out, err := x.vsctl(ctx, listPortsArgs(bridge)...)
	var ce *CommandError
	if errors.As(err, &ce) && isNoBridge(ce.Stderr, bridge) {
		return nil, nil // a bridge that is not there has no ports
	}
	if err != nil {
		return nil, fmt.Errorf("list ports of %s: %w", bridge, err)
	}
	return parseListPorts(out, bridge, match)
}

// isNoBridge reports whether ovs-vsctl's stderr says the bridge does not exist.
func isNoBridge(stderr, bridge string) bool {
	return strings.Contains(stderr, "no bridge named "+bridge) ||
		strings.Contains(stderr, fmt.Sprintf("no row %q in table Bridge", bridge))
}

func listPortsArgs(bridge string) []string {
	return []string{"--format=json",
		"--columns=ports", "list", "Bridge", bridge, "--",
		"--columns=_uuid,name,tag,external_ids", "list", "Port", "--",
		"--columns=name,type,ofport,options,mac,ofport_request", "list", "Interface"}
}

// ApplyFlows implements Switch: one atomic OpenFlow 1.4 bundle.
func (x *Exec) ApplyFlows(ctx context.Context, bridge string, add, del []Flow) error {
	if len(add) == 0 && len(del) == 0 {
		return nil
	}
	if _, err := x.ofctlFor(ctx, x.flowTimeout(len(add)+len(del)), formatBundle(add, del), "bundle", bridge, "-"); err != nil {
		return fmt.Errorf("apply %d added and %d deleted flows on %s: %w", len(add), len(del), bridge, err)
	}
	return nil
}

// AddFlows implements Switch.
func (x *Exec) AddFlows(ctx context.Context, bridge string, flows []Flow) error {
	if len(flows) == 0 {
		return nil
	}
	if _, err := x.ofctlFor(ctx, x.flowTimeout(len(flows)), formatFlows(flows), "add-flows", bridge, "-"); err != nil {
		return fmt.Errorf("add %d flows to %s: %w", len(flows), bridge, err)
	}
	return nil
}

// DeleteFlows implements Switch.
func (x *Exec) DeleteFlows(ctx context.Context, bridge string, cookie uint64) error {
	if _, err := x.ofctl(ctx, "", "del-flows", bridge, cookieMatch(cookie)); err != nil {
		return fmt.Errorf("delete flows with cookie %#x from %s: %w", cookie, bridge, err)
	}
	return nil
}

// ReplaceFlows implements Switch. The flows of other cookies are fed back as dumped, and
// ovs-ofctl replace-flows diffs semantically and changes only what differs, so traffic on
// unchanged flows is never interrupted (reconcile, not replay). Neither the dump nor flows are
// held whole: the dump keeps only other cookies' flows, and flows are written as they come.
func (x *Exec) ReplaceFlows(ctx context.Context, bridge string, cookie uint64, n int, flows iter.Seq[Flow]) error {
	var others []Flow
	if err := x.dumpFlows(ctx, bridge, func(f Flow) { others = append(others, f) }, func(c uint64) bool { return c == cookie }); err != nil {
		return err
	}
	write := func(w *bufio.Writer) (err error) {
		var b []byte
		for _, f := range others {
			if b, err = writeFlow(w, b, f); err != nil {
				return err
			}
		}
		for f := range flows {
			f.Cookie = cookie
			if b, err = writeFlow(w, b, f); err != nil {
				return err
			}
		}
		return nil
	}
	a := append([]string{"-O", "OpenFlow14", "--no-names", "replace-flows", x.ofTarget(bridge)}, "-")
	if err := x.runWith(ctx, x.flowTimeout(n+len(others)), write, func(io.Reader) error { return nil }, "ovs-ofctl", a...); err != nil {
		return fmt.Errorf("replace flows with cookie %#x on %s (%d flows): %w", cookie, bridge, n, err)
	}
	return nil
}

// DumpFlows implements Switch.
func (x *Exec) DumpFlows(ctx context.Context, bridge string) ([]Flow, error) {
	var flows []Flow
	if err := x.dumpFlows(ctx, bridge, func(f Flow) { flows = append(flows, f) }, nil); err != nil {
		return nil, err
	}
	return flows, nil
}

// dumpFlows passes the bridge's flows to fn as ovs-ofctl prints them, but those whose cookie
// skip reports true (nil: none).
func (x *Exec) dumpFlows(ctx context.Context, bridge string, fn func(Flow), skip func(uint64) bool) error {
	read := func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if skip != nil {
				// A line whose cookie does not read is parsed, and its error reported.
				if c, ok := lineCookie(sc.Bytes()); ok && skip(c) {
					continue
				}
			}
			if err := eachFlow(sc.Text(), fn); err != nil {
				return err
			}
		}
		return sc.Err()
	}
	// The bridge holds about as many flows as its last replace wrote; the timeout is sized for
	// a large table.
	a := []string{"-O", "OpenFlow14", "--no-names", "dump-flows", x.ofTarget(bridge), "--no-stats", "--no-names"}
	if err := x.runWith(ctx, x.flowTimeout(8*flowsPerTimeout), nil, read, "ovs-ofctl", a...); err != nil {
		return fmt.Errorf("dump flows of %s: %w", bridge, err)
	}
	return nil
}
