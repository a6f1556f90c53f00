package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
)

func TestArgsFromSchedulerConfig(t *testing.T) {
	const profile = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
profiles:
- schedulerName: ecloud-scheduler
  plugins: {multiPoint: {enabled: [{name: DualDatacenter}]}}
  pluginConfig:
`
	tests := []struct {
		name, file, scheduler string
		want                  *config.DualDatacenterArgs
		wantErr               string
	}{{
		name:      "the manifests' ConfigMap, as mounted into the controller",
		file:      "@" + filepath.Join("..", "..", "..", "manifests", "scheduler", "config.yaml"),
		scheduler: "ecloud-scheduler",
		want:      &config.DualDatacenterArgs{TopologyKey: "topology.kubernetes.io/zone", Datacenters: []string{"dc-a", "dc-b"}, MaxSkew: 1, OutagePolicy: config.OutageDegrade},
	}, {
		name:      "defaults filled as the scheduler fills them",
		file:      profile + "  - name: DualDatacenter\n    args: {datacenters: [dc-x, dc-y]}\n",
		scheduler: "ecloud-scheduler",
		want:      &config.DualDatacenterArgs{TopologyKey: "topology.kubernetes.io/zone", Datacenters: []string{"dc-x", "dc-y"}, MaxSkew: 1, OutagePolicy: config.OutageHold},
	}, {
		name:      "another profile",
		file:      profile + "  - name: DualDatacenter\n    args: {datacenters: [dc-x, dc-y]}\n",
		scheduler: "default-scheduler",
		wantErr:   `no profile "default-scheduler" (profiles: [ecloud-scheduler]): set --scheduler-name`,
	}, {
		name:      "profile without the plugin's config: defaulted, and the datacenters are required",
		file:      profile + "  - name: IPPool\n    args: {}\n",
		scheduler: "ecloud-scheduler",
		wantErr:   "].args.datacenters: Required value",
	}, {
		name:      "unknown field in the args",
		file:      profile + "  - name: DualDatacenter\n    args: {datacentres: [dc-x, dc-y]}\n",
		scheduler: "ecloud-scheduler",
		wantErr:   `unknown field "datacentres"`,
	}, {
		name:      "not a scheduler configuration",
		file:      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		scheduler: "ecloud-scheduler",
		wantErr:   "decoding the scheduler configuration",
	}, {
		name:      "missing file",
		file:      "@/nonexistent/config.yaml",
		scheduler: "ecloud-scheduler",
		wantErr:   "reading the scheduler configuration",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.TrimPrefix(tc.file, "@")
			if path == tc.file {
				path = filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := argsFromSchedulerConfig(path, tc.scheduler)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.TopologyKey != tc.want.TopologyKey || strings.Join(got.Datacenters, ",") != strings.Join(tc.want.Datacenters, ",") ||
				got.MaxSkew != tc.want.MaxSkew || got.OutagePolicy != tc.want.OutagePolicy {
				t.Fatalf("args %+v, want %+v", got, *tc.want)
			}
		})
	}
}
