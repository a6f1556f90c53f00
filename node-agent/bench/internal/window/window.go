//go:build bench

// Package window measures a bench process's own CPU time over its measured window: from the end of
// its warm-up (start-up, the first discovery, caches filled) to the end of its run. Each bench
// process prints one Line on stdout when it exits; the driver parses it with Parse.
package window

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"
)

// prefix starts the one line a bench process prints with its measured CPU.
const prefix = "bench-window "

// Window records the process's CPU time (user+system, getrusage RUSAGE_SELF) when its warm-up ends.
type Window struct {
	mu       sync.Mutex
	startCPU time.Duration
	start    time.Time
	started  bool
	timer    *time.Timer
}

// Start arms the window: its measured part begins warmup from now.
func Start(warmup time.Duration) *Window {
	w := &Window{}
	w.timer = time.AfterFunc(warmup, w.mark)
	return w
}

func (w *Window) mark() {
	cpu := selfCPU()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.startCPU, w.start, w.started = cpu, time.Now(), true
}

// Line ends the window and returns the line to print: the CPU seconds and the wall seconds since
// the warm-up ended. It fails when the run ended before its warm-up did.
func (w *Window) Line() (string, error) {
	w.timer.Stop()
	cpu := selfCPU()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		return "", fmt.Errorf("the run ended before its warm-up did: nothing measured")
	}
	return fmt.Sprintf("%scpu_s=%.3f wall_s=%.3f", prefix, (cpu - w.startCPU).Seconds(), time.Since(w.start).Seconds()), nil
}

// Parse finds the window line in a bench process's stdout.
func Parse(out string) (cpuS, wallS float64, err error) {
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			if _, err := fmt.Sscanf(rest, "cpu_s=%g wall_s=%g", &cpuS, &wallS); err != nil {
				return 0, 0, fmt.Errorf("parse %q: %w", l, err)
			}
			return cpuS, wallS, nil
		}
	}
	return 0, 0, fmt.Errorf("no %q line in the output", strings.TrimSpace(prefix))
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
