// Package netns dials and listens on TCP from inside another network namespace, without running
// anything in it: the local cluster's simulated hosts and control plane live in network
// namespaces, while bin/kubectl, netns-forward and the e2e tests run in the root one.
package netns

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Dial connects to addr (host:port) from inside the network namespace file ns (e.g.
// /run/netns/eup-a). The connection works from any goroutine.
func Dial(ns *os.File, addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := inNamespace(ns, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s in %s: %w", addr, ns.Name(), err)
	}
	return conn, nil
}

// Listen opens a TCP listener on addr (host:port) inside the network namespace file ns: peers in
// that namespace connect to it while Accept runs in this process, on any goroutine.
func Listen(ns *os.File, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNamespace(ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", addr, ns.Name(), err)
	}
	return l, nil
}

// inNamespace runs create on a locked OS thread switched into ns and back. A socket belongs to
// the namespace of the thread that creates it, and keeps it for its whole life.
func inNamespace(ns *os.File, create func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	createErr := create()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so the runtime discards it when the goroutine ends. What
		// create made is still usable (it lives in ns), but this is a broken process state.
		return fmt.Errorf("return from network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return createErr
}
