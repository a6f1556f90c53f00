package spool

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// TestReopenKeepsOrder: a second Open (an agent restart) sees the segments in order, removes
// interrupted writes, and continues the sequence.
func TestReopenKeepsOrder(t *testing.T) {
	dir := t.TempDir()
	clk := testingclock.NewFakeClock(time.Now())
	s, err := Open(dir, time.Hour, 1<<20, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Append(clk.Now(), i+1, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000009-1-1.seg.tmp"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, time.Hour, 1<<20, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000009-1-1.seg.tmp")); !os.IsNotExist(err) {
		t.Error("interrupted write not removed")
	}
	for i := range 3 {
		seg, ok := s2.Oldest()
		if !ok || seg.Items != i+1 {
			t.Fatalf("segment %d: %+v %v", i, seg, ok)
		}
		b, err := s2.Read(seg)
		if err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Fatalf("segment %d content %v %v", i, b, err)
		}
		s2.Remove(seg)
	}
	if err := s2.Append(clk.Now(), 1, []byte{9}); err != nil {
		t.Fatal(err)
	}
	if seg, _ := s2.Oldest(); seg.Seq != 4 {
		t.Errorf("sequence restarted at %d, want 4", seg.Seq)
	}
}

func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		name            string
		maxAge          time.Duration
		maxBytes        int64
		step            time.Duration
		wantItems, drop int
	}{
		{"size", time.Hour, 30, 0, 3, 7},                           // 10 segments of 10 bytes, 30 bytes kept
		{"age", 35 * time.Second, 1 << 20, 10 * time.Second, 4, 6}, // 10s apart, 35s kept
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(time.Now())
			dropped := 0
			s, err := Open(t.TempDir(), tc.maxAge, tc.maxBytes, clk, func(n int) { dropped += n })
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				if err := s.Append(clk.Now(), 1, make([]byte, 10)); err != nil {
					t.Fatal(err)
				}
				if b, _, _ := s.Stats(); b > tc.maxBytes {
					t.Fatalf("spool holds %d bytes, bound %d", b, tc.maxBytes)
				}
				clk.Step(tc.step)
			}
			if _, items, _ := s.Stats(); items != tc.wantItems || dropped != tc.drop {
				t.Errorf("kept %d dropped %d, want %d and %d", items, dropped, tc.wantItems, tc.drop)
			}
		})
	}
}
