package agent_test

import (
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agent"
)

func TestHealthy(t *testing.T) {
	t0 := time.Unix(1_796_400_000, 0)
	step := 30 * time.Second
	for _, tt := range []struct {
		name          string
		last, started time.Time
		now           time.Time
		want          bool
	}{
		{"not started", time.Time{}, time.Time{}, t0, false},
		{"started, waiting for the first grid point", time.Time{}, t0, t0.Add(step), true},
		{"started, no pass within three steps", time.Time{}, t0, t0.Add(3*step + time.Second), false},
		{"a recent pass", t0.Add(time.Minute), t0, t0.Add(time.Minute + step), true},
		{"the last pass too long ago", t0.Add(time.Minute), t0, t0.Add(time.Minute + 3*step + time.Second), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := agent.Healthy(tt.last, tt.started, tt.now, step); got != tt.want {
				t.Errorf("Healthy = %v, want %v", got, tt.want)
			}
		})
	}
}
