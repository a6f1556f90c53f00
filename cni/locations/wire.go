package locations

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// ContentType is the media type of a location relay's stream (cni/locrelay): a sequence of
// frames, each a kind byte, the payload's length (uvarint) and the payload.
//
//   - 'S' a slice as it is now: name, node, tunnel endpoint, write time (Unix µs, 0 = none) and
//     its IPs with their VLANs. Strings are a uvarint length and the bytes, addresses a length
//     byte (0, 4 or 16) and the bytes, numbers uvarints.
//   - 'D' a slice deleted: its name.
//   - 'Y' the snapshot is complete: every slice that exists has been sent once since the stream
//     began; slices the follower holds that were not are gone.
//   - 'H' a heartbeat, sent when the stream is otherwise idle.
//
// A frame carries what a follower keeps of an IPLocationSlice: about 6 bytes per IP, against
// the object's JSON at about 20.
const ContentType = "application/vnd.ecloud.location-slices.v1"

// Frame kinds.
const (
	FrameSlice     byte = 'S'
	FrameDelete    byte = 'D'
	FrameSynced    byte = 'Y'
	FrameHeartbeat byte = 'H'
)

// maxFrame bounds a frame's payload (a slice of 256 IPv6 addresses is under 5 kB).
const maxFrame = 1 << 20

// SyncedFrame and HeartbeatFrame are the frames without payload.
var (
	SyncedFrame    = []byte{FrameSynced, 0}
	HeartbeatFrame = []byte{FrameHeartbeat, 0}
)

// EncodeSlice is the frame of slice s.
func EncodeSlice(s *v1alpha1.IPLocationSlice) []byte { return encodeState(parse(s)) }

// LocatedIP is an IP and its VLAN as a slice frame lists them.
type LocatedIP struct {
	IP   netip.Addr
	VLAN uint16
}

// EncodeLocations is the frame of a slice called name that lists ips on node, whose tunnel
// endpoint is tunnel, as of written (zero: no time). A relay that derives slices itself (one
// per node, from the IPClaims) sends these; followers keep them as they keep IPLocationSlices.
func EncodeLocations(name, node string, tunnel netip.Addr, written time.Time, ips []LocatedIP) []byte {
	st := sliceState{name: name, node: node, tunnel: tunnel, written: written, entries: make([]entry, len(ips))}
	for i, l := range ips {
		st.entries[i] = entry{ip: l.IP, vlan: l.VLAN}
	}
	return encodeState(st)
}

func encodeState(st sliceState) []byte {
	p := make([]byte, 0, 32+len(st.name)+len(st.node)+len(st.entries)*7)
	p = appendString(p, st.name)
	p = appendString(p, st.node)
	p = appendAddr(p, st.tunnel)
	var us uint64
	if !st.written.IsZero() {
		us = uint64(st.written.UnixMicro())
	}
	p = binary.AppendUvarint(p, us)
	p = binary.AppendUvarint(p, uint64(len(st.entries)))
	for _, e := range st.entries {
		p = appendAddr(p, e.ip)
		p = binary.AppendUvarint(p, uint64(e.vlan))
	}
	return frame(FrameSlice, p)
}

// EncodeDelete is the frame of the deletion of the slice called name.
func EncodeDelete(name string) []byte { return frame(FrameDelete, appendString(nil, name)) }

func frame(kind byte, payload []byte) []byte {
	out := make([]byte, 0, 1+binary.MaxVarintLen32+len(payload))
	out = append(out, kind)
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

func appendString(p []byte, s string) []byte {
	p = binary.AppendUvarint(p, uint64(len(s)))
	return append(p, s...)
}

func appendAddr(p []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(p, 0)
	}
	b := a.AsSlice()
	p = append(p, byte(len(b)))
	return append(p, b...)
}

// readFrame reads one frame; the payload is valid until the next call with the same buf.
func readFrame(r *bufio.Reader, buf []byte) (kind byte, payload, nextBuf []byte, err error) {
	kind, err = r.ReadByte()
	if err != nil {
		return 0, nil, buf, err
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, buf, fmt.Errorf("frame %q length: %w", kind, unexpectedEOF(err))
	}
	if n > maxFrame {
		return 0, nil, buf, fmt.Errorf("frame %q of %d bytes: more than %d", kind, n, maxFrame)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, buf, fmt.Errorf("frame %q payload: %w", kind, unexpectedEOF(err))
	}
	return kind, buf, buf, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decoder reads a payload's fields; the first error sticks.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.err = errors.New("bad number")
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.p)) < n {
		d.err = errors.New("truncated")
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

func (d *decoder) addr() netip.Addr {
	n := d.bytes(1)
	if d.err != nil || n[0] == 0 {
		return netip.Addr{}
	}
	if n[0] != 4 && n[0] != 16 {
		d.err = fmt.Errorf("address of %d bytes", n[0])
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(d.bytes(uint64(n[0])))
	return a
}

// decodeSlice is a slice frame's payload as the follower keeps it.
func decodeSlice(p []byte) (sliceState, error) {
	d := decoder{p: p}
	st := sliceState{name: d.string(), node: d.string(), tunnel: d.addr()}
	if us := d.uvarint(); us != 0 {
		st.written = time.UnixMicro(int64(us))
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.p)) {
		d.err = fmt.Errorf("%d entries in %d bytes", n, len(d.p))
	}
	if d.err == nil {
		st.entries = make([]entry, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			ip := d.addr()
			vlan := d.uvarint()
			switch {
			case d.err != nil:
			case !ip.IsValid():
				d.err = errors.New("entry without an address")
			case vlan > 4094:
				d.err = fmt.Errorf("VLAN %d", vlan)
			}
			st.entries = append(st.entries, entry{ip: ip, vlan: uint16(vlan)})
		}
	}
	if d.err == nil && (st.name == "" || len(d.p) != 0) {
		d.err = errors.New("malformed")
	}
	if d.err != nil {
		return sliceState{}, fmt.Errorf("slice frame: %w", d.err)
	}
	return st, nil
}

// decodeDelete is a delete frame's slice name.
func decodeDelete(p []byte) (string, error) {
	d := decoder{p: p}
	name := d.string()
	if d.err == nil && (name == "" || len(d.p) != 0) {
		d.err = errors.New("malformed")
	}
	if d.err != nil {
		return "", fmt.Errorf("delete frame: %w", d.err)
	}
	return name, nil
}
