package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/component-base/configz"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// TestBadArgsFailSetup runs the path the binary takes (flags → app.Setup with this binary's
// plugins) on the sample configuration with one bad arg each, and expects the field error.
// `ecloud-scheduler --config <file>` exits 1 printing the same error.
func TestBadArgsFailSetup(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("..", "..", "..", "manifests", "scheduler", "scheduler-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// Never contacted: plugin args are validated while the profiles are built, before any request.
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := strings.Replace(string(sample), "leaderElect: true", "leaderElect: false", 1)
	base = strings.Replace(base, "leaderElection:", "clientConnection:\n  kubeconfig: "+kubeconfig+"\nleaderElection:", 1)
	cases := []struct {
		name, from, to, want string
	}{
		{"maxSkew 0", "maxSkew: 1", "maxSkew: 0", "args.maxSkew: Invalid value: 0: must be at least 1"},
		{"one datacenter", "datacenters: [dc-a, dc-b]", "datacenters: [dc-a]", "args.datacenters: Invalid value"},
		{"empty topologyKey", "topologyKey: topology.kubernetes.io/zone", `topologyKey: ""`, "args.topologyKey: Required value"},
		{"no datacenters", "datacenters: [dc-a, dc-b]", "", "args.datacenters: Required value"},
		{"unknown policy", "outagePolicy: Hold", "outagePolicy: Ignore", "args.outagePolicy: Unsupported value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(base, tc.from, tc.to, 1)
			if cfg == base {
				t.Fatalf("sample configuration has no %q", tc.from)
			}
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			opts := options.NewOptions()
			fs := pflag.NewFlagSet("ecloud-scheduler", pflag.ContinueOnError)
			for _, f := range opts.Flags.FlagSets {
				fs.AddFlagSet(f)
			}
			if err := fs.Parse([]string{"--config=" + path, "--secure-port=0"}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, _, err := app.Setup(ctx, opts, Plugins()...)
			configz.Delete("componentconfig")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Setup error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
