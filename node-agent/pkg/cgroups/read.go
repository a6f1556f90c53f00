package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Reader reads small interface files into one reused buffer: a collection pass over hundreds of
// containers then allocates next to nothing. A Reader is not safe for concurrent use.
type Reader struct {
	buf []byte
}

// ReadFile returns the content of path; the slice is valid until the next call.
func (r *Reader) ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if r.buf == nil {
		r.buf = make([]byte, 0, 8192)
	}
	r.buf = r.buf[:0]
	for {
		if len(r.buf) == cap(r.buf) {
			r.buf = append(r.buf, 0)[:len(r.buf)]
		}
		n, err := f.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+n]
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return r.buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// ReadUint reads a file holding one unsigned integer ("max" reads as 0 with ok=false).
func (r *Reader) ReadUint(path string) (v uint64, ok bool, err error) {
	b, err := r.ReadFile(path)
	if err != nil {
		return 0, false, err
	}
	b = bytes.TrimSpace(b)
	if string(b) == "max" {
		return 0, false, nil
	}
	v, err = ParseUint(b)
	if err != nil {
		return 0, false, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, true, nil
}

// ParseUint parses decimal digits without allocating.
func ParseUint(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid number %q", b)
		}
		v = v*10 + uint64(c-'0')
	}
	return v, nil
}

// ParseInt parses an optionally negative decimal number (memory.stat may hold negatives on v1).
func ParseInt(b []byte) (int64, error) {
	if len(b) > 0 && b[0] == '-' {
		v, err := ParseUint(b[1:])
		return -int64(v), err
	}
	v, err := ParseUint(b)
	return int64(v), err
}

// ForEachRawLine calls fn with each line of b (without the newline).
func ForEachRawLine(b []byte, fn func(line []byte)) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		fn(line)
	}
}

// ForEachLine calls fn with each line's whitespace-separated fields (up to len(fields)).
func ForEachLine(b []byte, fields [][]byte, fn func(fields [][]byte)) {
	ForEachRawLine(b, func(line []byte) {
		n := 0
		for n < len(fields) {
			line = bytes.TrimLeft(line, " \t")
			if len(line) == 0 {
				break
			}
			end := bytes.IndexAny(line, " \t")
			if end < 0 {
				end = len(line)
			}
			fields[n] = line[:end]
			line = line[end:]
			n++
		}
		if n > 0 {
			fn(fields[:n])
		}
	})
}

// ForEachKeyUint calls fn for every "key value" line whose value is an unsigned integer
// (cpu.stat, memory.stat, memory.events, ...).
func ForEachKeyUint(b []byte, fn func(key []byte, v uint64)) {
	var fields [2][]byte
	ForEachLine(b, fields[:], func(f [][]byte) {
		if len(f) != 2 {
			return
		}
		if v, err := ParseUint(f[1]); err == nil {
			fn(f[0], v)
		}
	})
}

// FirstPID returns the first process ID listed in dir's cgroup.procs, or 0.
func (r *Reader) FirstPID(dir string) (int, error) {
	b, err := r.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		return 0, err
	}
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	if len(line) == 0 {
		return 0, nil
	}
	return strconv.Atoi(string(line))
}
