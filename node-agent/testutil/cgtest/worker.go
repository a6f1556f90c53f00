package cgtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const workerEnv = "ECLOUD_NODE_AGENT_TEST_WORKER"

// MaybeRunWorker turns the test binary into a worker process when it was started by StartWorker.
// Call it first in TestMain.
func MaybeRunWorker() {
	if os.Getenv(workerEnv) != "1" {
		return
	}
	runWorker(os.Stdin, os.Stdout)
	os.Exit(0)
}

// runWorker executes commands, one per line, and answers "done" to each:
// "burn <cpu seconds>" spins until the process used that much CPU; "alloc <MiB>" allocates and
// touches memory it keeps.
func runWorker(in io.Reader, out io.Writer) {
	var keep [][]byte
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "burn":
			secs, _ := strconv.ParseFloat(arg, 64)
			start := cpuTime()
			for cpuTime()-start < time.Duration(secs*float64(time.Second)) {
				for i := 0; i < 1_000_000; i++ {
					_ = i * i
				}
			}
		case "alloc":
			mib, _ := strconv.Atoi(arg)
			for range mib {
				b := make([]byte, 1<<20)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				keep = append(keep, b)
			}
		}
		fmt.Fprintln(out, "done")
	}
	_ = keep
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Worker is a running worker process.
type Worker struct {
	Cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// StartWorker starts the test binary as a worker; it waits for commands.
func StartWorker() (*Worker, error) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return &Worker{Cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// Do sends a command and waits for its answer; an error means the worker died (e.g. OOM-killed).
func (w *Worker) Do(cmd string) error {
	if _, err := fmt.Fprintln(w.in, cmd); err != nil {
		return fmt.Errorf("worker %d: send %q: %w", w.Cmd.Process.Pid, cmd, err)
	}
	line, err := w.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("worker %d: %q: %w", w.Cmd.Process.Pid, cmd, err)
	}
	if strings.TrimSpace(line) != "done" {
		return fmt.Errorf("worker %d: %q answered %q", w.Cmd.Process.Pid, cmd, line)
	}
	return nil
}

// Pid of the worker.
func (w *Worker) Pid() int { return w.Cmd.Process.Pid }

// Stop kills the worker and reaps it.
func (w *Worker) Stop() {
	_ = w.Cmd.Process.Kill()
	_ = w.Cmd.Wait()
}

// ProcCPUSeconds returns utime+stime of a process from /proc/<pid>/stat.
func ProcCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100, nil
}
