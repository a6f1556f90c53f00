package locations

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func TestSliceFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *v1alpha1.IPLocationSlice
	}{
		{"IPv4 in two pools", slice("node-a-0", "node-a", "192.0.2.1", 3, nw("p", 100, "10.0.0.1", "10.0.0.2"), nw("q", 4094, "10.1.0.1"))},
		{"IPv6 and no write time", func() *v1alpha1.IPLocationSlice {
			s := slice("node-b-0", "node-b", "2001:db8::1", 0, nw("v6", 0, "fd00::5"))
			s.Spec.WriteTime = nil
			return s
		}()},
		{"no IPs, no tunnel endpoint", slice("node-c-0", "node-c", "", 1)},
		{"unparsable IPs are left out, as the follower does", slice("node-d-0", "node-d", "192.0.2.4", 1, nw("p", 7, "10.0.0.9", "bogus"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := parse(tc.in)
			r := bufio.NewReader(bytes.NewReader(EncodeSlice(tc.in)))
			kind, p, _, err := readFrame(r, nil)
			if err != nil || kind != FrameSlice {
				t.Fatalf("readFrame = %q, %v", kind, err)
			}
			got, err := decodeSlice(p)
			if err != nil {
				t.Fatal(err)
			}
			if !got.written.Equal(want.written) {
				t.Errorf("written %v, want %v", got.written, want.written)
			}
			got.written = want.written
			if len(want.entries) == 0 {
				want.entries = []entry{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded %+v, want %+v", got, want)
			}
		})
	}
}

func TestDeleteFrameRoundTrip(t *testing.T) {
	kind, p, _, err := readFrame(bufio.NewReader(bytes.NewReader(EncodeDelete("node-a-0"))), nil)
	if err != nil || kind != FrameDelete {
		t.Fatalf("readFrame = %q, %v", kind, err)
	}
	if name, err := decodeDelete(p); err != nil || name != "node-a-0" {
		t.Fatalf("decodeDelete = %q, %v", name, err)
	}
}

func TestMalformedFramesAreRefused(t *testing.T) {
	good := EncodeSlice(slice("n-0", "n", "192.0.2.1", 1, nw("p", 100, "10.0.0.1")))
	_, payload, _, _ := readFrame(bufio.NewReader(bytes.NewReader(good)), nil)
	entry := func(addr []byte, vlan uint64) []byte {
		p := appendString(nil, "n-0")
		p = appendString(p, "n")
		p = appendAddr(p, netip.MustParseAddr("192.0.2.1"))
		p = binary.AppendUvarint(p, 0)
		p = binary.AppendUvarint(p, 1)
		p = append(p, addr...)
		return binary.AppendUvarint(p, vlan)
	}
	for _, tc := range []struct {
		name, payload, want string
	}{
		{"truncated", string(payload[:len(payload)-2]), "truncated"},
		{"trailing bytes", string(payload) + "x", "malformed"},
		{"no name", string(appendString(nil, "")) + string(payload[4:]), ""},
		{"address of 3 bytes", string(entry([]byte{3, 10, 0, 0}, 1)), "address of 3 bytes"},
		{"entry without an address", string(entry([]byte{0}, 1)), "without an address"},
		{"VLAN out of range", string(entry([]byte{4, 10, 0, 0, 1}, 4095)), "VLAN 4095"},
		{"more entries than bytes", string(payload[:len(payload)-7]) + string(binary.AppendUvarint(nil, 1000)), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeSlice([]byte(tc.payload))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decodeSlice = %v, want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("frame larger than the limit", func(t *testing.T) {
		f := append([]byte{FrameSlice}, binary.AppendUvarint(nil, maxFrame+1)...)
		if _, _, _, err := readFrame(bufio.NewReader(bytes.NewReader(f)), nil); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Fatalf("readFrame = %v, want the size refused", err)
		}
	})
	t.Run("stream cut inside a frame", func(t *testing.T) {
		if _, _, _, err := readFrame(bufio.NewReader(bytes.NewReader(good[:5])), nil); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
			t.Fatalf("readFrame = %v, want unexpected EOF", err)
		}
	})
}
