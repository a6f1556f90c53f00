package netd

import (
	"strings"
	"testing"
)

func TestLocationSourceValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  LocationSource
		want []string // fields named in the errors; none: valid
	}{
		{"the apiserver (default)", LocationSource{}, nil},
		{"a relay service", LocationSource{RelayService: "kube-system/ecloud-location-relay", TokenFile: "/t"}, nil},
		{"relay URLs", LocationSource{Relays: []string{"http://192.0.2.1:9465", "https://relay:9465"}, TokenFile: "/t"}, nil},
		{"both", LocationSource{RelayService: "a/b", Relays: []string{"http://192.0.2.1:9465"}, TokenFile: "/t"}, []string{"locations.relays"}},
		{"a service without namespace", LocationSource{RelayService: "relay", TokenFile: "/t"}, []string{"locations.relayService"}},
		{"a service with two slashes", LocationSource{RelayService: "a/b/c", TokenFile: "/t"}, []string{"locations.relayService"}},
		{"a URL without scheme", LocationSource{Relays: []string{"192.0.2.1:9465"}, TokenFile: "/t"}, []string{"locations.relays[0]"}},
		{"relays without a token", LocationSource{Relays: []string{"http://192.0.2.1:9465"}}, []string{"locations.tokenFile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{NodeName: "n1", Locations: tc.src}
			c.Default()
			errs := c.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d naming %v", errs, len(tc.want), tc.want)
			}
			msg := errs.ToAggregate()
			for _, f := range tc.want {
				if !strings.Contains(msg.Error(), "netd."+f) {
					t.Errorf("errors %q do not name netd.%s", msg, f)
				}
			}
		})
	}
}
