// Command netns-forward listens on a TCP address in its own network namespace and forwards each
// connection to a TCP address inside another network namespace. make up uses it to expose the
// apiserver, which runs in the control-plane namespace, on 127.0.0.1 of the root namespace (for
// bin/kubectl), without giving the root namespace any address.
//
//	netns-forward -listen 127.0.0.1:26443 -netns /run/netns/eup-cp -target 10.250.0.1:6443
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ecloud-io/ecloud/test/netns"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:26443", "address to listen on, in this process's network namespace")
	netns := flag.String("netns", "", "network namespace file to dial from, e.g. /run/netns/eup-cp")
	target := flag.String("target", "", "address to dial inside -netns")
	flag.Parse()
	if *netns == "" || *target == "" {
		fmt.Fprintln(os.Stderr, "netns-forward: -netns and -target are required")
		os.Exit(2)
	}
	ns, err := os.Open(*netns)
	if err != nil {
		log.Fatalf("netns-forward: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("netns-forward: listen %s: %v", *listen, err)
	}
	log.Printf("netns-forward: %s -> %s in %s", *listen, *target, *netns)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("netns-forward: accept on %s: %v", *listen, err)
		}
		go forward(c, ns, *target)
	}
}

// forward dials target from inside ns and copies both ways until either side closes.
func forward(c net.Conn, ns *os.File, target string) {
	defer c.Close()
	up, err := netns.Dial(ns, target, 5*time.Second)
	if err != nil {
		log.Printf("netns-forward: %v", err)
		return
	}
	defer up.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	wg.Wait()
}
