package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		fields []string
	}{
		{"defaults with a node", func(*Config) {}, nil},
		{"no node", func(c *Config) { c.NodeName = "" }, []string{"nodeName"}},
		{"short step", func(c *Config) { c.Step = time.Millisecond }, []string{"step"}},
		{"bad driver", func(c *Config) { c.Cgroup.Driver = "docker" }, []string{"cgroup.driver"}},
		{"odin url", func(c *Config) { c.Odin.URL = "ftp//x" }, []string{"odin.url"}},
		{"odin ok", func(c *Config) { c.Odin.URL = "http://odin:6060/api/push" }, nil},
		{"odin password without user", func(c *Config) {
			c.Odin.URL, c.Odin.PasswordFile = "https://odin/api/push", "/etc/pw"
		}, []string{"odin.username"}},
		{"odin spool", func(c *Config) {
			c.Odin.URL, c.Odin.SpoolMaxSize, c.Odin.SpoolMaxAge = "http://o/api/push", 10, time.Second
		}, []string{"odin.spoolMaxAge", "odin.spoolMaxSize"}},
		{"rdt prefix", func(c *Config) { c.RDT.Enabled, c.RDT.GroupPrefix = true, "" }, []string{"rdt.groupPrefix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.NodeName = "n"
			tc.mutate(&c)
			errs := c.Validate()
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("invalid fields = %v, want %v (%v)", got, tc.fields, errs)
			}
		})
	}
}
