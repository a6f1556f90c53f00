package benchstat

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	// samples(n) is 1s, 2s, ..., n s, shuffled a little so the sort matters.
	samples := func(n int) []time.Duration {
		ds := make([]time.Duration, 0, n)
		for i := n; i >= 1; i-- {
			ds = append(ds, time.Duration(i)*time.Second)
		}
		return ds
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one sample is every percentile", samples(1), 50, time.Second},
		{"p99 of 10 is the maximum", samples(10), 99, 10 * time.Second},
		{"p50 of 10 is the 5th", samples(10), 50, 5 * time.Second},
		{"p99 of 100 is the 99th", samples(100), 99, 99 * time.Second},
		{"p99 of 200 is the 198th", samples(200), 99, 198 * time.Second},
		{"p50 of 101 is the 51st", samples(101), 50, 51 * time.Second},
		{"p100 is the maximum", samples(7), 100, 7 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.ds, tc.p); got != tc.want {
				t.Errorf("Percentile(n=%d, %v) = %v, want %v", len(tc.ds), tc.p, got, tc.want)
			}
		})
	}
}

func TestFormatsShowN(t *testing.T) {
	ds := []time.Duration{time.Second, 3 * time.Second}
	if got, want := Seconds(ds), "n=2    p50   1.00s p99   3.00s"; got != want {
		t.Errorf("Seconds = %q, want %q", got, want)
	}
	if got, want := Millis(ds), "n=2    p50= 1000.0ms p99= 3000.0ms"; got != want {
		t.Errorf("Millis = %q, want %q", got, want)
	}
}
