package plugin

import (
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

func TestParseNetConf(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		code     uint   // 0 = valid
		contains string // in the error details
		socket   string
	}{
		{"minimal", `{"cniVersion":"1.1.0","name":"ecloud","type":"ecloud-cni"}`, 0, "", nodeapi.DefaultSocket},
		{"own socket", `{"cniVersion":"1.0.0","name":"ecloud","type":"ecloud-cni","socket":"/run/x.sock"}`, 0, "", "/run/x.sock"},
		{"not JSON", `{"cniVersion":`, nodeapi.CodeDecoding, "", ""},
		{"no name", `{"cniVersion":"1.1.0","type":"ecloud-cni"}`, nodeapi.CodeInvalidConfig, "name", ""},
		{"no version", `{"name":"ecloud"}`, nodeapi.CodeInvalidConfig, "cniVersion", ""},
		{"other type", `{"cniVersion":"1.1.0","name":"n","type":"bridge"}`, nodeapi.CodeInvalidConfig, "type", ""},
		{"relative socket", `{"cniVersion":"1.1.0","name":"n","socket":"netd.sock"}`, nodeapi.CodeInvalidConfig, "socket", ""},
		{"long socket", `{"cniVersion":"1.1.0","name":"n","socket":"/` + strings.Repeat("x", 120) + `"}`, nodeapi.CodeInvalidConfig, "socket", ""},
		{"system datapath", `{"cniVersion":"1.1.0","name":"n","datapath":"system"}`, 0, "", nodeapi.DefaultSocket},
		{"unknown datapath", `{"cniVersion":"1.1.0","name":"n","datapath":"dpdk"}`, nodeapi.CodeInvalidConfig, "datapath", ""},
		{"bad timeout", `{"cniVersion":"1.1.0","name":"n","timeoutSeconds":-1}`, nodeapi.CodeInvalidConfig, "timeoutSeconds", ""},
		{"gc entry without ifname", `{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"c"}]}`, nodeapi.CodeInvalidConfig, "valid-attachments[0].ifname", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseNetConf([]byte(tt.in))
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("ParseNetConf: %v", err)
				}
				if c.Socket != tt.socket || c.Timeout() != DefaultTimeout {
					t.Errorf("defaults: socket %q timeout %v", c.Socket, c.Timeout())
				}
				return
			}
			if got := nodeapi.CodeOf(err); got != tt.code {
				t.Fatalf("code %d (%v), want %d", got, err, tt.code)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not name %q", err, tt.contains)
			}
		})
	}
}

func TestDatapathDecidesTxChecksumOffload(t *testing.T) {
	for _, tt := range []struct {
		conf  string
		txOff bool
	}{
		{`{"cniVersion":"1.1.0","name":"n"}`, true},
		{`{"cniVersion":"1.1.0","name":"n","datapath":"netdev"}`, true},
		{`{"cniVersion":"1.1.0","name":"n","datapath":"system"}`, false},
	} {
		c, err := ParseNetConf([]byte(tt.conf))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.txChecksumOff(); got != tt.txOff {
			t.Errorf("%s: txChecksumOff = %v, want %v", tt.conf, got, tt.txOff)
		}
	}
}

func TestPrevIP(t *testing.T) {
	c, err := ParseNetConf([]byte(`{"cniVersion":"1.1.0","name":"n","prevResult":{"cniVersion":"1.1.0","ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1","interface":1}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ip, ok := c.prevIP(); !ok || ip.String() != "10.1.0.5/24" {
		t.Errorf("prevIP = %v, %v", ip, ok)
	}
	c, _ = ParseNetConf([]byte(`{"cniVersion":"1.1.0","name":"n"}`))
	if _, ok := c.prevIP(); ok {
		t.Error("prevIP without prevResult")
	}
}

// FuzzParseNetConf: any input yields a config or a coded error, never a panic, and a config
// always passes its own validation.
func FuzzParseNetConf(f *testing.F) {
	for _, s := range []string{
		`{"cniVersion":"1.1.0","name":"ecloud","type":"ecloud-cni"}`,
		`{"cniVersion":"1.1.0","name":"ecloud","socket":"/run/ecloud/netd.sock","timeoutSeconds":5}`,
		`{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"c","ifname":"eth0"}]}`,
		`{"cniVersion":"1.1.0","name":"n","prevResult":{"ips":[{"address":"10.1.0.5/24"}]}}`,
		`{"prevResult":{"ips":[{"address":7}]}}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseNetConf(data)
		if err != nil {
			if code := nodeapi.CodeOf(err); code != nodeapi.CodeDecoding && code != nodeapi.CodeInvalidConfig {
				t.Fatalf("code %d for %q", code, data)
			}
			return
		}
		if errs := c.validate(); len(errs) > 0 {
			t.Fatalf("accepted config fails validation: %v", errs)
		}
		_, _ = c.prevIP()
	})
}
