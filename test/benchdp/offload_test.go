package benchdp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeNIC is a Runner that answers iperf3, the RR client and ethtool as they answer on a node
// whose device dev can turn TSO off (or, with fixed set, cannot: "off [fixed]" stays as it is).
type fakeNIC struct {
	log   []string
	tso   string
	fixed bool
	fail  string // a command starting with this fails
}

func (f *fakeNIC) Run(_ context.Context, _ string, argv ...string) ([]byte, error) {
	cmd := strings.Join(argv, " ")
	f.log = append(f.log, cmd)
	if f.fail != "" && strings.HasPrefix(cmd, f.fail) {
		return nil, errors.New("exit status 1")
	}
	switch {
	case argv[0] == "iperf3":
		return []byte(`{"end":{"sum_sent":{"retransmits":0},"sum_received":{"seconds":3,"bits_per_second":1e9}}}`), nil
	case len(argv) > 1 && argv[1] == "rr-client":
		return EncodeRR([]time.Duration{time.Millisecond}), nil
	case argv[0] == "ethtool" && argv[1] == "-K":
		if !f.fixed {
			f.tso = argv[4]
		}
		return nil, nil
	case argv[0] == "ethtool" && argv[1] == "-k":
		return []byte("Features for eth0:\nrx-checksumming: on [fixed]\ntcp-segmentation-offload: " + f.tso + "\n\ttx-tcp-segmentation: " + f.tso + "\n"), nil
	}
	return nil, errors.New("unexpected command " + cmd)
}

func (f *fakeNIC) Start(context.Context, string, ...string) error { return nil }
func (f *fakeNIC) StopAll(context.Context) error                  { return nil }

func TestRunPathWithoutTSO(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nic     fakeNIC
		wantErr string
		want    []string // the commands, in order
		after   string   // TSO's state at the end ("" not checked)
	}{
		{name: "off for the run, on after it", nic: fakeNIC{tso: "on"},
			want: []string{"ethtool -k eth0", "ethtool -K eth0 tso off", "ethtool -k eth0", "iperf3", "rr-client", "ethtool -K eth0 tso on", "ethtool -k eth0"}, after: "on"},
		{name: "reverted after a failed run", nic: fakeNIC{tso: "on", fail: "iperf3"}, wantErr: "throughput",
			want: []string{"ethtool -k eth0", "ethtool -K eth0 tso off", "ethtool -k eth0", "iperf3", "ethtool -K eth0 tso on", "ethtool -k eth0"}, after: "on"},
		{name: "a device already without TSO is left so", nic: fakeNIC{tso: "off"},
			want: []string{"ethtool -k eth0", "iperf3", "rr-client"}, after: "off"},
		{name: "a device that keeps TSO on", nic: fakeNIC{tso: "on", fixed: true}, wantErr: `tcp-segmentation-offload is "on" after setting it off`,
			want: []string{"ethtool -k eth0", "ethtool -K eth0 tso off", "ethtool -k eth0", "ethtool -K eth0 tso on", "ethtool -k eth0"}, after: "on"},
		{name: "ethtool fails", nic: fakeNIC{tso: "on", fail: "ethtool -K"}, wantErr: "apply its setting",
			want: []string{"ethtool -k eth0", "ethtool -K eth0 tso off", "ethtool -K eth0 tso on"}, after: "on"},
		{name: "ethtool lists no TSO", nic: fakeNIC{tso: ""}, wantErr: "lists no tcp-segmentation-offload",
			want: []string{"ethtool -k eth0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nic := tc.nic
			n := &Node{Name: "guest0", Runner: &nic, Tool: "benchdp"}
			p := Path{Key: "wire_segmented", Client: Endpoint{Node: n, IP: "10.0.0.1"}, Server: Endpoint{Node: n, IP: "10.0.0.2"},
				Setting: WithoutTSO("eth0", n)}
			opt := Options{}
			opt.Default()
			mbps, _, rr, err := runPath(context.Background(), p, opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil || mbps != 1000 || len(rr) != 1 {
				t.Fatalf("got %v Mbit/s, %d round trips, %v", mbps, len(rr), err)
			}
			var got []string
			for _, c := range nic.log {
				switch f := strings.Fields(c); {
				case f[0] == "iperf3":
					c = "iperf3"
				case f[1] == "rr-client":
					c = "rr-client"
				}
				got = append(got, c)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("commands\n%q\nwant\n%q", got, tc.want)
			}
			if tc.after != "" && nic.tso != tc.after {
				t.Errorf("TSO left %s, want %s", nic.tso, tc.after)
			}
		})
	}
}

func TestOffloadState(t *testing.T) {
	out := "Features for eth0:\ntcp-segmentation-offload: off\n\ttx-tcp-segmentation: off\ntx-udp_tnl-segmentation: off [fixed]\n"
	for feature, want := range map[string]string{"tcp-segmentation-offload": "off", "tx-udp_tnl-segmentation": "off", "generic-receive-offload": ""} {
		if got := offloadState(out, feature); got != want {
			t.Errorf("offloadState(%s) = %q, want %q", feature, got, want)
		}
	}
}
