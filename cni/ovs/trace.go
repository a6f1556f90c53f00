package ovs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
)

// Tracer runs OpenFlow traces; Exec implements it.
type Tracer interface {
	// Trace runs `ovs-appctl ofproto/trace bridge flow` and returns its output.
	Trace(ctx context.Context, bridge, flow string) (string, error)
}

var _ Tracer = &Exec{}

// Trace implements Tracer. The flow is one argument: callers build it from parsed values.
func (x *Exec) Trace(ctx context.Context, bridge, flow string) (string, error) {
	return x.run(ctx, "", "ovs-appctl", traceArgs(x.appctlTarget(), bridge, flow)...)
}

func traceArgs(target, bridge, flow string) []string {
	return []string{"--timeout=10", "-t", target, "ofproto/trace", bridge, flow}
}

// appctlTarget is ovs-vswitchd's control socket: <RunDir>/ovs-vswitchd.ctl when the daemon was
// started with that --unixctl, else <RunDir>/ovs-vswitchd.<pid>.ctl from its pidfile (the
// packaged daemon), else the tools' default lookup.
func (x *Exec) appctlTarget() string {
	if x.cfg.RunDir == "" {
		return "ovs-vswitchd"
	}
	if ctl := filepath.Join(x.cfg.RunDir, "ovs-vswitchd.ctl"); exists(ctl) {
		return ctl
	}
	if pid, err := os.ReadFile(filepath.Join(x.cfg.RunDir, "ovs-vswitchd.pid")); err == nil {
		if ctl := filepath.Join(x.cfg.RunDir, "ovs-vswitchd."+strings.TrimSpace(string(pid))+".ctl"); exists(ctl) {
			return ctl
		}
	}
	return "ovs-vswitchd"
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }
