// Package network collects the interface counters of a pod's network namespace (read from
// /proc/<pid>/net/dev of one of its processes). Series are pod-level (container="") because all
// containers of a pod share the namespace; host-network pods and loopback are skipped, as in cAdvisor.
package network

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// Name of the collector.
const Name = "network"

func desc(name, help string) *collector.Desc {
	return &collector.Desc{Name: "container_network_" + name, Help: help, Kind: collector.Counter, Labels: []string{"interface"}}
}

// columns of /proc/net/dev after the interface name, in file order; nil ones are not exported.
var columns = [16]*collector.Desc{
	0:  desc("receive_bytes_total", "Cumulative count of bytes received."),
	1:  desc("receive_packets_total", "Cumulative count of packets received."),
	2:  desc("receive_errors_total", "Cumulative count of errors encountered while receiving."),
	3:  desc("receive_packets_dropped_total", "Cumulative count of packets dropped while receiving."),
	8:  desc("transmit_bytes_total", "Cumulative count of bytes transmitted."),
	9:  desc("transmit_packets_total", "Cumulative count of packets transmitted."),
	10: desc("transmit_errors_total", "Cumulative count of errors encountered while transmitting."),
	11: desc("transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting."),
}

// Collector reads per-interface counters of the pod's network namespace.
type Collector struct{}

var _ collector.Collector = &Collector{}

// New returns the network collector.
func New() *Collector { return &Collector{} }

// Name implements collector.Collector.
func (*Collector) Name() string { return Name }

// Describe implements collector.Collector.
func (*Collector) Describe() []*collector.Desc {
	var out []*collector.Desc
	for _, d := range columns {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// Collect implements collector.Collector.
func (*Collector) Collect(env *collector.Env, t *collector.Target, sink collector.Sink) error {
	if t.Container != "" || t.HostNetwork {
		return nil
	}
	pid := 0
	for _, child := range t.Children {
		p, err := env.Reader.FirstPID(env.Hierarchy.Path("cpu", child))
		if err == nil && p > 0 {
			pid = p
			break
		}
	}
	if pid == 0 {
		return nil // no process yet (or all exited): nothing to read
	}
	path := env.ProcRoot + "/" + strconv.Itoa(pid) + "/net/dev"
	b, err := env.Reader.ReadFile(path)
	if err != nil {
		return err
	}
	return parse(b, path, sink)
}

func parse(b []byte, path string, sink collector.Sink) error {
	var fields [16][]byte
	var perr error
	lineNo := 0
	cgroups.ForEachRawLine(b, func(line []byte) {
		lineNo++
		if lineNo <= 2 { // two header lines
			return
		}
		name, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return
		}
		iface := string(bytes.TrimSpace(name))
		if iface == "lo" {
			return
		}
		cgroups.ForEachLine(rest, fields[:], func(f [][]byte) {
			if len(f) < 12 {
				perr = fmt.Errorf("parse %s: interface %s has %d columns, want 16", path, iface, len(f))
				return
			}
			for i, d := range columns {
				if d == nil || i >= len(f) {
					continue
				}
				if v, err := cgroups.ParseUint(f[i]); err == nil {
					sink.Add(d, float64(v), iface)
				}
			}
		})
	})
	return perr
}
