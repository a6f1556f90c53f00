// Package falcontest is a test receiver for Odin pushes that enforces falcon transfer's validation
// (/api/push): it is the only fake in the node agent's tests, standing in for a remote system.
package falcontest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Item is a received item after validation (Value parsed, Timestamp possibly replaced by now).
type Item struct {
	Endpoint    string
	Metric      string
	Timestamp   int64
	Step        int64
	Value       float64
	CounterType string
	Tags        string
}

// wireItem is falcon's MetricValue as decoded by transfer: value may be a number or a numeric string.
type wireItem struct {
	Endpoint    string          `json:"endpoint"`
	Metric      string          `json:"metric"`
	Value       json.RawMessage `json:"value"`
	Step        int64           `json:"step"`
	CounterType string          `json:"counterType"`
	Tags        string          `json:"tags"`
	Timestamp   int64           `json:"timestamp"`
}

// Mode is how the receiver answers.
type Mode int

const (
	// Accept validates and stores.
	Accept Mode = iota
	// Drop closes the connection without answering (a network error for the client).
	Drop
	// Status answers with the configured status code without reading the items.
	Status
)

// Receiver is an httptest server speaking falcon transfer's push protocol.
type Receiver struct {
	Server *httptest.Server
	// User and Password, when set, are required as basic auth.
	User, Password string

	mu       sync.Mutex
	mode     Mode
	status   int
	items    []Item
	invalid  int
	requests int
	// Now is the receiver's clock for the timestamp rule (time.Now by default).
	Now func() time.Time
}

// New starts a receiver on 127.0.0.1; it is closed at cleanup by the caller through Close.
func New() *Receiver {
	r := &Receiver{Now: time.Now}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// NewOn starts a receiver on l (e.g. a listener in another network namespace, where the pushing
// agents run); Close closes l.
func NewOn(l net.Listener) *Receiver {
	r := &Receiver{Now: time.Now}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.Server.Listener.Close()
	r.Server.Listener = l
	r.Server.Start()
	return r
}

// URL is the push endpoint.
func (r *Receiver) URL() string { return r.Server.URL + "/api/push" }

// Close stops the server.
func (r *Receiver) Close() { r.Server.Close() }

// SetMode switches the answer; status is used with Status.
func (r *Receiver) SetMode(m Mode, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode, r.status = m, status
}

// Items returns the valid items received so far, in arrival order.
func (r *Receiver) Items() []Item {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Item(nil), r.items...)
}

// Invalid returns how many items were invalid; Requests how many pushes arrived.
func (r *Receiver) Invalid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.invalid
}

// Requests returns the number of push requests seen (in any mode).
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	mode, status := r.mode, r.status
	r.mu.Unlock()
	switch mode {
	case Drop:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("falcontest: response writer cannot hijack")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case Status:
		http.Error(w, http.StatusText(status), status)
		return
	}
	if req.Method != http.MethodPost || req.URL.Path != "/api/push" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.User != "" {
		if u, p, ok := req.BasicAuth(); !ok || u != r.User || p != r.Password {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	body, err := readBody(req)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		http.Error(w, fmt.Sprintf("empty or unreadable body: %v", err), http.StatusBadRequest)
		return
	}
	var wire []wireItem
	if err := json.Unmarshal(body, &wire); err != nil {
		http.Error(w, "decode json: "+err.Error(), http.StatusBadRequest)
		return
	}
	valid, invalid := r.validate(wire)
	r.mu.Lock()
	r.items = append(r.items, valid...)
	r.invalid += invalid
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"msg":  "success",
		"data": map[string]any{"Message": "ok", "Total": len(wire), "Invalid": invalid, "Latency": 0},
	})
}

func readBody(req *http.Request) ([]byte, error) {
	var rd io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, err
		}
		rd = zr
	}
	return io.ReadAll(rd)
}

// validate applies falcon transfer's rules item by item.
func (r *Receiver) validate(wire []wireItem) (valid []Item, invalid int) {
	now := r.Now().Unix()
	for _, w := range wire {
		if w.Metric == "" || w.Endpoint == "" {
			invalid++
			continue
		}
		if w.CounterType != "GAUGE" && w.CounterType != "COUNTER" && w.CounterType != "DERIVE" {
			invalid++
			continue
		}
		if w.Step <= 0 {
			invalid++
			continue
		}
		if len(w.Metric)+len(w.Tags) > 510 {
			invalid++
			continue
		}
		v, ok := numeric(w.Value)
		if !ok {
			invalid++
			continue
		}
		ts := w.Timestamp
		if ts <= 0 || ts > now*2 {
			ts = now
		}
		valid = append(valid, Item{Endpoint: w.Endpoint, Metric: w.Metric, Timestamp: ts, Step: w.Step, Value: v,
			CounterType: w.CounterType, Tags: w.Tags})
	}
	return valid, invalid
}

// numeric accepts JSON numbers and numeric strings, like transfer.
func numeric(raw json.RawMessage) (float64, bool) {
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}
