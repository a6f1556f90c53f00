// Package blkio collects block IO bytes and operations per device (blkio.throttle.* on v1, io.stat on
// v2) as cAdvisor's container_fs_{reads,writes}[_bytes]_total.
package blkio

import (
	"bytes"
	"os"
	"path/filepath"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// Name of the collector.
const Name = "blkio"

var (
	readBytes  = &collector.Desc{Name: "container_fs_reads_bytes_total", Help: "Cumulative count of bytes read.", Kind: collector.Counter, Labels: []string{"device"}}
	writeBytes = &collector.Desc{Name: "container_fs_writes_bytes_total", Help: "Cumulative count of bytes written.", Kind: collector.Counter, Labels: []string{"device"}}
	reads      = &collector.Desc{Name: "container_fs_reads_total", Help: "Cumulative count of reads completed.", Kind: collector.Counter, Labels: []string{"device"}}
	writes     = &collector.Desc{Name: "container_fs_writes_total", Help: "Cumulative count of writes completed.", Kind: collector.Counter, Labels: []string{"device"}}
)

// Collector reads block IO statistics. It caches device names; it is not safe for concurrent use.
type Collector struct {
	devices map[string]string
}

var _ collector.Collector = &Collector{}

// New returns the block IO collector.
func New() *Collector { return &Collector{devices: map[string]string{}} }

// Name implements collector.Collector.
func (*Collector) Name() string { return Name }

// Describe implements collector.Collector.
func (*Collector) Describe() []*collector.Desc {
	return []*collector.Desc{readBytes, writeBytes, reads, writes}
}

// Collect implements collector.Collector.
func (c *Collector) Collect(env *collector.Env, t *collector.Target, sink collector.Sink) error {
	dir := env.Hierarchy.Path("blkio", t.Dir)
	if env.Hierarchy.Version == cgroups.V2 {
		return c.collectV2(env, dir, sink)
	}
	if err := c.collectV1(env, dir+"/blkio.throttle.io_service_bytes_recursive", readBytes, writeBytes, sink); err != nil {
		return err
	}
	return c.collectV1(env, dir+"/blkio.throttle.io_serviced_recursive", reads, writes, sink)
}

func (c *Collector) collectV1(env *collector.Env, path string, r, w *collector.Desc, sink collector.Sink) error {
	b, err := env.Reader.ReadFile(path)
	if err != nil {
		return err
	}
	var fields [3][]byte
	cgroups.ForEachLine(b, fields[:], func(f [][]byte) {
		if len(f) != 3 {
			return
		}
		v, err := cgroups.ParseUint(f[2])
		if err != nil {
			return
		}
		switch string(f[1]) {
		case "Read":
			sink.Add(r, float64(v), c.device(env, f[0]))
		case "Write":
			sink.Add(w, float64(v), c.device(env, f[0]))
		}
	})
	return nil
}

func (c *Collector) collectV2(env *collector.Env, dir string, sink collector.Sink) error {
	b, err := env.Reader.ReadFile(dir + "/io.stat")
	if err != nil {
		return err
	}
	var fields [16][]byte
	cgroups.ForEachLine(b, fields[:], func(f [][]byte) {
		dev := c.device(env, f[0])
		for _, kv := range f[1:] {
			k, val, ok := bytes.Cut(kv, []byte{'='})
			if !ok {
				continue
			}
			v, err := cgroups.ParseUint(val)
			if err != nil {
				continue
			}
			switch string(k) {
			case "rbytes":
				sink.Add(readBytes, float64(v), dev)
			case "wbytes":
				sink.Add(writeBytes, float64(v), dev)
			case "rios":
				sink.Add(reads, float64(v), dev)
			case "wios":
				sink.Add(writes, float64(v), dev)
			}
		}
	})
	return nil
}

// device maps "major:minor" to /dev/<name> through /sys/dev/block; unknown devices keep the number.
func (c *Collector) device(env *collector.Env, majMin []byte) string {
	if name, ok := c.devices[string(majMin)]; ok {
		return name
	}
	key := string(majMin)
	name := key
	if b, err := os.ReadFile(filepath.Join(env.SysRoot, "dev", "block", key, "uevent")); err == nil {
		for _, line := range bytes.Split(b, []byte{'\n'}) {
			if v, ok := bytes.CutPrefix(line, []byte("DEVNAME=")); ok {
				name = "/dev/" + string(v)
			}
		}
	}
	c.devices[key] = name
	return name
}
