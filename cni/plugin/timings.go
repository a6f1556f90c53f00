package plugin

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// TimingsEnv, when set in the plugin's environment, makes ADD print how long its phases took
// to stderr (one "ecloud-cni timings: phase=ms ..." line; benchmarks read it, runtimes only
// log stderr).
const TimingsEnv = "ECLOUD_CNI_TIMINGS"

// timings records the phases of one command.
type timings struct {
	mu     sync.Mutex
	start  time.Time
	last   time.Time
	phases []string
}

func newTimings() *timings {
	now := time.Now()
	return &timings{start: now, last: now}
}

// mark ends a phase.
func (t *timings) mark(phase string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	t.phases = append(t.phases, fmt.Sprintf("%s=%.3f", phase, float64(now.Sub(t.last).Microseconds())/1000))
	t.last = now
}

// add records a phase measured elsewhere (one that ran in parallel).
func (t *timings) add(phase string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phases = append(t.phases, fmt.Sprintf("%s=%.3f", phase, float64(d.Microseconds())/1000))
}

// print writes the line to w when TimingsEnv is set.
func (t *timings) print(w io.Writer) {
	if os.Getenv(TimingsEnv) == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(w, "ecloud-cni timings: %s total=%.3f\n", strings.Join(t.phases, " "), float64(time.Since(t.start).Microseconds())/1000)
}

// ParseTimings reads the phases (ms) of a timings line in stderr output.
func ParseTimings(stderr string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(stderr, "\n") {
		rest, ok := strings.CutPrefix(line, "ecloud-cni timings: ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			var ms float64
			if _, err := fmt.Sscanf(v, "%g", &ms); err == nil {
				out[k] = ms
			}
		}
	}
	return out
}
