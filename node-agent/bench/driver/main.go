//go:build bench

// Command driver is `make bench-agent`: it builds 500 containers' real cgroups (v1, cgroupfs layout,
// one sleeping process each), runs the agent's collector and cAdvisor's manager on that tree at the
// same time for the same duration (the collector also a second time with Odin encoding and spooling;
// cAdvisor twice: with the agent's metric families, and a basic
// set), and compares their CPU seconds and peak RSS.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/testutil/cgtest"
)

func main() {
	bin := flag.String("bin", "bin", "directory with bench-agent-collector and bench-agent-cadvisor")
	containers := flag.Int("containers", 500, "containers (two per pod)")
	step := flag.Duration("step", 10*time.Second, "collection interval")
	duration := flag.Duration("duration", 65*time.Second, "run time of each side (>= 60s)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-agent needs root: it creates real cgroups")
		os.Exit(2)
	}
	tree := cgtest.NewRealV1("/sys/fs/cgroup", cgroups.DriverCgroupfs, "eagent-bench")
	code := run(tree, *bin, *containers, *step, *duration)
	if err := tree.Remove(); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		code = 1
	}
	os.Exit(code)
}

func run(tree *cgtest.Tree, bin string, containers int, step, duration time.Duration) int {
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

	args := []string{"-parent", tree.Hier.Parent, "-step", step.String(), "-duration", duration.String()}
	agent := exec.Command(filepath.Join(bin, "bench-agent-collector"), args...)
	cadv := exec.Command(filepath.Join(bin, "bench-agent-cadvisor"), append(args, "-metrics", "same")...)
	basic := exec.Command(filepath.Join(bin, "bench-agent-cadvisor"), append(args, "-metrics", "basic")...)
	spool, err := os.MkdirTemp("", "eagent-bench-spool-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(spool)
	withOdin := exec.Command(filepath.Join(bin, "bench-agent-collector"), append(args, "-odin-spool", spool)...)
	for _, c := range []*exec.Cmd{agent, cadv, basic, withOdin} {
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "start", c.Path, err)
			return 1
		}
	}
	fmt.Printf("running all four for %v at a %v step...\n", duration, step)
	aErr, cErr, bErr, oErr := agent.Wait(), cadv.Wait(), basic.Wait(), withOdin.Wait()
	if aErr != nil || cErr != nil || bErr != nil || oErr != nil {
		fmt.Fprintln(os.Stderr, "bench process failed:", aErr, cErr, bErr, oErr)
		return 1
	}
	oCPU, oRSS := usage(withOdin)
	aCPU, aRSS := usage(agent)
	cCPU, cRSS := usage(cadv)
	bCPU, bRSS := usage(basic)
	fmt.Printf("agent collector: cpu %.3fs (%.2f%% of a core), peak rss %.1f MiB\n", aCPU, 100*aCPU/duration.Seconds(), aRSS)
	fmt.Printf("cadvisor manager, same metric families: cpu %.3fs (%.2f%% of a core), peak rss %.1f MiB\n", cCPU, 100*cCPU/duration.Seconds(), cRSS)
	fmt.Printf("cadvisor manager, basic families (no process/OOM): cpu %.3fs (%.2f%% of a core), peak rss %.1f MiB; agent/basic ratio %.3f\n",
		bCPU, 100*bCPU/duration.Seconds(), bRSS, aCPU/bCPU)
	fmt.Printf("agent collector + Odin encoding/spooling: cpu %.3fs (%.2f%% of a core), peak rss %.1f MiB; ratio to cadvisor %.3f\n",
		oCPU, 100*oCPU/duration.Seconds(), oRSS, oCPU/cCPU)
	fmt.Printf("RESULT agent_cpu_vs_cadvisor_ratio=%.3f\n", aCPU/cCPU)
	fmt.Printf("RESULT agent_rss_mib=%.1f\n", aRSS)
	return 0
}

// usage returns user+system CPU seconds and peak RSS (MiB) of a finished child.
func usage(c *exec.Cmd) (cpu, rssMiB float64) {
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return cpu, float64(ru.Maxrss) / 1024
}
