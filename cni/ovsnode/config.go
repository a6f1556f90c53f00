// Package ovsnode runs a node's Open vSwitch: ovsdb-server with its database on the host (so a
// restart keeps bridges, ports and flows' bridges) and ovs-vswitchd, both in the foreground
// with their logs on the container's output. It loads the openvswitch kernel module when the
// node has it, and heals the OVS startup race in which ovs-vswitchd comes up without upcall
// handler threads ("Overriding n-handler-threads to 0": the kernel datapath then loses every
// upcall and no flow is ever set up) by restarting ovs-vswitchd.
package ovsnode

import (
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Name identifies the supervisor in logs and metrics.
const Name = "ecloud-ovs"

// HostOVSLabel on a Node with value "host" says the node runs its own Open vSwitch: the
// supervisor then starts none and waits (one DaemonSet serves mixed clusters).
const HostOVSLabel = "network.ecloud.io/ovs"

// Config is the supervisor's configuration (its flags).
type Config struct {
	// DBFile is the OVSDB database; its directory should be a hostPath so bridges and ports
	// survive a restart of the container.
	DBFile string
	// Schema is the vswitch schema the database is created from or converted to.
	Schema string
	// RunDir holds db.sock, the pid files, the unixctl sockets and <bridge>.mgmt (netd's
	// --ovs-rundir).
	RunDir string
	// OVSDBServer, VSwitchd, VSctl and OVSDBTool are the binaries (names on PATH or paths).
	OVSDBServer, VSwitchd, VSctl, OVSDBTool string
	// Modprobe loads the openvswitch module when it is not loaded ("" = do not try).
	Modprobe string
	// ModuleDir is where the kernel lists its loaded modules.
	ModuleDir string
	// RestartBackoff is the pause before ovs-vswitchd is started again after it exited.
	RestartBackoff time.Duration
}

// Default fills unset fields.
func (c *Config) Default() {
	if c.DBFile == "" {
		c.DBFile = "/var/lib/ecloud/ovs/conf.db"
	}
	if c.Schema == "" {
		c.Schema = "/usr/share/openvswitch/vswitch.ovsschema"
	}
	if c.RunDir == "" {
		c.RunDir = "/run/openvswitch"
	}
	for _, b := range []struct {
		p   *string
		def string
	}{{&c.OVSDBServer, "ovsdb-server"}, {&c.VSwitchd, "ovs-vswitchd"}, {&c.VSctl, "ovs-vsctl"}, {&c.OVSDBTool, "ovsdb-tool"}} {
		if *b.p == "" {
			*b.p = b.def
		}
	}
	if c.ModuleDir == "" {
		c.ModuleDir = "/sys/module"
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = 2 * time.Second
	}
}

// Validate checks the configuration; errors name the field.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("ovs")
	for _, f := range []struct {
		name, v string
	}{{"dbFile", c.DBFile}, {"schema", c.Schema}, {"runDir", c.RunDir}, {"moduleDir", c.ModuleDir}} {
		if !filepath.IsAbs(f.v) {
			errs = append(errs, field.Invalid(p.Child(f.name), f.v, "must be an absolute path"))
		}
	}
	// Unix socket paths are limited to 107 bytes: the longest is ovs-vswitchd.<pid>.ctl.
	if len(filepath.Join(c.RunDir, "ovs-vswitchd.4194304.ctl")) > 107 {
		errs = append(errs, field.Invalid(p.Child("runDir"), c.RunDir, "too long for the unix sockets under it (107 bytes)"))
	}
	if c.RestartBackoff < 0 {
		errs = append(errs, field.Invalid(p.Child("restartBackoff"), c.RestartBackoff.String(), "must not be negative"))
	}
	return errs
}

// DB is the ovsdb-server socket in ovs-vsctl --db syntax.
func (c *Config) DB() string { return "unix:" + filepath.Join(c.RunDir, "db.sock") }
