package benchdp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ServeRR answers every connection accepted on ln with request/response: each byte read is
// written back at once. It returns when ln is closed.
func ServeRR(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			b := make([]byte, 1)
			for {
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				if _, err := c.Write(b); err != nil {
					return
				}
			}
		}()
	}
}

// RR opens one TCP connection to addr (Nagle off, as Go sets it) and makes n 1-byte
// request/response round trips on it, one after the other; it returns each round trip's time.
// The connection's set-up is not timed.
func RR(ctx context.Context, addr string, n int) ([]time.Duration, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rr: dial %s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	out := make([]time.Duration, 0, n)
	req, resp := []byte{'x'}, make([]byte, 1)
	for range n {
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			return out, fmt.Errorf("rr %s: request %d: %w", addr, len(out)+1, err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return out, fmt.Errorf("rr %s: response %d: %w", addr, len(out)+1, err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// rrSamples is what `benchdp rr-client` prints: the round trips in nanoseconds.
type rrSamples struct {
	NS []int64 `json:"ns"`
}

// EncodeRR is the rr-client's output for ds.
func EncodeRR(ds []time.Duration) []byte {
	s := rrSamples{NS: make([]int64, len(ds))}
	for i, d := range ds {
		s.NS[i] = d.Nanoseconds()
	}
	b, _ := json.Marshal(s)
	return b
}

// DecodeRR parses the rr-client's output.
func DecodeRR(b []byte) ([]time.Duration, error) {
	var s rrSamples
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("rr-client output %.80q: %w", b, err)
	}
	if len(s.NS) == 0 {
		return nil, fmt.Errorf("rr-client output %.80q: no samples", b)
	}
	out := make([]time.Duration, len(s.NS))
	for i, ns := range s.NS {
		out[i] = time.Duration(ns)
	}
	return out, nil
}

// iperfResult is the part of `iperf3 -J` the benchmark reads.
type iperfResult struct {
	End struct {
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Seconds       float64 `json:"seconds"`
		} `json:"sum_received"`
		SumSent struct {
			Retransmits int `json:"retransmits"`
		} `json:"sum_sent"`
	} `json:"end"`
	Error string `json:"error"`
}

// ParseIperf returns the receiver's throughput in Mbit/s and the sender's retransmits from
// `iperf3 -c … -J` output.
func ParseIperf(b []byte) (mbps float64, retransmits int, err error) {
	var r iperfResult
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, 0, fmt.Errorf("iperf3 output %.80q: %w", b, err)
	}
	if r.Error != "" {
		return 0, 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.Seconds <= 0 {
		return 0, 0, fmt.Errorf("iperf3 output has no receiver summary: %.120q", b)
	}
	return r.End.SumReceived.BitsPerSecond / 1e6, r.End.SumSent.Retransmits, nil
}
