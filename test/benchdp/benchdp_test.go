package benchdp

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/test/prereq"
)

func TestOrder(t *testing.T) {
	for _, tc := range []struct {
		n, k int
		want []int
	}{
		{4, 0, []int{0, 1, 2, 3}},
		{4, 1, []int{3, 2, 1, 0}},
		{4, 2, []int{2, 3, 0, 1}},
		{4, 3, []int{1, 0, 3, 2}},
		{7, 2, []int{4, 5, 6, 0, 1, 2, 3}},
		{1, 3, []int{0}},
	} {
		if got := Order(tc.n, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("Order(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
		}
	}
	// Every iteration runs every path once.
	for k := range 8 {
		got := Order(7, k)
		slices.Sort(got)
		if !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6}) {
			t.Errorf("Order(7, %d) is not a permutation: %v", k, Order(7, k))
		}
	}
}

func TestParseIperf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		mbps    float64
		retr    int
		wantErr string
	}{
		{"ok", `{"end":{"sum_sent":{"retransmits":3},"sum_received":{"seconds":3.0,"bits_per_second":2.5e9}}}`, 2500, 3, ""},
		{"error", `{"error":"unable to connect to server: Connection refused"}`, 0, 0, "Connection refused"},
		{"no summary", `{"end":{}}`, 0, 0, "no receiver summary"},
		{"not json", `iperf3: error`, 0, 0, "iperf3 output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mbps, retr, err := ParseIperf([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || mbps != tc.mbps || retr != tc.retr {
				t.Fatalf("got %v Mbit/s, %d retransmits, %v; want %v, %d", mbps, retr, err, tc.mbps, tc.retr)
			}
		})
	}
}

func TestRRRoundTrips(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { _ = ServeRR(ln) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ds, err := RR(ctx, ln.Addr().String(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 100 {
		t.Fatalf("%d round trips, want 100", len(ds))
	}
	back, err := DecodeRR(EncodeRR(ds))
	if err != nil || !slices.Equal(back, ds) {
		t.Fatalf("DecodeRR(EncodeRR) = %v, %v", back, err)
	}
	if _, err := DecodeRR([]byte(`{"ns":[]}`)); err == nil {
		t.Error("DecodeRR accepted no samples")
	}
	ln.Close()
	if _, err := RR(ctx, ln.Addr().String(), 1); err == nil {
		t.Error("RR to a closed server succeeded")
	}
}

func TestReportRatios(t *testing.T) {
	res := []Result{
		{Path: Path{Key: "a"}, TputMbps: []float64{100, 300, 200}, RR: []time.Duration{10, 20, 30}},
		{Path: Path{Key: "b"}, TputMbps: []float64{400, 400}, RR: []time.Duration{60}},
	}
	var out bytes.Buffer
	err := ReportRatios(&out, res, []Ratio{{Name: "a_vs_b_tput", Num: "a", Den: "b"}, {Name: "a_vs_b_rr_p99", Num: "a", Den: "b", RRp99: true}})
	if err != nil {
		t.Fatal(err)
	}
	want := "RESULT datapath_a_vs_b_tput=0.500\nRESULT datapath_a_vs_b_rr_p99=0.500\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	if err := ReportRatios(&out, res, []Ratio{{Name: "x", Num: "a", Den: "c"}}); err == nil {
		t.Error("a ratio to an unmeasured path did not fail")
	}
	out.Reset()
	Report(&out, res[:1])
	for _, want := range []string{"tput n=3 median 200.0", "rr n=3", "RESULT datapath_a_tput_mbps=200.0", "RESULT datapath_a_rr_p99_us=0.0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Report output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLinuxVXLANCommands(t *testing.T) {
	l := LinuxVXLAN{Prefix: "ecni1a2b-r1", Subnet: netip.MustParsePrefix("10.83.1.0/24"), PeerSubnet: netip.MustParsePrefix("10.83.2.0/24"),
		LocalIP: "172.31.254.1", PeerIP: "172.31.254.2", Pods: 2, MTU: 1400}
	var all []string
	for _, c := range l.Commands() {
		all = append(all, strings.Join(c, " "))
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{
		"ip addr add 10.83.1.1/24 dev ecni1a2b-r1br",
		"ip link add ecni1a2b-r1vx address 0e:7a:0a:53:01:00 type vxlan id 1 local 172.31.254.1 dstport 8472 nolearning",
		"ip route add 10.83.2.0/24 via 10.83.2.0 dev ecni1a2b-r1vx onlink",
		"ip neigh replace 10.83.2.0 lladdr 0e:7a:0a:53:02:00 dev ecni1a2b-r1vx nud permanent",
		"bridge fdb append 0e:7a:0a:53:02:00 dev ecni1a2b-r1vx dst 172.31.254.2",
		"ip -n ecni1a2b-r1p1 addr add 10.83.1.11/24 dev eth0",
		"ip link add ecni1a2b-r1v1 mtu 1400 type veth peer name eth0 mtu 1400 netns ecni1a2b-r1p1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("commands lack %q:\n%s", want, text)
		}
	}
	for _, dev := range []string{l.bridge(), l.vxlan(), l.veth(9)} {
		if len(dev) > 15 {
			t.Errorf("device name %q is longer than 15 bytes", dev)
		}
	}
}

func TestAgentRemote(t *testing.T) {
	a := &Agent{}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	r := &Remote{Addr: strings.TrimPrefix(srv.URL, "http://")}
	ctx := context.Background()
	if err := r.WaitReady(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := r.Run(ctx, "", "echo", "hello")
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("Run echo: %q, %v", out, err)
	}
	if _, err := r.Run(ctx, "", "sh", "-c", "echo oops >&2; exit 3"); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("a failing command gave %v, want its stderr", err)
	}
	if err := r.Start(ctx, "", "sleep", "60"); err != nil {
		t.Fatal(err)
	}
	a.Local.mu.Lock()
	p := a.Local.procs[0].cmd
	a.Local.mu.Unlock()
	if err := r.StopAll(ctx); err != nil {
		t.Fatal(err)
	}
	if p.ProcessState == nil || p.ProcessState.Success() {
		t.Errorf("the background process was not stopped: %v", p.ProcessState)
	}
}

func TestLinuxVXLANSetup(t *testing.T) {
	prereq.Root(t, "builds the reference path in a network namespace")
	if _, err := exec.LookPath("ip"); err != nil {
		prereq.Missing(t, "needs iproute2 (ip not on PATH)")
	}
	const hostNS = "bdpt-host"
	ctx := context.Background()
	n := &Node{Name: "local", Runner: &Local{}}
	if _, err := n.Runner.Run(ctx, "", "ip", "netns", "add", hostNS); err != nil {
		t.Fatal(err)
	}
	l := LinuxVXLAN{Prefix: "bdpt", Subnet: netip.MustParsePrefix("10.83.1.0/24"), PeerSubnet: netip.MustParsePrefix("10.83.2.0/24"),
		LocalIP: "127.0.0.1", PeerIP: "127.0.0.2", Pods: 2, MTU: 1400}
	t.Cleanup(func() {
		l.Cleanup(ctx, n, hostNS)
		_, _ = n.Runner.Run(ctx, "", "ip", "netns", "del", hostNS)
	})
	if err := l.Setup(ctx, n, hostNS); err != nil {
		t.Fatal(err)
	}
	for i := range l.Pods {
		out, err := n.Runner.Run(ctx, "", "ip", "-n", l.PodNS(i), "-o", "addr", "show", "eth0")
		if err != nil || !strings.Contains(string(out), l.PodIP(i).String()+"/24") {
			t.Errorf("pod %d: %s, %v; want its address %s", i, out, err, l.PodIP(i))
		}
	}
}
