package scheme

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
)

// TestDecodeKubeSchedulerConfiguration decodes args the way the scheduler does (its strict codec on
// a KubeSchedulerConfiguration) and checks they arrive typed, defaulted and converted.
func TestDecodeKubeSchedulerConfiguration(t *testing.T) {
	cases := []struct {
		name    string
		args    string
		want    *config.DualDatacenterArgs
		wantErr bool
	}{
		{
			name: "defaults fill everything but datacenters",
			args: "      datacenters: [dc-a, dc-b]\n",
			want: &config.DualDatacenterArgs{TopologyKey: "topology.kubernetes.io/zone", Datacenters: []string{"dc-a", "dc-b"}, MaxSkew: 1, OutagePolicy: config.OutageHold},
		},
		{
			name: "explicit values",
			args: "      topologyKey: example.com/dc\n      datacenters: [dc-x, dc-y, dc-z]\n      maxSkew: 2\n      outagePolicy: Degrade\n",
			want: &config.DualDatacenterArgs{TopologyKey: "example.com/dc", Datacenters: []string{"dc-x", "dc-y", "dc-z"}, MaxSkew: 2, OutagePolicy: config.OutageDegrade},
		},
		{
			name:    "unknown field is rejected by the strict decoder",
			args:    "      datacenters: [dc-a, dc-b]\n      maxskew: 2\n",
			wantErr: true,
		},
	}
	codecs := serializer.NewCodecFactory(Scheme, serializer.EnableStrict)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: ecloud-scheduler\n  pluginConfig:\n  - name: DualDatacenter\n    args:\n" + tc.args
			obj, _, err := codecs.UniversalDecoder().Decode([]byte(data), nil, nil)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want a decode error, got %+v", obj)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			cfg, ok := obj.(*schedconfig.KubeSchedulerConfiguration)
			if !ok {
				t.Fatalf("decoded a %T", obj)
			}
			var got *config.DualDatacenterArgs
			for _, pc := range cfg.Profiles[0].PluginConfig {
				if pc.Name == "DualDatacenter" {
					if got, ok = pc.Args.(*config.DualDatacenterArgs); !ok {
						t.Fatalf("args arrived as %T, not typed", pc.Args)
					}
				}
			}
			if got == nil {
				t.Fatal("no DualDatacenter pluginConfig after decoding")
			}
			got.TypeMeta = tc.want.TypeMeta
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}
