package ippool

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
)

// listingHandle is a Handle that lists its profile's plugins, as the scheduler framework does.
type listingHandle struct {
	fwk.Handle
	plugins *config.Plugins
}

func (h listingHandle) ListPlugins() *config.Plugins { return h.plugins }

func TestBindsFirst(t *testing.T) {
	binds := func(names ...string) fwk.Handle {
		ps := &config.Plugins{}
		for _, n := range names {
			ps.Bind.Enabled = append(ps.Bind.Enabled, config.Plugin{Name: n})
		}
		return listingHandle{plugins: ps}
	}
	for _, tc := range []struct {
		name   string
		handle fwk.Handle
		want   bool
	}{
		{"IPPool is the first binder", binds(Name, "DefaultBinder"), true},
		{"DefaultBinder binds first", binds("DefaultBinder", Name), false},
		{"IPPool is no binder", binds("DefaultBinder"), false},
		{"no binder at all", binds(), false},
		{"handle that cannot list its plugins", struct{ fwk.Handle }{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &IPPool{handle: tc.handle}
			if got := p.bindsFirst(context.Background()); got != tc.want {
				t.Errorf("bindsFirst = %v, want %v", got, tc.want)
			}
			// PreBind has work exactly when Bind does not write the claim.
			_, st := p.PreBindPreFlight(context.Background(), nil, &v1.Pod{}, "node-1")
			if st.IsSkip() != tc.want {
				t.Errorf("PreBindPreFlight = %v, want Skip %v", st, tc.want)
			}
		})
	}
}
