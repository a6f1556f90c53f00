package manifests_test

import (
	"os/exec"
	"testing"
)

// TestPrometheusRules runs Prometheus' own checker and the rules' unit tests (promtool, from
// Debian's prometheus package, which hack/install-deps.sh installs for make test and make up).
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; `make deps` installs it as root)")
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus/ecloud-alerts.yaml"},
		{"test", "rules", "prometheus/ecloud-alerts_test.yaml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
