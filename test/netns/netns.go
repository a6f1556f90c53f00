// Package netns dials TCP connections from inside another network namespace, without running
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
// /run/netns/eup-a). A socket belongs to the namespace of the thread that creates it, so the
// dial runs on a locked OS thread switched into ns and back; the connection then works from any
// goroutine.
func Dial(ns *os.File, addr string, timeout time.Duration) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter network namespace %s: %w", ns.Name(), err)
	}
	conn, dialErr := net.DialTimeout("tcp", addr, timeout)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so the runtime discards it when the goroutine ends.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("return from network namespace %s: %w", ns.Name(), err)
	}
	runtime.UnlockOSThread()
	if dialErr != nil {
		return nil, fmt.Errorf("dial %s in %s: %w", addr, ns.Name(), dialErr)
	}
	return conn, nil
}
