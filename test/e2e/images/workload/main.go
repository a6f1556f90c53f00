// Command workload is the test workload of the local cluster and the e2e tests (image
// ecloud/workload:dev). It serves on :8080
//
//	/         "hello from <hostname> <pod IPs>"
//	/fetch    ?url=http://...: GETs the URL from inside the pod and relays status and body, so a
//	          test can check pod-to-pod and pod-to-Service traffic through the apiserver's pod proxy
//	/ping     ?ip=A.B.C.D: ICMP echo from inside the pod (unprivileged ICMP socket; the local
//	          cluster's containerd allows it in every pod), "ok <rtt>" or 502
//	/healthz  ok
//	/send     ?dst=&tag=&...: probe datagrams or frames, any source IP or MAC (CAP_NET_RAW, and
//	          CAP_NET_ADMIN for via=socket; see probe.go)
//	/arp      ?op=&spa=&tpa=&...: ARP frames with any sender (CAP_NET_RAW)
//	/seen     with -sniff: the probe and ARP frames that arrived on eth0, as JSON
//	/neigh    the pod's IPv4 neighbor table (/proc/net/arp)
//
// and, with -heartbeat FILE, appends a line to FILE every 10 s (the hostPath example). For the node
// agent's checks: -burn keeps one CPU busy, -hold-mib N allocates N MiB and keeps every page of
// it touched (resident, in the working set).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func podIPs() string {
	var ips []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
			ips = append(ips, n.IP.String())
		}
	}
	return strings.Join(ips, ",")
}

func main() {
	listen := flag.String("listen", ":8080", "listen address")
	heartbeat := flag.String("heartbeat", "", "file to append a line to every 10 s")
	burnCPU := flag.Bool("burn", false, "keep one CPU busy")
	holdMiB := flag.Int("hold-mib", 0, "allocate this many MiB and keep them resident")
	sniff := flag.Bool("sniff", false, "count the probe and ARP frames that arrive on eth0 (/seen; CAP_NET_RAW)")
	flag.Parse()
	if *burnCPU {
		go burn()
	}
	if *holdMiB > 0 {
		go hold(*holdMiB)
	}
	host, _ := os.Hostname()
	client := &http.Client{Timeout: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s %s\n", host, podIPs())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		url := r.URL.Query().Get("url")
		if !strings.HasPrefix(url, "http://") {
			http.Error(w, "fetch: want ?url=http://...", http.StatusBadRequest)
			return
		}
		resp, err := client.Get(url)
		if err != nil {
			http.Error(w, fmt.Sprintf("fetch %s from %s: %v", url, host, err), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	})
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) {
		ip, err := netip.ParseAddr(r.URL.Query().Get("ip"))
		if err != nil || !ip.Is4() {
			http.Error(w, "ping: want ?ip=<IPv4 address>", http.StatusBadRequest)
			return
		}
		rtt, err := ping(ip, 2*time.Second)
		if err != nil {
			http.Error(w, fmt.Sprintf("ping %s from %s: %v", ip, host, err), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "ok %s\n", rtt)
	})
	mux.HandleFunc("/send", serveSend)
	mux.HandleFunc("/arp", serveARP)
	mux.HandleFunc("/neigh", func(w http.ResponseWriter, _ *http.Request) {
		b, err := os.ReadFile("/proc/net/arp")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	})
	if *sniff {
		s := &sniffer{tags: map[string]*seenTag{}, arp: map[[3]string]int{}}
		if err := s.sniff(); err != nil {
			log.Fatalf("sniff: %v", err)
		}
		mux.HandleFunc("/seen", s.serveSeen)
	}
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatalf("listen %s: %v", *listen, err)
		}
	}()
	log.Printf("workload %s (%s) serving on %s", host, podIPs(), *listen)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *heartbeat != "" {
		go beat(ctx, *heartbeat, host)
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
}

func beat(ctx context.Context, file, host string) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			log.Printf("heartbeat %s: %v", file, err)
		} else {
			fmt.Fprintf(f, "%s %s %s\n", time.Now().UTC().Format(time.RFC3339), host, podIPs())
			f.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// burn spins: one goroutine, locked to its thread, never blocks.
func burn() {
	runtime.LockOSThread()
	x := uint64(1)
	for {
		x = x*6364136223846793005 + 1442695040888963407
		if x == 0 {
			log.Print("burn: unreachable")
		}
	}
}

// hold allocates mib MiB and writes every page of it every 10 s, so that none is reclaimable.
func hold(mib int) {
	const page = 4096
	buf := make([]byte, mib<<20)
	for i := 0; ; i++ {
		for off := 0; off < len(buf); off += page {
			buf[off] = byte(i)
		}
		if i == 0 {
			log.Printf("holding %d MiB", mib)
		}
		time.Sleep(10 * time.Second)
	}
}
