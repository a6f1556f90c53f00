// Package spool is a bounded on-disk FIFO of opaque segments (one push batch each). It survives agent
// restarts; when it exceeds its age or size bound the oldest segments are dropped and counted.
package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Segment is one stored batch.
type Segment struct {
	Seq uint64
	// Time is the sample time of the batch (its age decides dropping).
	Time  time.Time
	Items int
	Size  int64
	path  string
}

// Spool is safe for concurrent use.
type Spool struct {
	dir      string
	maxAge   time.Duration
	maxBytes int64
	clock    clock.PassiveClock
	// OnDrop is called with the item count of every segment dropped by the bounds.
	onDrop func(items int)

	mu      sync.Mutex
	segs    []Segment
	bytes   int64
	items   int
	nextSeq uint64
}

const suffix = ".seg"

// Open opens (or creates) the spool in dir and loads the segments a previous run left.
func Open(dir string, maxAge time.Duration, maxBytes int64, clk clock.PassiveClock, onDrop func(items int)) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool directory %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read spool directory %s: %w", dir, err)
	}
	s := &Spool{dir: dir, maxAge: maxAge, maxBytes: maxBytes, clock: clk, onDrop: onDrop, nextSeq: 1}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		if strings.HasSuffix(name, ".tmp") { // an interrupted write
			_ = os.Remove(path)
			continue
		}
		seg, ok := parseName(name)
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("stat spool segment %s: %w", path, err)
		}
		seg.Size, seg.path = info.Size(), path
		s.segs = append(s.segs, seg)
		s.bytes += seg.Size
		s.items += seg.Items
		if seg.Seq >= s.nextSeq {
			s.nextSeq = seg.Seq + 1
		}
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].Seq < s.segs[j].Seq })
	s.mu.Lock()
	s.enforceLocked()
	s.mu.Unlock()
	return s, nil
}

// name is <seq>-<unix nanos>-<items>.seg: everything needed is known without reading the file.
func name(seq uint64, t time.Time, items int) string {
	return fmt.Sprintf("%020d-%d-%d%s", seq, t.UnixNano(), items, suffix)
}

func parseName(n string) (Segment, bool) {
	base, ok := strings.CutSuffix(n, suffix)
	if !ok {
		return Segment{}, false
	}
	parts := strings.Split(base, "-")
	if len(parts) != 3 {
		return Segment{}, false
	}
	seq, err1 := strconv.ParseUint(parts[0], 10, 64)
	ns, err2 := strconv.ParseInt(parts[1], 10, 64)
	items, err3 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return Segment{}, false
	}
	return Segment{Seq: seq, Time: time.Unix(0, ns), Items: items}, true
}

// Append stores one batch durably (write to a temp file, fsync, rename) and enforces the bounds.
func (s *Spool) Append(t time.Time, items int, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := Segment{Seq: s.nextSeq, Time: t, Items: items, Size: int64(len(data))}
	seg.path = filepath.Join(s.dir, name(seg.Seq, t, items))
	tmp := seg.path + ".tmp"
	if err := writeSync(tmp, data); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write spool segment %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, seg.path); err != nil {
		return fmt.Errorf("commit spool segment %s: %w", seg.path, err)
	}
	s.nextSeq++
	s.segs = append(s.segs, seg)
	s.bytes += seg.Size
	s.items += items
	s.enforceLocked()
	return nil
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// enforceLocked drops the oldest segments while the spool is over its size or they are too old.
func (s *Spool) enforceLocked() {
	cutoff := s.clock.Now().Add(-s.maxAge)
	for len(s.segs) > 0 && (s.bytes > s.maxBytes || s.segs[0].Time.Before(cutoff)) {
		seg := s.segs[0]
		s.removeLocked(seg)
		if s.onDrop != nil {
			s.onDrop(seg.Items)
		}
	}
}

func (s *Spool) removeLocked(seg Segment) {
	_ = os.Remove(seg.path)
	for i := range s.segs {
		if s.segs[i].Seq == seg.Seq {
			s.segs = append(s.segs[:i], s.segs[i+1:]...)
			s.bytes -= seg.Size
			s.items -= seg.Items
			return
		}
	}
}

// Oldest returns the oldest segment still within the bounds.
func (s *Spool) Oldest() (Segment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enforceLocked()
	if len(s.segs) == 0 {
		return Segment{}, false
	}
	return s.segs[0], true
}

// Read returns a segment's content.
func (s *Spool) Read(seg Segment) ([]byte, error) {
	b, err := os.ReadFile(seg.path)
	if err != nil {
		return nil, fmt.Errorf("read spool segment %s: %w", seg.path, err)
	}
	return b, nil
}

// Remove deletes a delivered (or rejected) segment. Removing a segment already dropped is a no-op.
func (s *Spool) Remove(seg Segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(seg)
}

// Stats returns the stored bytes, items and segments.
func (s *Spool) Stats() (bytes int64, items, segments int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, s.items, len(s.segs)
}
