package harness

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/rest"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
)

// RestartableControlPlane is a ControlPlane whose kube-apiserver can be restarted (same etcd
// data) while the test's clients keep working. The test server picks a new port, new serving
// certificates and a new loopback token on every start, so clients do not talk to it directly:
// they talk to a loopback TCP proxy on a fixed port that forwards to the current apiserver, skip
// verification of its (changing) self-signed certificate, and authenticate with a static token
// (--token-auth-file, group system:masters) that every instance accepts.
type RestartableControlPlane struct {
	*ControlPlane
	storage *storagebackend.Config
	flags   []string
	proxy   *tcpProxy

	mu     sync.Mutex
	server *kubeapiservertesting.TestServer
}

// StartRestartable is Start with a restartable apiserver.
func StartRestartable(tb testing.TB, opts ...Option) *RestartableControlPlane {
	tb.Helper()
	o, ctx, storage, flags := prepare(tb, opts)
	token := string(uuid.NewUUID())
	tokenFile := filepath.Join(tb.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(token+`,ecloud-admin,ecloud-admin,"system:masters"`+"\n"), 0o600); err != nil {
		tb.Fatalf("harness: token file: %v", err)
	}
	r := &RestartableControlPlane{storage: storage, flags: append(flags, "--token-auth-file="+tokenFile)}
	var err error
	if r.proxy, err = newTCPProxy(); err != nil {
		tb.Fatalf("harness: apiserver proxy: %v", err)
	}
	tb.Cleanup(r.proxy.close)
	r.startServer(tb)
	tb.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.server != nil {
			r.server.TearDownFn()
			r.server = nil
		}
	})
	r.ControlPlane = newControlPlane(tb, ctx, &rest.Config{
		Host:            "https://" + r.proxy.addr(),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             1000, Burst: 2000,
	}, o)
	return r
}

func (r *RestartableControlPlane) startServer(tb testing.TB) {
	tb.Helper()
	s := kubeapiservertesting.StartTestServerOrDie(tb, &kubeapiservertesting.TestServerInstanceOptions{DisableInvariantChecks: true}, r.flags, r.storage)
	r.server = s
	r.proxy.setBackend(s.ServerOpts.SecureServing.Listener.Addr().String())
}

// Restart stops the apiserver (every open connection through the proxy is cut) and starts a new
// one on the same etcd data, then waits until ecloud's resources are served again. Clients
// reconnect on their own; watches are re-established by their informers.
func (r *RestartableControlPlane) Restart(tb testing.TB) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proxy.setBackend("")
	if r.server != nil {
		r.server.TearDownFn()
		r.server = nil
	}
	r.startServer(tb)
	err := wait.PollUntilContextTimeout(r.Ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err1 := r.Ecloud.IPPools().List(ctx, metav1.ListOptions{Limit: 1})
		_, err2 := r.Ecloud.IPClaims().List(ctx, metav1.ListOptions{Limit: 1})
		return err1 == nil && err2 == nil, nil
	})
	if err != nil {
		tb.Fatalf("harness: ecloud resources not served after the apiserver restart: %v", err)
	}
}

// tcpProxy forwards loopback connections to a backend address that can change; setBackend cuts
// every connection to the previous backend.
type tcpProxy struct {
	l       net.Listener
	mu      sync.Mutex
	backend string
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func newTCPProxy() (*tcpProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &tcpProxy{l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

func (p *tcpProxy) setBackend(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backend = addr
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		backend := p.backend
		p.mu.Unlock()
		if backend == "" {
			in.Close() // apiserver down: refuse, the client retries
			continue
		}
		out, err := net.DialTimeout("tcp", backend, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.backend != backend { // restarted meanwhile
			p.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *tcpProxy) close() {
	p.l.Close()
	p.setBackend("")
	p.wg.Wait()
}
