package benchdp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ecloud-io/ecloud/test/benchstat"
)

// Ports of the servers on every endpoint.
const (
	IperfPort = 5201
	RRPort    = 7101
)

// Node is one machine of the benchmark: how to run commands there and where the benchdp
// binary is on it.
type Node struct {
	Name   string
	Runner Runner
	Tool   string
}

// Endpoint is one end of a path: a node, the netns there ("" = the node's own) and the IP the
// endpoint has in it (servers bind to it).
type Endpoint struct {
	Node  *Node
	NetNS string
	IP    string
}

func (e Endpoint) String() string { return fmt.Sprintf("%s/%s/%s", e.Node.Name, e.NetNS, e.IP) }

// Path is one measured path; Key names it in the output (datapath_<Key>_tput_mbps, …).
type Path struct {
	Key            string
	Client, Server Endpoint
	// Setting, if set, is a device setting only this path is measured with: Apply runs before
	// each of its runs and Revert after it, also after a failed run or a failed Apply (Revert
	// takes back only what Apply changed).
	Setting *Setting
}

// Setting is a change made on some nodes for one path and taken back after it.
type Setting struct {
	Apply, Revert func(context.Context) error
}

// Options are the measurement's sizes.
type Options struct {
	// Iterations over all paths (in Order); TputSeconds per iperf3 run (after one omitted
	// second of slow start); RRRequests round trips per RR run.
	Iterations  int
	TputSeconds int
	RRRequests  int
	// Log gets progress lines.
	Log io.Writer
}

// Default sizes.
func (o *Options) Default() {
	if o.Iterations <= 0 {
		o.Iterations = 4
	}
	if o.TputSeconds <= 0 {
		o.TputSeconds = 3
	}
	if o.RRRequests <= 0 {
		o.RRRequests = 2000
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Result is what one path measured over all iterations.
type Result struct {
	Path        Path
	TputMbps    []float64 // one per iteration
	Retransmits int
	RR          []time.Duration // every round trip of every iteration
}

// TputMedian is the median of the iterations' throughputs.
func (r Result) TputMedian() float64 {
	if len(r.TputMbps) == 0 {
		return 0
	}
	s := slices.Clone(r.TputMbps)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// RRp50 and RRp99 are nearest-rank percentiles of the pooled round trips.
func (r Result) RRp50() time.Duration { return benchstat.Percentile(r.RR, 50) }

// RRp99 is the pooled round trips' 99th percentile.
func (r Result) RRp99() time.Duration { return benchstat.Percentile(r.RR, 99) }

// Order is the order of n paths in iteration k: rotated by k/2 half-turns, and reversed in odd
// iterations, so every path runs early and late and after different neighbours (mirrored
// pairs: ABCD DCBA CDAB BADC …).
func Order(n, k int) []int {
	out := make([]int, n)
	shift := (k / 2) * ((n + 1) / 2)
	for i := range out {
		out[i] = (i + shift) % n
	}
	if k%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

// Measure starts an iperf3 server and an RR server on every server endpoint, checks every path
// with a short discarded RR run (waiting up to a minute for the servers and the datapath), then
// measures each path's throughput (iperf3) and RR round trips, Iterations times, in Order.
func Measure(ctx context.Context, paths []Path, opt Options) ([]Result, error) {
	opt.Default()
	started := map[string]bool{}
	for _, p := range paths {
		s := p.Server
		if started[s.String()] {
			continue
		}
		started[s.String()] = true
		if err := s.Node.Runner.Start(ctx, s.NetNS, "iperf3", "-s", "-B", s.IP, "-p", strconv.Itoa(IperfPort)); err != nil {
			return nil, err
		}
		if err := s.Node.Runner.Start(ctx, s.NetNS, s.Node.Tool, "rr-server", "-listen", addr(s.IP, RRPort)); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		deadline := time.Now().Add(time.Minute)
		for {
			_, err := rrRun(ctx, p, 50)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("path %s (%s -> %s) does not work: %w", p.Key, p.Client, p.Server, err)
			}
			time.Sleep(time.Second)
		}
	}
	res := make([]Result, len(paths))
	for i, p := range paths {
		res[i].Path = p
	}
	for k := range opt.Iterations {
		order := Order(len(paths), k)
		var names []string
		for _, i := range order {
			names = append(names, paths[i].Key)
		}
		fmt.Fprintf(opt.Log, "iteration %d/%d: %v\n", k+1, opt.Iterations, names)
		for _, i := range order {
			p := paths[i]
			mbps, retr, rr, err := runPath(ctx, p, opt)
			if err != nil {
				return nil, err
			}
			res[i].TputMbps = append(res[i].TputMbps, mbps)
			res[i].Retransmits += retr
			res[i].RR = append(res[i].RR, rr...)
			fmt.Fprintf(opt.Log, "  %-32s %9.1f Mbit/s (%d retransmits)  rr n=%d p50 %s p99 %s\n", p.Key, mbps, retr,
				len(rr), us(benchstat.Percentile(rr, 50)), us(benchstat.Percentile(rr, 99)))
		}
	}
	return res, nil
}

// runPath measures p's throughput and round trips once, with p's Setting applied.
func runPath(ctx context.Context, p Path, opt Options) (mbps float64, retr int, rr []time.Duration, err error) {
	if p.Setting != nil {
		if err := p.Setting.Apply(ctx); err != nil {
			// Revert what Apply changed before it failed.
			return 0, 0, nil, errors.Join(fmt.Errorf("path %s: apply its setting: %w", p.Key, err), p.Setting.Revert(ctx))
		}
		defer func() {
			if rerr := p.Setting.Revert(ctx); rerr != nil && err == nil {
				err = fmt.Errorf("path %s: revert its setting: %w", p.Key, rerr)
			}
		}()
	}
	if mbps, retr, err = tputRun(ctx, p, opt.TputSeconds); err != nil {
		return 0, 0, nil, err
	}
	if rr, err = rrRun(ctx, p, opt.RRRequests); err != nil {
		return 0, 0, nil, err
	}
	return mbps, retr, rr, nil
}

func addr(ip string, port int) string { return fmt.Sprintf("%s:%d", ip, port) }

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d.Nanoseconds())/1e3) }

func tputRun(ctx context.Context, p Path, seconds int) (float64, int, error) {
	c := p.Client
	// The whole run plus set-up; a hung server fails the run instead of the benchmark.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+60)*time.Second)
	defer cancel()
	out, err := c.Node.Runner.Run(ctx, c.NetNS, "iperf3", "-c", p.Server.IP, "-p", strconv.Itoa(IperfPort),
		"-t", strconv.Itoa(seconds), "-O", "1", "-J")
	if err != nil {
		return 0, 0, fmt.Errorf("path %s: throughput: %w", p.Key, err)
	}
	mbps, retr, err := ParseIperf(out)
	if err != nil {
		return 0, 0, fmt.Errorf("path %s: %w", p.Key, err)
	}
	return mbps, retr, nil
}

func rrRun(ctx context.Context, p Path, n int) ([]time.Duration, error) {
	c := p.Client
	// A bound on the whole run (the client's own, and a longer one on the command) that only a
	// broken path reaches: round trips of 10 ms (emulated guests on a loaded machine) take 20 s
	// for 2000.
	const bound = 5 * time.Minute
	ctx, cancel := context.WithTimeout(ctx, bound+time.Minute)
	defer cancel()
	out, err := c.Node.Runner.Run(ctx, c.NetNS, c.Node.Tool, "rr-client", "-addr", addr(p.Server.IP, RRPort), "-n", strconv.Itoa(n),
		"-timeout", bound.String())
	if err != nil {
		return nil, fmt.Errorf("path %s: request/response: %w", p.Key, err)
	}
	return DecodeRR(out)
}

// StopServers stops the servers Measure started on nodes.
func StopServers(ctx context.Context, nodes ...*Node) {
	for _, n := range nodes {
		_ = n.Runner.StopAll(ctx)
	}
}

// Report prints one line per path (n, median and range of the throughput, RR p50/p99 with their
// n) and then its RESULT lines: datapath_<key>_tput_mbps, _rr_p50_us, _rr_p99_us.
func Report(w io.Writer, res []Result) {
	for _, r := range res {
		lo, hi := slices.Min(r.TputMbps), slices.Max(r.TputMbps)
		fmt.Fprintf(w, "datapath %-30s tput n=%d median %.1f Mbit/s (%.1f..%.1f, %d retransmits)  rr n=%d p50 %s p99 %s\n",
			r.Path.Key, len(r.TputMbps), r.TputMedian(), lo, hi, r.Retransmits, len(r.RR), us(r.RRp50()), us(r.RRp99()))
	}
	for _, r := range res {
		fmt.Fprintf(w, "RESULT datapath_%s_tput_mbps=%.1f\n", r.Path.Key, r.TputMedian())
		fmt.Fprintf(w, "RESULT datapath_%s_rr_p50_us=%.1f\n", r.Path.Key, float64(r.RRp50().Nanoseconds())/1e3)
		fmt.Fprintf(w, "RESULT datapath_%s_rr_p99_us=%.1f\n", r.Path.Key, float64(r.RRp99().Nanoseconds())/1e3)
	}
}

// Ratio is one RESULT ratio between two paths' figures.
type Ratio struct {
	Name     string // RESULT datapath_<Name>
	Num, Den string // path keys
	// RRp99 compares the RR p99s; otherwise the median throughputs.
	RRp99 bool
}

// ReportRatios prints each ratio as `RESULT datapath_<name>=<num/den>`; a ratio whose paths
// were not measured is an error.
func ReportRatios(w io.Writer, res []Result, ratios []Ratio) error {
	by := map[string]Result{}
	for _, r := range res {
		by[r.Path.Key] = r
	}
	for _, q := range ratios {
		num, ok1 := by[q.Num]
		den, ok2 := by[q.Den]
		if !ok1 || !ok2 {
			return fmt.Errorf("ratio %s: path %s or %s not measured", q.Name, q.Num, q.Den)
		}
		var v float64
		if q.RRp99 {
			v = float64(num.RRp99()) / float64(den.RRp99())
		} else {
			v = num.TputMedian() / den.TputMedian()
		}
		fmt.Fprintf(w, "RESULT datapath_%s=%.3f\n", q.Name, v)
	}
	return nil
}

// Diagnose prints, prefixed "datapath diag <node>:", what each command prints on node n in its
// host netns hostNS: the datapath's counters and flows after a run (why a path is slow).
func Diagnose(ctx context.Context, w io.Writer, n *Node, hostNS string, cmds ...[]string) {
	for _, c := range cmds {
		out, err := n.Runner.Run(ctx, hostNS, c...)
		if err != nil {
			fmt.Fprintf(w, "datapath diag %s: %v\n", n.Name, err)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fmt.Fprintf(w, "datapath diag %s: %s\n", n.Name, line)
		}
	}
}
