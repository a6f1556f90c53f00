package odin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
)

// outcome of one push attempt.
type outcome int

const (
	delivered outcome = iota // 200: remove the segment
	rejected                 // 400: the receiver will never accept it; drop and count
	retry                    // network error, 499, 5xx, other statuses: keep and back off
	gone                     // the spool dropped the segment meanwhile (already counted)
)

// result of one push.
type result struct {
	outcome outcome
	// invalid is the receiver's Invalid count on 200.
	invalid int
	// status is the HTTP status of the answer (0 without one).
	status int
	// reason labels retried failures in metrics.
	reason string
	err    error
}

// transferReply is falcon transfer's answer: {"msg":"success","data":{"Message":"ok","Total":n,"Invalid":m,...}}.
type transferReply struct {
	Msg  string `json:"msg"`
	Data *struct {
		Total   int
		Invalid int
		Message string
	} `json:"data"`
}

// push sends one spooled (gzip-compressed) batch: as-is with Content-Encoding gzip while gzip is on,
// else decompressed as plain JSON. A receiver that answers 400 or 415 to a gzip body is asked again
// with plain JSON at once; when that is accepted the pusher stays plain (a batch is never dropped
// because of its encoding).
func (p *Pusher) push(ctx context.Context, gz []byte) result {
	if !p.gzip.Load() {
		plain, err := gunzip(gz)
		if err != nil {
			return result{outcome: rejected, err: err}
		}
		return p.post(ctx, plain, "")
	}
	res := p.post(ctx, gz, "gzip")
	if res.status != http.StatusBadRequest && res.status != http.StatusUnsupportedMediaType {
		return res
	}
	plain, err := gunzip(gz)
	if err != nil {
		return result{outcome: rejected, err: err}
	}
	plainRes := p.post(ctx, plain, "")
	if plainRes.outcome == delivered {
		p.gzip.Store(false)
		agentmetrics.OdinGzipFallbacks.Inc()
		klog.FromContext(ctx).Error(res.err, "Odin receiver refused a gzip body but took the same batch as plain JSON; sending plain JSON from now on (drop --odin-gzip)",
			"url", p.cfg.URL)
	}
	return plainRes
}

func gunzip(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("decompress spooled batch: %w", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompress spooled batch: %w", err)
	}
	return plain, nil
}

// post sends body with the given Content-Encoding ("" for none) and classifies the answer.
func (p *Pusher) post(ctx context.Context, body []byte, encoding string) result {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return result{outcome: retry, reason: "request", err: fmt.Errorf("build push request to %s: %w", p.cfg.URL, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if p.cfg.Username != "" {
		req.SetBasicAuth(p.cfg.Username, p.password)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return result{outcome: retry, reason: "network", err: fmt.Errorf("push to %s: %w", p.cfg.URL, err)}
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return result{outcome: delivered, status: resp.StatusCode, invalid: invalidCount(reply)}
	case resp.StatusCode == http.StatusBadRequest:
		return result{outcome: rejected, status: resp.StatusCode,
			err: fmt.Errorf("push to %s: receiver rejected the batch (400): %s", p.cfg.URL, snippet(reply))}
	default:
		// 499 (Nightingale's queue full), 5xx and anything unexpected (401/403/404/415: a config
		// the operator can fix) keep the data and back off.
		return result{outcome: retry, status: resp.StatusCode, reason: fmt.Sprint(resp.StatusCode),
			err: fmt.Errorf("push to %s: status %d: %s", p.cfg.URL, resp.StatusCode, snippet(reply))}
	}
}

// invalidCount reads falcon transfer's Invalid count; other receivers ("success") report none.
func invalidCount(reply []byte) int {
	var r transferReply
	if err := json.Unmarshal(reply, &r); err != nil || r.Data == nil {
		return 0
	}
	return r.Data.Invalid
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// errNoURL is returned by New when the push is not configured.
var errNoURL = errors.New("odin push URL is empty")
