package falcontest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestValidate checks the receiver enforces every falcon transfer rule.
func TestValidate(t *testing.T) {
	r := &Receiver{Now: func() time.Time { return time.Unix(1_000_000, 0) }}
	long := strings.Repeat("x", 500)
	for _, tc := range []struct {
		name  string
		item  string
		valid bool
		ts    int64
	}{
		{"ok", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"GAUGE","tags":"a=b"}`, true, 5},
		{"numeric string", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":"1.5","counterType":"COUNTER"}`, true, 5},
		{"derive", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"DERIVE"}`, true, 5},
		{"no endpoint", `{"endpoint":"","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"GAUGE"}`, false, 0},
		{"no metric", `{"endpoint":"n","metric":"","timestamp":5,"step":10,"value":1,"counterType":"GAUGE"}`, false, 0},
		{"bad type", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"gauge"}`, false, 0},
		{"zero step", `{"endpoint":"n","metric":"m","timestamp":5,"step":0,"value":1,"counterType":"GAUGE"}`, false, 0},
		{"too long", `{"endpoint":"n","metric":"` + long + `","timestamp":5,"step":10,"value":1,"counterType":"GAUGE","tags":"` + long[:20] + `"}`, false, 0},
		{"not numeric", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":"abc","counterType":"GAUGE"}`, false, 0},
		{"ts zero -> now", `{"endpoint":"n","metric":"m","timestamp":0,"step":10,"value":1,"counterType":"GAUGE"}`, true, 1_000_000},
		{"ts far future -> now", `{"endpoint":"n","metric":"m","timestamp":2000001,"step":10,"value":1,"counterType":"GAUGE"}`, true, 1_000_000},
	} {
		var w wireItem
		if err := json.Unmarshal([]byte(tc.item), &w); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		valid, invalid := r.validate([]wireItem{w})
		if (len(valid) == 1) != tc.valid || (invalid == 1) == tc.valid {
			t.Errorf("%s: valid=%d invalid=%d, want valid=%v", tc.name, len(valid), invalid, tc.valid)
			continue
		}
		if tc.valid && valid[0].Timestamp != tc.ts {
			t.Errorf("%s: timestamp %d, want %d", tc.name, valid[0].Timestamp, tc.ts)
		}
	}
}
