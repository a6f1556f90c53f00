//go:build bench

// Command driver is `make bench-agent`: it builds 500 containers' real cgroups (v1, cgroupfs layout,
// one sleeping process each) and runs five sides on that tree at the same time for the same time:
//   - agent vs cadvisor: the agent's collector with every collector, cAdvisor's manager with the
//     families behind the same metric names. Not the same work: cAdvisor's process family also
//     counts every process's open fds and sockets and reads its ulimits (the agent exports only
//     the thread counts from the pids controller), and the agent also reads PSI (v2 only, nothing
//     on this v1 tree).
//   - agent-basic vs cadvisor-basic: the same work on both sides: cpu, memory, block IO, network.
//   - agent-odin: the agent with every collector plus Odin encoding and spooling.
//
// Both sides discover the containers: cAdvisor by watching the tree, the agent by listing it
// before every pass. cAdvisor also keeps the root container (machine stats), as in the kubelet.
// CPU is each process's own user+system time from the end of a warm-up (start-up, the first
// discovery) to the end of the run, compared per second of that window (on a loaded machine a
// cAdvisor query can end the run late); peak RSS is the whole run's.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ecloud-io/ecloud/node-agent/bench/internal/window"
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/testutil/cgtest"
)

func main() {
	bin := flag.String("bin", "bin", "directory with bench-agent-collector and bench-agent-cadvisor")
	containers := flag.Int("containers", 500, "containers (two per pod)")
	step := flag.Duration("step", 10*time.Second, "collection interval")
	warmup := flag.Duration("warmup", 15*time.Second, "run time of each side before its CPU is measured (start-up, first discovery)")
	duration := flag.Duration("duration", 60*time.Second, "measured run time of each side after its warm-up")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-agent needs root: it creates real cgroups")
		os.Exit(2)
	}
	tree := cgtest.NewRealV1("/sys/fs/cgroup", cgroups.DriverCgroupfs, "eagent-bench")
	code := run(tree, *bin, *containers, *step, *warmup, *duration)
	if err := tree.Remove(); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		code = 1
	}
	os.Exit(code)
}

func run(tree *cgtest.Tree, bin string, containers int, step, warmup, duration time.Duration) int {
	start := time.Now()
	var sleepers []*exec.Cmd
	defer func() {
		for _, c := range sleepers {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	for i := 0; i < containers/2; i++ {
		qos := cgroups.QoSBurstable
		if i%2 == 1 {
			qos = cgroups.QoSBestEffort
		}
		pod := tree.AddPod(qos, fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		for c := 0; c < 2; c++ {
			dir := tree.AddContainer(pod, fmt.Sprintf("%062x%02x", i, c))
			cmd := exec.Command("sleep", "100000")
			if err := cmd.Start(); err != nil {
				fmt.Fprintln(os.Stderr, "start sleeper:", err)
				return 1
			}
			sleepers = append(sleepers, cmd)
			if err := tree.Move(cmd.Process.Pid, dir); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	fmt.Printf("tree: %d containers in %d pods under %s (built in %v)\n", containers, containers/2, tree.Hier.Parent, time.Since(start).Round(time.Millisecond))

	args := []string{"-parent", tree.Hier.Parent, "-step", step.String(), "-warmup", warmup.String(), "-duration", duration.String()}
	spool, err := os.MkdirTemp("", "eagent-bench-spool-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(spool)
	sides := []*side{
		{name: "agent", what: "agent collector, every collector (cpu, memory, pids, blkio, network, psi)", bin: "bench-agent-collector", args: []string{"-collectors", "all"}},
		{name: "cadvisor", what: "cadvisor manager, the families behind the agent's metrics (cpu, memory, diskIO, network, process, OOM)", bin: "bench-agent-cadvisor", args: []string{"-metrics", "same"}},
		{name: "agent-basic", what: "agent collector, basic set (cpu, memory, blkio, network)", bin: "bench-agent-collector", args: []string{"-collectors", "basic"}},
		{name: "cadvisor-basic", what: "cadvisor manager, basic set (cpu, memory, diskIO, network)", bin: "bench-agent-cadvisor", args: []string{"-metrics", "basic"}},
		{name: "agent-odin", what: "agent collector, every collector + Odin encoding/spooling", bin: "bench-agent-collector", args: []string{"-collectors", "all", "-odin-spool", spool}},
	}
	for _, s := range sides {
		s.cmd = exec.Command(filepath.Join(bin, s.bin), append(append([]string{}, args...), s.args...)...)
		s.cmd.Stdout, s.cmd.Stderr = &s.out, os.Stderr
		if err := s.cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "start", s.cmd.Path, err)
			return 1
		}
	}
	fmt.Printf("running all %d sides at once: %v warm-up, then %v measured, at a %v step...\n", len(sides), warmup, duration, step)
	failed := false
	for _, s := range sides {
		if err := s.cmd.Wait(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n%s", s.name, err, s.out.String())
			failed = true
			continue
		}
		if s.cpu, s.wall, err = window.Parse(s.out.String()); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
			failed = true
		}
		s.rss = peakRSS(s.cmd)
	}
	if failed {
		return 1
	}
	by := map[string]*side{}
	for _, s := range sides {
		by[s.name] = s
		fmt.Printf("%s: cpu %.3fs in %.1fs measured (%.2f%% of a core), peak rss %.1f MiB\n", s.what, s.cpu, s.wall, 100*s.cpu/s.wall, s.rss)
	}
	// The ratios compare CPU per second of each side's measured window: a side whose last pass
	// ends late (cAdvisor's query on a loaded machine) measures a longer window, not more work.
	for _, s := range sides[1:] {
		if s.wall > 1.1*sides[0].wall || s.wall < 0.9*sides[0].wall {
			fmt.Printf("note: %s measured %.1fs, %s %.1fs: its last pass ended late (machine load); ratios are per second of each window\n", s.name, s.wall, sides[0].name, sides[0].wall)
		}
	}
	fmt.Printf("agent + Odin vs cadvisor cpu ratio %.3f\n", by["agent-odin"].rate()/by["cadvisor"].rate())
	fmt.Printf("RESULT agent_rss_mib=%.1f\n", by["agent"].rss)
	fmt.Printf("RESULT agent_basic_cpu_vs_cadvisor_basic_ratio=%.3f\n", by["agent-basic"].rate()/by["cadvisor-basic"].rate())
	fmt.Printf("RESULT agent_cpu_vs_cadvisor_ratio=%.3f\n", by["agent"].rate()/by["cadvisor"].rate())
	return 0
}

// rate is the side's CPU seconds per second of its measured window.
func (s *side) rate() float64 { return s.cpu / s.wall }

// side is one bench process: what it runs and what it measured.
type side struct {
	name, what, bin string
	args            []string
	cmd             *exec.Cmd
	out             bytes.Buffer
	cpu, wall, rss  float64
}

// peakRSS returns the peak RSS (MiB) of a finished child.
func peakRSS(c *exec.Cmd) float64 {
	return float64(c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
}
