// Package falcontest is a test receiver for Odin pushes that answers exactly as Open-Falcon's
// transfer does on its HTTP push API: it is the only fake in the node agent's tests, standing in for
// a remote system that cannot be built here.
//
// The behaviour copies open-falcon/falcon-plus modules/transfer:
//   - http/api.go api_push_datapoints: a request with ContentLength 0 gets 400 "blank body"; the body
//     is decoded with json.NewDecoder(req.Body).Decode(&[]*cmodel.MetricValue) (first JSON value,
//     plain JSON only: no Content-Encoding handling, no authentication, any method) and any decode
//     error gets 400 "decode error" (http.Error: text/plain, trailing newline);
//   - http/http.go RenderDataJson: 200, Content-Type "application/json; charset=UTF-8", body
//     json.Marshal(Dto{Msg: "success", Data: reply}) with reply = cmodel.TransferResponse
//     {Message: "ok", Total: len(items), Invalid: n, Latency: ms};
//   - receiver/rpc/rpc_transfer.go RecvMetricValues: the per-item validation (validate below);
//   - common/model/metric.go MetricValue: the wire type (value is interface{}: a JSON number or a
//     numeric string; step and timestamp are int64, so a non-integer there fails the whole decode).
package falcontest

import (
	"encoding/json"
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

// metricValue is transfer's cmodel.MetricValue.
type metricValue struct {
	Endpoint  string `json:"endpoint"`
	Metric    string `json:"metric"`
	Value     any    `json:"value"`
	Step      int64  `json:"step"`
	Type      string `json:"counterType"`
	Tags      string `json:"tags"`
	Timestamp int64  `json:"timestamp"`
}

// transferResponse is transfer's cmodel.TransferResponse, in its field order.
type transferResponse struct {
	Message string
	Total   int
	Invalid int
	Latency int64
}

// dto is transfer's http.Dto.
type dto struct {
	Msg  string `json:"msg"`
	Data any    `json:"data"`
}

// Mode is how the receiver answers.
type Mode int

const (
	// Accept answers as transfer does.
	Accept Mode = iota
	// Drop closes the connection without answering (a network error for the client).
	Drop
	// Status answers with the configured status code without reading the items (an outage).
	Status
)

// Receiver is an httptest server speaking transfer's HTTP push API on /api/push.
type Receiver struct {
	Server *httptest.Server

	mu       sync.Mutex
	mode     Mode
	status   int
	items    []Item
	invalid  int
	requests int
	header   http.Header
	// Now is the receiver's clock for the timestamp rule (time.Now by default).
	Now func() time.Time
}

// New starts a receiver on 127.0.0.1; the caller closes it with Close.
func New() *Receiver {
	r := &Receiver{Now: time.Now}
	r.Server = httptest.NewServer(r.mux())
	return r
}

// NewOn starts a receiver on l (e.g. a listener in another network namespace, where the pushing
// agents run); Close closes l.
func NewOn(l net.Listener) *Receiver {
	r := &Receiver{Now: time.Now}
	r.Server = httptest.NewUnstartedServer(r.mux())
	r.Server.Listener.Close()
	r.Server.Listener = l
	r.Server.Start()
	return r
}

// mux routes like transfer's http.DefaultServeMux: /api/push exactly, 404 elsewhere.
func (r *Receiver) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("/api/push", r.serve)
	return m
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

// Invalid returns how many items transfer would have counted as Invalid.
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

// LastHeader returns the headers of the last push request (transfer ignores them; tests inspect
// what the client sent).
func (r *Receiver) LastHeader() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.header.Clone()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	r.header = req.Header.Clone()
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
	if req.ContentLength == 0 {
		http.Error(w, "blank body", http.StatusBadRequest)
		return
	}
	var metrics []*metricValue
	if err := json.NewDecoder(req.Body).Decode(&metrics); err != nil {
		http.Error(w, "decode error", http.StatusBadRequest)
		return
	}
	start := r.Now()
	valid, invalid := validate(metrics, start)
	r.mu.Lock()
	r.items = append(r.items, valid...)
	r.invalid += invalid
	r.mu.Unlock()
	reply := transferResponse{Message: "ok", Total: len(metrics), Invalid: invalid,
		Latency: (r.Now().UnixNano() - start.UnixNano()) / 1000000}
	bs, err := json.Marshal(dto{Msg: "success", Data: reply})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(bs)
}

// validate applies RecvMetricValues' rules item by item, in its order.
func validate(metrics []*metricValue, start time.Time) (valid []Item, invalid int) {
	now := start.Unix()
	for _, v := range metrics {
		if v == nil || v.Metric == "kernel.hostname" || v.Metric == "" || v.Endpoint == "" {
			invalid++
			continue
		}
		if v.Type != "COUNTER" && v.Type != "GAUGE" && v.Type != "DERIVE" {
			invalid++
			continue
		}
		if s, ok := v.Value.(string); ok && s == "" {
			invalid++
			continue
		}
		if v.Step <= 0 || len(v.Metric)+len(v.Tags) > 510 {
			invalid++
			continue
		}
		ts := v.Timestamp
		if ts <= 0 || ts > now*2 {
			ts = now
		}
		var f float64
		switch cv := v.Value.(type) {
		case string:
			var err error
			if f, err = strconv.ParseFloat(cv, 64); err != nil {
				invalid++
				continue
			}
		case float64:
			f = cv
		default: // null, missing, bool, object, array
			invalid++
			continue
		}
		valid = append(valid, Item{Endpoint: v.Endpoint, Metric: v.Metric, Timestamp: ts, Step: v.Step, Value: f,
			CounterType: v.Type, Tags: v.Tags})
	}
	return valid, invalid
}
