package ovsnode

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/cni/ovs/ovstest"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{}
	ok.Default()
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatalf("defaulted config: %v", errs)
	}
	bad := ok
	bad.DBFile, bad.RunDir, bad.RestartBackoff = "conf.db", "/"+strings.Repeat("r", 100), -time.Second
	msg := bad.Validate().ToAggregate().Error()
	for _, f := range []string{"ovs.dbFile", "ovs.runDir", "ovs.restartBackoff"} {
		if !strings.Contains(msg, f) {
			t.Errorf("errors %q do not name %s", msg, f)
		}
	}
}

func TestNoHandlersLine(t *testing.T) {
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"2026-12-03T09:00:00Z|00042|ofproto_dpif_upcall|INFO|Overriding n-handler-threads to 0, setting n-revalidator-threads to 1", true},
		{"ofproto_dpif_upcall|INFO|Overriding n-handler-threads to 2, setting n-revalidator-threads to 1", false},
		{"ofproto_dpif_upcall|INFO|Overriding n-handler-threads to 08", false},
		{"bridge|INFO|bridge br-int: using datapath ID 0000", false},
	} {
		if got := noHandlersLine.MatchString(tt.line); got != tt.want {
			t.Errorf("%q: match %v, want %v", tt.line, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the supervisor's writer goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSupervisorHealsTheStartupRace runs the real ovsdb-server and ovs-vswitchd (userspace
// datapath). The race cannot be provoked on demand, so the first ovs-vswitchd start goes
// through a wrapper that prints the race's log line before it execs the real daemon: the
// supervisor must restart ovs-vswitchd once, with reason no_upcall_handlers, and then serve.
// A second supervisor on the same database finds the bridge made by the first.
func TestSupervisorHealsTheStartupRace(t *testing.T) {
	if why := ovstest.Available(); why != "" {
		t.Skip(why)
	}
	dir, err := os.MkdirTemp("/tmp", "ecovs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	real, err := exec.LookPath("ovs-vswitchd")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "vswitchd-race")
	script := "#!/bin/sh\nif [ ! -e " + dir + "/raced ]; then touch " + dir + "/raced\n" +
		"echo '2026-12-03T09:00:00Z|00042|ofproto_dpif_upcall|INFO|Overriding n-handler-threads to 0, setting n-revalidator-threads to 1'\nfi\n" +
		"exec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DBFile: filepath.Join(dir, "db", "conf.db"), RunDir: filepath.Join(dir, "run"), VSwitchd: wrapper, ModuleDir: dir}
	vsctl := func(args ...string) (string, error) {
		out, err := exec.Command("ovs-vsctl", append([]string{"--db=unix:" + filepath.Join(cfg.RunDir, "db.sock"), "--timeout=10"}, args...)...).CombinedOutput()
		return string(out), err
	}
	run := func(t *testing.T) (stopFn func(), reasons func() []string, out *syncBuffer) {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out = &syncBuffer{}
		s.out = out
		var mu sync.Mutex
		var got []string
		s.onRestart = func(r string) { mu.Lock(); got = append(got, r); mu.Unlock() }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		stopFn = func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("supervisor: %v", err)
			}
		}
		return stopFn, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }, out
	}

	stop1, reasons, out := run(t)
	deadline := time.Now().Add(30 * time.Second)
	for len(reasons()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if r := reasons(); len(r) != 1 || r[0] != ReasonNoUpcallHandlers {
		stop1()
		t.Fatalf("restarts %v, want exactly one with reason %s; output:\n%s", r, ReasonNoUpcallHandlers, out)
	}
	// ovs-vsctl without --no-wait returns only once ovs-vswitchd has applied the change.
	if o, err := vsctl("add-br", "ecovs0", "--", "set", "bridge", "ecovs0", "datapath_type=netdev"); err != nil {
		stop1()
		t.Fatalf("add-br after the restart: %v: %s\n%s", err, o, out)
	}
	stop1()
	if r := reasons(); len(r) != 1 {
		t.Errorf("restarts %v after the bridge, want one", r)
	}

	stop2, reasons2, out2 := run(t)
	defer stop2()
	var o string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if o, err = vsctl("list-br"); err == nil {
			break
		}
	}
	if strings.TrimSpace(o) != "ecovs0" {
		t.Errorf("bridges after a restart: %q, want ecovs0 (kept in the database)\n%s", o, out2)
	}
	if r := reasons2(); len(r) != 0 {
		t.Errorf("second start restarted ovs-vswitchd: %v", r)
	}
	// Clean up the userspace datapath's devices of the bridge.
	_, _ = vsctl("del-br", "ecovs0")
}
