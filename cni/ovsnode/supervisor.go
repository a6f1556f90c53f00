package ovsnode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// noHandlersLine is what ovs-vswitchd logs when it starts without upcall handler threads:
// with per-cpu upcall dispatch (OVS 3.x on kernels ≥ 5.x) it then drops every upcall.
var noHandlersLine = regexp.MustCompile(`Overriding n-handler-threads to 0\b`)

// Restart reasons of ovs-vswitchd (the reason label of the restart metric).
const (
	ReasonNoUpcallHandlers = "no_upcall_handlers"
	ReasonExited           = "exited"
)

// Supervisor runs ovsdb-server and ovs-vswitchd.
type Supervisor struct {
	cfg Config
	// out receives the daemons' output (default os.Stderr: the container log).
	out io.Writer
	// onRestart, if set, is called after each ovs-vswitchd restart (tests).
	onRestart func(reason string)
	outMu     sync.Mutex
}

// New returns a supervisor for cfg (defaulted and validated).
func New(cfg Config) (*Supervisor, error) {
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid %s configuration: %w", Name, errs.ToAggregate())
	}
	return &Supervisor{cfg: cfg, out: os.Stderr}, nil
}

// env points the OVS tools' compiled-in directories at the configured ones.
func (s *Supervisor) env() []string {
	dbDir := filepath.Dir(s.cfg.DBFile)
	return append(os.Environ(), "OVS_RUNDIR="+s.cfg.RunDir, "OVS_LOGDIR="+s.cfg.RunDir, "OVS_DBDIR="+dbDir, "OVS_SYSCONFDIR="+dbDir)
}

// Run starts ovsdb-server and ovs-vswitchd and keeps ovs-vswitchd running (restarting it when it
// exits or comes up without upcall handlers) until ctx ends or ovsdb-server exits. At the end
// both get SIGTERM: bridges, ports and the kernel datapath stay for the next start.
func (s *Supervisor) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	for _, d := range []string{s.cfg.RunDir, filepath.Dir(s.cfg.DBFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
	}
	s.loadModule(ctx)
	if err := s.prepareDB(ctx); err != nil {
		return err
	}
	db, err := s.start(ctx, "ovsdb-server", s.cfg.OVSDBServer, nil, s.cfg.DBFile,
		"--remote=punix:"+filepath.Join(s.cfg.RunDir, "db.sock"), "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
		"--pidfile="+filepath.Join(s.cfg.RunDir, "ovsdb-server.pid"), "--unixctl="+filepath.Join(s.cfg.RunDir, "ovsdb-server.ctl"),
		"-vconsole:info", "-vsyslog:off")
	if err != nil {
		return err
	}
	defer stop(db)
	dbExited := make(chan error, 1)
	go func() { dbExited <- db.Wait() }()
	if err := s.initDB(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	setUp("ovsdb-server", true)
	defer setUp("ovsdb-server", false)
	for {
		restart := make(chan string, 1)
		vs, err := s.start(ctx, "ovs-vswitchd", s.cfg.VSwitchd, func(line string) {
			if noHandlersLine.MatchString(line) {
				select {
				case restart <- ReasonNoUpcallHandlers:
				default:
				}
			}
		}, s.cfg.DB(), "--pidfile="+filepath.Join(s.cfg.RunDir, "ovs-vswitchd.pid"),
			"--unixctl="+filepath.Join(s.cfg.RunDir, "ovs-vswitchd.ctl"), "-vconsole:info", "-vsyslog:off")
		if err != nil {
			return err
		}
		setUp("ovs-vswitchd", true)
		vsExited := make(chan error, 1)
		go func() { vsExited <- vs.Wait() }()
		var reason string
		select {
		case <-ctx.Done():
			stop(vs)
			logger.V(2).Info("ovs-vswitchd stopped", "exit", <-vsExited)
			setUp("ovs-vswitchd", false)
			return nil
		case err := <-dbExited:
			stop(vs)
			logger.V(2).Info("ovs-vswitchd stopped", "exit", <-vsExited)
			setUp("ovs-vswitchd", false)
			return fmt.Errorf("ovsdb-server exited: %v", err)
		case reason = <-restart:
			logger.Info("ovs-vswitchd started without upcall handler threads: the kernel datapath would drop every upcall; restarting it",
				"reason", reason, "pid", vs.Process.Pid)
			stop(vs)
			logger.V(2).Info("ovs-vswitchd stopped", "exit", <-vsExited)
		case err := <-vsExited:
			reason = ReasonExited
			logger.Error(err, "ovs-vswitchd exited; starting it again", "reason", reason, "backoff", s.cfg.RestartBackoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(s.cfg.RestartBackoff):
			}
		}
		setUp("ovs-vswitchd", false)
		restarts.WithLabelValues(reason).Inc()
		if s.onRestart != nil {
			s.onRestart(reason)
		}
	}
}

// start runs a daemon in the foreground with its output copied line by line to s.out (and to
// watch, when set).
func (s *Supervisor) start(ctx context.Context, name, bin string, watch func(string), args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = s.env()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: pipe: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close() // the child holds the write end: the reader ends when the child is gone
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	klog.FromContext(ctx).Info("Started", "daemon", name, "pid", cmd.Process.Pid)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			s.outMu.Lock()
			fmt.Fprintf(s.out, "%s: %s\n", name, line)
			s.outMu.Unlock()
			if watch != nil {
				watch(line)
			}
		}
	}()
	return cmd, nil
}

// stop sends SIGTERM and, after 10 s, SIGKILL.
func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		time.Sleep(10 * time.Second)
		_ = cmd.Process.Kill()
	}()
}

// loadModule loads the openvswitch kernel module when the node has it but it is not loaded.
// Failure is not fatal: the userspace datapath needs no module, and netd reports a system
// datapath without it.
func (s *Supervisor) loadModule(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if _, err := os.Stat(filepath.Join(s.cfg.ModuleDir, "openvswitch")); err == nil {
		logger.Info("Kernel module loaded", "module", "openvswitch")
		return
	}
	if s.cfg.Modprobe == "" {
		logger.Info("Kernel module not loaded (the system datapath needs it; netd reports it)", "module", "openvswitch")
		return
	}
	out, err := exec.CommandContext(ctx, s.cfg.Modprobe, "openvswitch").CombinedOutput()
	if err != nil {
		logger.Info("Kernel module not available: only the userspace (netdev) datapath can run on this node",
			"module", "openvswitch", "modprobe", strings.TrimSpace(string(out)), "err", err.Error())
		return
	}
	logger.Info("Loaded kernel module", "module", "openvswitch")
}

// prepareDB creates the database, or converts it when the schema changed (an OVS upgrade).
func (s *Supervisor) prepareDB(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if _, err := os.Stat(s.cfg.DBFile); errors.Is(err, os.ErrNotExist) {
		if out, err := s.tool(ctx, s.cfg.OVSDBTool, "create", s.cfg.DBFile, s.cfg.Schema); err != nil {
			return fmt.Errorf("create OVS database %s: %w: %s", s.cfg.DBFile, err, out)
		}
		logger.Info("Created the OVS database", "file", s.cfg.DBFile)
		return nil
	}
	out, err := s.tool(ctx, s.cfg.OVSDBTool, "needs-conversion", s.cfg.DBFile, s.cfg.Schema)
	if err != nil {
		return fmt.Errorf("check OVS database %s against %s: %w: %s", s.cfg.DBFile, s.cfg.Schema, err, out)
	}
	if strings.TrimSpace(out) == "yes" {
		if out, err := s.tool(ctx, s.cfg.OVSDBTool, "convert", s.cfg.DBFile, s.cfg.Schema); err != nil {
			return fmt.Errorf("convert OVS database %s to %s: %w: %s", s.cfg.DBFile, s.cfg.Schema, err, out)
		}
		logger.Info("Converted the OVS database to the new schema", "file", s.cfg.DBFile)
	} else {
		logger.Info("Kept the OVS database (bridges and ports as before)", "file", s.cfg.DBFile)
	}
	return nil
}

// initDB waits for ovsdb-server and initialises the Open_vSwitch row.
func (s *Supervisor) initDB(ctx context.Context) error {
	var out string
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, err = s.tool(ctx, s.cfg.VSctl, "--db="+s.cfg.DB(), "--timeout=5", "--no-wait", "init"); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("ovsdb-server at %s: ovs-vsctl init: %w: %s", s.cfg.DB(), err, out)
}

func (s *Supervisor) tool(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = s.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}
