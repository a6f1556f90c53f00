package nodeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// Client talks to netd over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string, timeout time.Duration) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr, Timeout: timeout}}
}

// Do posts req to path and decodes the answer into resp (when not nil). Failures come back as
// *Error: the daemon's own, or CodeTryAgainLater when the daemon cannot be reached.
func (c *Client) Do(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return Errorf(CodeInternal, "encode %s request: %v", path, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://netd"+path, bytes.NewReader(body))
	if err != nil {
		return Errorf(CodeInternal, "build %s request: %v", path, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(hr)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return Errorf(CodeTryAgainLater, "ecloud netd at %s did not answer %s in time: %v", c.socket, path, err)
		}
		return Errorf(CodeTryAgainLater, "ecloud netd is not reachable at %s (is the netd DaemonSet pod running on this node?): %v", c.socket, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return Errorf(CodeTryAgainLater, "read %s answer from netd: %v", path, err)
	}
	if res.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Code == 0 {
			return Errorf(CodeInternal, "netd %s: HTTP %d: %s", path, res.StatusCode, bytes.TrimSpace(data))
		}
		return &e
	}
	if resp != nil {
		if err := json.Unmarshal(data, resp); err != nil {
			return Errorf(CodeInternal, "decode netd %s answer: %v", path, err)
		}
	}
	return nil
}
