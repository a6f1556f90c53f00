// Package config holds the node agent's typed configuration with defaults and field-path validation.
package config

import (
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Config is the whole agent configuration (set from flags).
type Config struct {
	// NodeName is this node (the pod informer's field selector, the Odin endpoint, the node label).
	NodeName string
	// Datacenter labels every series; empty means "read the node's zone label".
	Datacenter string
	// DatacenterLabel is the node label the datacenter is read from.
	DatacenterLabel string
	// Step is the collection interval.
	Step time.Duration
	// ListenAddress serves /metrics and /healthz.
	ListenAddress string
	// ProcRoot and SysRoot are /proc and /sys (the host's, when mounted elsewhere).
	ProcRoot string
	SysRoot  string

	Cgroup    Cgroup
	Odin      Odin
	RDT       RDT
	NodeCheck NodeCheck
}

// Cgroup locates the kubelet's cgroups.
type Cgroup struct {
	// Root is the cgroup mount point.
	Root string
	// Parent is the kubelet's --cgroup-root, relative to the hierarchy.
	Parent string
	// Driver is "auto", "cgroupfs" or "systemd".
	Driver string
}

// Odin configures the Open-Falcon push.
type Odin struct {
	// URL of the push endpoint (falcon transfer /api/push, falcon agent /v1/push, Nightingale
	// /openfalcon/push); empty disables the push.
	URL string
	// Username and PasswordFile enable basic auth.
	Username     string
	PasswordFile string
	// Gzip sends bodies with Content-Encoding: gzip, for receivers that decode it. Off by default:
	// falcon transfer's /api/push reads plain JSON only. A receiver answering 400 or 415 to a gzip
	// body gets the batch again as plain JSON, and the push stays plain from then on.
	Gzip         bool
	BatchSize    int
	Timeout      time.Duration
	SpoolDir     string
	SpoolMaxAge  time.Duration
	SpoolMaxSize int64
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
}

// RDT configures cache and memory bandwidth allocation.
type RDT struct {
	Enabled bool
	// ConfigFile is the goresctrl configuration (a mounted ConfigMap; reloaded on change).
	ConfigFile string
	// GroupPrefix names our resctrl groups so a runtime's own groups are left alone.
	GroupPrefix string
	// ReconcileInterval is how often new threads are moved into their class.
	ReconcileInterval time.Duration
}

// NodeCheck configures the start-up checks of the node.
type NodeCheck struct {
	// RuntimeRoot is the container runtime's state directory (containerd: /var/lib/containerd).
	RuntimeRoot string
}

// Default returns the configuration with every default set.
func Default() Config {
	return Config{
		DatacenterLabel: "topology.kubernetes.io/zone",
		Step:            10 * time.Second,
		ListenAddress:   ":9101",
		ProcRoot:        "/proc",
		SysRoot:         "/sys",
		Cgroup:          Cgroup{Root: "/sys/fs/cgroup", Parent: "/", Driver: "auto"},
		Odin: Odin{
			Gzip:         false,
			BatchSize:    2000,
			Timeout:      10 * time.Second,
			SpoolDir:     "/var/lib/ecloud-node-agent/spool",
			SpoolMaxAge:  time.Hour,
			SpoolMaxSize: 256 << 20,
			MinBackoff:   time.Second,
			MaxBackoff:   time.Minute,
		},
		RDT: RDT{
			ConfigFile:        "/etc/ecloud/rdt/config.yaml",
			GroupPrefix:       "ecloud-",
			ReconcileInterval: 2 * time.Second,
		},
		NodeCheck: NodeCheck{RuntimeRoot: "/var/lib/containerd"},
	}
}

// Validate returns every invalid field with its path.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.NodeName == "" {
		errs = append(errs, field.Required(field.NewPath("nodeName"), "set --node-name or NODE_NAME"))
	}
	if c.Step < time.Second {
		errs = append(errs, field.Invalid(field.NewPath("step"), c.Step.String(), "must be at least 1s"))
	}
	cg := field.NewPath("cgroup")
	if c.Cgroup.Root == "" {
		errs = append(errs, field.Required(cg.Child("root"), ""))
	}
	switch c.Cgroup.Driver {
	case "auto", "cgroupfs", "systemd":
	default:
		errs = append(errs, field.NotSupported(cg.Child("driver"), c.Cgroup.Driver, []string{"auto", "cgroupfs", "systemd"}))
	}
	errs = append(errs, c.Odin.validate(field.NewPath("odin"), c.Step)...)
	if c.RDT.Enabled {
		p := field.NewPath("rdt")
		if c.RDT.ConfigFile == "" {
			errs = append(errs, field.Required(p.Child("configFile"), "required when RDT is enabled"))
		}
		if c.RDT.GroupPrefix == "" {
			errs = append(errs, field.Required(p.Child("groupPrefix"), "an empty prefix would take over the runtime's groups"))
		}
		if c.RDT.ReconcileInterval <= 0 {
			errs = append(errs, field.Invalid(p.Child("reconcileInterval"), c.RDT.ReconcileInterval.String(), "must be positive"))
		}
	}
	return errs
}

func (o *Odin) validate(p *field.Path, step time.Duration) field.ErrorList {
	var errs field.ErrorList
	if o.URL == "" {
		return nil
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		errs = append(errs, field.Invalid(p.Child("url"), o.URL, err.Error()))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, field.Invalid(p.Child("url"), o.URL, "must be an absolute http or https URL"))
	}
	if o.PasswordFile != "" && o.Username == "" {
		errs = append(errs, field.Required(p.Child("username"), "required with passwordFile"))
	}
	if o.BatchSize < 1 {
		errs = append(errs, field.Invalid(p.Child("batchSize"), o.BatchSize, "must be positive"))
	}
	if o.Timeout <= 0 {
		errs = append(errs, field.Invalid(p.Child("timeout"), o.Timeout.String(), "must be positive"))
	}
	if o.SpoolDir == "" {
		errs = append(errs, field.Required(p.Child("spoolDir"), ""))
	}
	if o.SpoolMaxAge < step {
		errs = append(errs, field.Invalid(p.Child("spoolMaxAge"), o.SpoolMaxAge.String(), "must be at least one step"))
	}
	if o.SpoolMaxSize < 1<<20 {
		errs = append(errs, field.Invalid(p.Child("spoolMaxSize"), o.SpoolMaxSize, "must be at least 1MiB"))
	}
	if o.MinBackoff <= 0 || o.MaxBackoff < o.MinBackoff {
		errs = append(errs, field.Invalid(p.Child("maxBackoff"), o.MaxBackoff.String(), "backoffs must be positive with max >= min"))
	}
	return errs
}
