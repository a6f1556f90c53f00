// Package benchstat holds the statistics the benchmarks print: nearest-rank percentiles of
// durations, always shown with the number of samples they come from.
package benchstat

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of ds: the smallest sample
// that at least p % of the samples are less than or equal to, i.e. the ⌈p·n/100⌉-th smallest.
// For small n this is coarse, which is why every percentile is printed with its n: a p99 of fewer
// than 100 samples is the maximum; of 100 samples it is the 99th smallest (the second largest,
// the one sample above it being the worst 1 %); of 200 the 198th.
// An empty ds gives 0.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// The small epsilon keeps float rounding (0.99*100 = 99.00000000000001) from adding a rank.
	rank := int(math.Ceil(p*float64(len(s))/100 - 1e-9))
	rank = max(1, min(rank, len(s)))
	return s[rank-1]
}

// Seconds formats "n=<n> p50 <s>s p99 <s>s" for ds, in seconds with two decimals.
func Seconds(ds []time.Duration) string {
	return fmt.Sprintf("n=%-4d p50 %6.2fs p99 %6.2fs", len(ds), Percentile(ds, 50).Seconds(), Percentile(ds, 99).Seconds())
}

// Millis formats "n=<n> p50=<ms>ms p99=<ms>ms" for ds, in milliseconds with one decimal.
func Millis(ds []time.Duration) string {
	return fmt.Sprintf("n=%-4d p50=%7.1fms p99=%7.1fms", len(ds), ms(Percentile(ds, 50)), ms(Percentile(ds, 99)))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
