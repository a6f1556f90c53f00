package netns

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecloud-io/ecloud/test/prereq"
)

// listenInNewNetns creates a fresh network namespace (it lives as long as its file and the
// listener are open), brings its loopback up implicitly by listening on 127.0.0.1, and returns both.
func listenInNewNetns(t *testing.T) (*os.File, net.Listener) {
	t.Helper()
	type result struct {
		ns  *os.File
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// This thread is never switched back: it stays locked and dies with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare: %w", err)}
			return
		}
		ns, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			ch <- result{err: err}
			return
		}
		lo, err := net.InterfaceByName("lo")
		if err == nil {
			// A new namespace's loopback is down: bring it up (SIOCSIFFLAGS on this namespace).
			fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			ifr, _ := unix.NewIfreq(lo.Name)
			ifr.SetUint16(uint16(lo.Flags&net.FlagUp) | unix.IFF_UP)
			err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
			unix.Close(fd)
		}
		if err != nil {
			ch <- result{err: fmt.Errorf("loopback up: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		ch <- result{ns, ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.ln.Close(); r.ns.Close() })
	return r.ns, r.ln
}

func TestDialReachesOnlyInsideTheNamespace(t *testing.T) {
	prereq.Root(t, "creates a network namespace")
	ns, ln := listenInNewNetns(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "inside\n")
			c.Close()
		}
	}()
	addr := ln.Addr().String()

	conn, err := Dial(ns, addr, 2*time.Second)
	if err != nil {
		t.Fatalf("Dial into the namespace: %v", err)
	}
	got, _ := io.ReadAll(conn)
	conn.Close()
	if string(got) != "inside\n" {
		t.Fatalf("read %q from the listener in the namespace", got)
	}
	// The caller's own namespace is untouched: the same address there is someone else's (or
	// nobody's), never our listener.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) == "inside\n" {
			t.Fatal("a plain dial from the root namespace reached the listener inside the new one")
		}
	}
}

func TestDialBadNamespace(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Dial(f, "127.0.0.1:1", time.Second); err == nil {
		t.Fatal("Dial with /dev/null as namespace succeeded")
	}
}

func TestListenServesOnlyInsideTheNamespace(t *testing.T) {
	prereq.Root(t, "creates a network namespace")
	ns, _ := listenInNewNetns(t) // only for the namespace (its loopback is up)
	ln, err := Listen(ns, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "listener inside\n")
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	conn, err := Dial(ns, addr, 2*time.Second)
	if err != nil {
		t.Fatalf("Dial the listener from inside the namespace: %v", err)
	}
	got, _ := io.ReadAll(conn)
	conn.Close()
	if string(got) != "listener inside\n" {
		t.Fatalf("read %q", got)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) == "listener inside\n" {
			t.Fatal("the root namespace reached a listener opened inside the new one")
		}
	}
}
