package benchdp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Runner runs commands on one node: in its own network namespace (netns "") or in a named one
// (/run/netns/<netns>, a pod or, on the namespace hosts, the host itself).
type Runner interface {
	// Run runs argv to completion and returns its standard output.
	Run(ctx context.Context, netns string, argv ...string) ([]byte, error)
	// Start starts argv in the background; it runs until StopAll.
	Start(ctx context.Context, netns string, argv ...string) error
	// StopAll stops everything Start started.
	StopAll(ctx context.Context) error
}

// Local runs commands on this machine, entering netns with nsenter (which execs the command
// in place, so the process Start keeps is the command itself).
type Local struct {
	mu    sync.Mutex
	procs []localProc
}

// localProc is a background command and its end.
type localProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

var _ Runner = &Local{}

// command is argv in netns ("" = this one), ended with ctx.
func command(ctx context.Context, netns string, argv []string) *exec.Cmd {
	if netns != "" {
		argv = append([]string{"nsenter", "--net=/run/netns/" + netns, "--"}, argv...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// Run implements Runner.
func (l *Local) Run(ctx context.Context, netns string, argv ...string) ([]byte, error) {
	cmd := command(ctx, netns, argv)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s (netns %q): %w: %s", strings.Join(argv, " "), netns, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// Start implements Runner. The command outlives ctx (the request that started it, for the
// agent): only StopAll ends it.
func (l *Local) Start(_ context.Context, netns string, argv ...string) error {
	cmd := command(context.Background(), netns, argv)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (netns %q): %w", strings.Join(argv, " "), netns, err)
	}
	p := localProc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return nil
}

// StopAll implements Runner: it kills every background command and waits for its end.
func (l *Local) StopAll(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	l.procs = nil
	return nil
}

// agentRequest is one command for an Agent.
type agentRequest struct {
	NetNS      string   `json:"netns"`
	Argv       []string `json:"argv"`
	Background bool     `json:"background"`
}

type agentReply struct {
	Stdout []byte `json:"stdout"`
	Error  string `json:"error,omitempty"`
}

// Agent serves a Local runner over HTTP (POST /run, POST /stop, GET /ready), for a driver on
// another machine: the benchmark's QEMU guests run one each.
type Agent struct {
	Local Local
}

// Handler is the agent's HTTP API.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, r *http.Request) {
		var req agentRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Argv) == 0 {
			http.Error(w, fmt.Sprintf("bad request: %v (argv %q)", err, req.Argv), http.StatusBadRequest)
			return
		}
		var rep agentReply
		var err error
		if req.Background {
			err = a.Local.Start(r.Context(), req.NetNS, req.Argv...)
		} else {
			rep.Stdout, err = a.Local.Run(r.Context(), req.NetNS, req.Argv...)
		}
		if err != nil {
			rep.Error = err.Error()
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		_ = a.Local.StopAll(r.Context())
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// Remote runs commands through the Agent at Addr (host:port).
type Remote struct {
	Addr   string
	Client *http.Client
}

var _ Runner = &Remote{}

func (r *Remote) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return http.DefaultClient
}

func (r *Remote) call(ctx context.Context, req agentRequest) ([]byte, error) {
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.Addr+"/run", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := r.client().Do(hr)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", r.Addr, err)
	}
	defer resp.Body.Close()
	var rep agentReply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("agent %s: reply (HTTP %d): %w", r.Addr, resp.StatusCode, err)
	}
	if rep.Error != "" {
		return rep.Stdout, fmt.Errorf("agent %s: %s", r.Addr, rep.Error)
	}
	return rep.Stdout, nil
}

// Run implements Runner.
func (r *Remote) Run(ctx context.Context, netns string, argv ...string) ([]byte, error) {
	return r.call(ctx, agentRequest{NetNS: netns, Argv: argv})
}

// Start implements Runner.
func (r *Remote) Start(ctx context.Context, netns string, argv ...string) error {
	_, err := r.call(ctx, agentRequest{NetNS: netns, Argv: argv, Background: true})
	return err
}

// StopAll implements Runner.
func (r *Remote) StopAll(ctx context.Context) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.Addr+"/stop", nil)
	if err != nil {
		return err
	}
	resp, err := r.client().Do(hr)
	if err != nil {
		return fmt.Errorf("agent %s: stop: %w", r.Addr, err)
	}
	return resp.Body.Close()
}

// WaitReady polls the agent until it answers or timeout passes.
func (r *Remote) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/ready", nil)
		resp, err := r.client().Do(hr)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent %s not ready after %s: %w", r.Addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// ListenAndServe serves a on addr until ctx ends.
func (a *Agent) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
