package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/test/harness"
)

// buildIPController builds cni/cmd/ip-controller into a temporary directory and returns its path.
func buildIPController(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "ip-controller")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ecloud-io/ecloud/cni/cmd/ip-controller")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build ip-controller: %v: %s", err, out)
	}
	return bin
}

// ipControllerProcess runs the ip-controller binary as a child process against a control plane
// (through its kubeconfig), one run after the other: Kill SIGKILLs the current run, Start begins
// a new one with a leader-election identity of its own. Each run's output goes to a file that is
// written to the test log if the test fails. The process is killed at test end.
type ipControllerProcess struct {
	tb    testing.TB
	cp    *harness.ControlPlane
	bin   string
	args  []string
	dir   string
	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{} // closed when the current run has exited
	err   error         // the current run's exit error, once done
	runs  int
	logs  []string
	lease string // Lease namespace/name the runs compete for
}

// startIPControllerProcess starts the first run. args are extra ip-controller flags; the runs use
// a Lease in namespace "default".
func startIPControllerProcess(tb testing.TB, cp *harness.ControlPlane, bin string, args ...string) *ipControllerProcess {
	tb.Helper()
	p := &ipControllerProcess{tb: tb, cp: cp, bin: bin, dir: tb.TempDir(), lease: "ecloud-ip-controller",
		args: append([]string{"--kubeconfig=" + cp.Kubeconfig, "--bind-address=", "--leader-elect-resource-namespace=default"}, args...)}
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			for _, path := range p.logs {
				out, _ := os.ReadFile(path)
				tb.Logf("=== %s ===\n%s", filepath.Base(path), out)
			}
		}
	})
	p.Start()
	return p
}

// Identity is the leader-election identity of the current run.
func (p *ipControllerProcess) Identity() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.identityLocked()
}

func (p *ipControllerProcess) identityLocked() string {
	return fmt.Sprintf("ip-controller-run-%d", p.runs)
}

// Start begins a new run (the previous one must have been killed or have exited).
func (p *ipControllerProcess) Start() {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs++
	logPath := filepath.Join(p.dir, fmt.Sprintf("run-%d.log", p.runs))
	f, err := os.Create(logPath)
	if err != nil {
		p.tb.Fatalf("ip-controller log: %v", err)
	}
	p.logs = append(p.logs, logPath)
	cmd := exec.Command(p.bin, append(p.args, "--leader-elect-identity="+p.identityLocked())...)
	cmd.Stdout, cmd.Stderr = f, f
	// Dies with the test binary even if the test never reaches its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		p.tb.Fatalf("start ip-controller: %v", err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			p.err = err
		}
		p.mu.Unlock()
		close(done)
	}()
}

// Kill SIGKILLs the current run and waits until it is gone; a run that exited already is left.
func (p *ipControllerProcess) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.tb.Errorf("kill ip-controller: %v", err)
	}
	<-done
}

// Exited reports whether the current run ended without being killed, and how.
func (p *ipControllerProcess) Exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// WaitLeading waits until the current run holds the Lease. A run that exits on its own meanwhile
// (it lost the Lease, e.g. while the apiserver was down, and stops as it should) is started
// again, as its Deployment would; restarts counts those.
func (p *ipControllerProcess) WaitLeading(timeout time.Duration) (restarts int) {
	p.tb.Helper()
	harness.Eventually(p.tb, timeout, func() (bool, error) {
		if exited, err := p.Exited(); exited {
			p.tb.Logf("%s exited on its own (%v); starting it again", p.Identity(), err)
			restarts++
			p.Start()
			return false, nil
		}
		l, err := p.cp.Kube.CoordinationV1().Leases("default").Get(p.cp.Ctx, p.lease, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		id := p.Identity()
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != id {
			return false, fmt.Errorf("lease held by %v, want %s", ptrString(l.Spec.HolderIdentity), id)
		}
		return true, nil
	}, "ip-controller run %s to take the lease over", p.Identity())
	return restarts
}

func ptrString(s *string) string {
	if s == nil {
		return "nobody"
	}
	return *s
}
