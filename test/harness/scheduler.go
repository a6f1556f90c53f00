package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/component-base/configz"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// KubeconfigPlaceholder in a scheduler configuration is replaced by the control plane's
// kubeconfig path.
const KubeconfigPlaceholder = "__KUBECONFIG__"

// StartScheduler runs the real kube-scheduler in this process (options → app.Setup → app.Run, the
// path app.NewSchedulerCommand takes) with out-of-tree plugins given as app.WithPlugin options.
// config is a KubeSchedulerConfiguration; KubeconfigPlaceholder in it is replaced. Leader election
// should be off and there is no serving port. The scheduler stops when the test ends, so several
// can run, one after another, in one test binary.
//
// app.NewSchedulerCommand itself cannot run in-process: it ignores the cobra context and installs
// a signal handler that panics on a second call.
func (cp *ControlPlane) StartScheduler(tb testing.TB, config string, outOfTree ...schedapp.Option) {
	tb.Helper()
	dir := tb.TempDir()
	cfgPath := filepath.Join(dir, "scheduler-config.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(config, KubeconfigPlaceholder, cp.Kubeconfig)), 0o600); err != nil {
		tb.Fatalf("harness: write scheduler config: %v", err)
	}
	opts := scheduleroptions.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse([]string{"--config=" + cfgPath, "--secure-port=0"}); err != nil {
		tb.Fatalf("harness: scheduler flags: %v", err)
	}
	ctx, cancel := context.WithCancel(cp.Ctx)
	cc, sched, err := schedapp.Setup(ctx, opts, outOfTree...)
	if err != nil {
		cancel()
		configz.Delete("componentconfig")
		tb.Fatalf("harness: scheduler setup: %v", err)
	}
	errCh := make(chan error, 1)
	go func() { errCh <- schedapp.Run(ctx, cc, sched) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-errCh:
			if err != nil && ctx.Err() == nil {
				tb.Errorf("harness: scheduler exited: %v", err)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("harness: scheduler did not stop within 30s")
		}
		configz.Delete("componentconfig") // lets the next scheduler in this binary register
	})
}

// SchedulerConfig returns a KubeSchedulerConfiguration (v1) for one profile with the given name,
// leader election off, talking to this control plane; pluginsYAML is indented under the profile
// (e.g. "plugins:\n  filter:\n    enabled: ..." and "pluginConfig: ...").
func SchedulerConfig(profile, pluginsYAML string) string {
	var b strings.Builder
	b.WriteString("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n")
	b.WriteString("leaderElection:\n  leaderElect: false\n")
	b.WriteString("clientConnection:\n  kubeconfig: " + KubeconfigPlaceholder + "\n  qps: 1000\n  burst: 2000\n")
	b.WriteString("profiles:\n- schedulerName: " + profile + "\n")
	for _, line := range strings.Split(strings.TrimRight(pluginsYAML, "\n"), "\n") {
		if line != "" {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}
