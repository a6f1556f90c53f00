package falcontest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestValidate checks the receiver applies every rule of transfer's RecvMetricValues.
func TestValidate(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	long := strings.Repeat("x", 500)
	for _, tc := range []struct {
		name  string
		item  string
		valid bool
		ts    int64
		value float64
	}{
		{"ok", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"GAUGE","tags":"a=b"}`, true, 5, 1},
		{"numeric string", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":"1.5","counterType":"COUNTER"}`, true, 5, 1.5},
		{"derive", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":2,"counterType":"DERIVE"}`, true, 5, 2},
		{"null item", `null`, false, 0, 0},
		{"kernel.hostname", `{"endpoint":"n","metric":"kernel.hostname","timestamp":5,"step":10,"value":1,"counterType":"GAUGE"}`, false, 0, 0},
		{"no endpoint", `{"endpoint":"","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"GAUGE"}`, false, 0, 0},
		{"no metric", `{"endpoint":"n","metric":"","timestamp":5,"step":10,"value":1,"counterType":"GAUGE"}`, false, 0, 0},
		{"bad type", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"gauge"}`, false, 0, 0},
		{"empty string value", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":"","counterType":"GAUGE"}`, false, 0, 0},
		{"null value", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":null,"counterType":"GAUGE"}`, false, 0, 0},
		{"missing value", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"counterType":"GAUGE"}`, false, 0, 0},
		{"bool value", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":true,"counterType":"GAUGE"}`, false, 0, 0},
		{"zero step", `{"endpoint":"n","metric":"m","timestamp":5,"step":0,"value":1,"counterType":"GAUGE"}`, false, 0, 0},
		{"too long", `{"endpoint":"n","metric":"` + long + `","timestamp":5,"step":10,"value":1,"counterType":"GAUGE","tags":"` + long[:20] + `"}`, false, 0, 0},
		{"not numeric", `{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":"abc","counterType":"GAUGE"}`, false, 0, 0},
		{"ts zero -> now", `{"endpoint":"n","metric":"m","timestamp":0,"step":10,"value":1,"counterType":"GAUGE"}`, true, 1_000_000, 1},
		{"ts far future -> now", `{"endpoint":"n","metric":"m","timestamp":2000001,"step":10,"value":1,"counterType":"GAUGE"}`, true, 1_000_000, 1},
	} {
		var metrics []*metricValue
		if err := json.Unmarshal([]byte("["+tc.item+"]"), &metrics); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		valid, invalid := validate(metrics, now)
		if (len(valid) == 1) != tc.valid || (invalid == 1) == tc.valid {
			t.Errorf("%s: valid=%d invalid=%d, want valid=%v", tc.name, len(valid), invalid, tc.valid)
			continue
		}
		if tc.valid && (valid[0].Timestamp != tc.ts || valid[0].Value != tc.value) {
			t.Errorf("%s: timestamp %d value %v, want %d %v", tc.name, valid[0].Timestamp, valid[0].Value, tc.ts, tc.value)
		}
	}
}

func gzipped(t *testing.T, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestAnswers checks the HTTP answers byte for byte against transfer's handler.
func TestAnswers(t *testing.T) {
	r := New()
	defer r.Close()
	const two = `[{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"GAUGE"},` +
		`{"endpoint":"n","metric":"m","timestamp":5,"step":10,"value":1,"counterType":"gauge"}]`
	for _, tc := range []struct {
		name        string
		method      string
		path        string
		header      map[string]string
		body        []byte
		status      int
		contentType string
		reply       string
		items       int
	}{
		{"plain JSON", http.MethodPost, "/api/push", nil, []byte(two), 200, "application/json; charset=UTF-8",
			`{"msg":"success","data":{"Message":"ok","Total":2,"Invalid":1,"Latency":0}}`, 1},
		{"gzip is not decoded", http.MethodPost, "/api/push", map[string]string{"Content-Encoding": "gzip"}, gzipped(t, two), 400,
			"text/plain; charset=utf-8", "decode error\n", 0},
		{"basic auth is ignored", http.MethodPost, "/api/push", map[string]string{"Authorization": "Basic eDp5"}, []byte(two), 200,
			"application/json; charset=UTF-8", `{"msg":"success","data":{"Message":"ok","Total":2,"Invalid":1,"Latency":0}}`, 1},
		{"any method", http.MethodPut, "/api/push", nil, []byte(`[]`), 200, "application/json; charset=UTF-8",
			`{"msg":"success","data":{"Message":"ok","Total":0,"Invalid":0,"Latency":0}}`, 0},
		{"trailing data after the first value", http.MethodPost, "/api/push", nil, []byte(`[] garbage`), 200,
			"application/json; charset=UTF-8", `{"msg":"success","data":{"Message":"ok","Total":0,"Invalid":0,"Latency":0}}`, 0},
		{"blank body", http.MethodPost, "/api/push", nil, nil, 400, "text/plain; charset=utf-8", "blank body\n", 0},
		{"not an array", http.MethodPost, "/api/push", nil, []byte(`{"endpoint":"n"}`), 400, "text/plain; charset=utf-8", "decode error\n", 0},
		{"fractional step fails the whole body", http.MethodPost, "/api/push", nil,
			[]byte(`[{"endpoint":"n","metric":"m","timestamp":5,"step":1.5,"value":1,"counterType":"GAUGE"}]`), 400,
			"text/plain; charset=utf-8", "decode error\n", 0},
		{"other path", http.MethodPost, "/v1/push", nil, []byte(two), 404, "text/plain; charset=utf-8", "404 page not found\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Now = func() time.Time { return time.Unix(1_000_000, 0) }
			before := len(r.Items())
			req, err := http.NewRequest(tc.method, r.Server.URL+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || string(body) != tc.reply || resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("got %d %q %q, want %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body,
					tc.status, tc.contentType, tc.reply)
			}
			if got := len(r.Items()) - before; got != tc.items {
				t.Errorf("stored %d items, want %d", got, tc.items)
			}
		})
	}
}
