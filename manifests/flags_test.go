package manifests_test

import (
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// binaries maps the command of an ecloud container to the main package that builds it.
var binaries = map[string]string{
	"/usr/local/bin/ecloud-scheduler": "../scheduler-plugins/cmd/ecloud-scheduler",
	"/usr/local/bin/controller":       "../scheduler-plugins/cmd/controller",
	"/usr/local/bin/ip-controller":    "../cni/cmd/ip-controller",
	"/usr/local/bin/location-relay":   "../cni/cmd/location-relay",
	"/usr/local/bin/netd":             "../cni/cmd/netd",
	"/usr/local/bin/ecloud-ovs":       "../cni/cmd/ecloud-ovs",
	"/usr/local/bin/node-agent":       "../node-agent/cmd/node-agent",
}

var flagName = regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)`)

// TestContainerFlagsExist builds each ecloud binary the manifests run and checks that every flag
// their containers pass is one the binary lists in --help: a renamed or misspelled flag would
// otherwise only show as a crash-looping pod on a real cluster.
func TestContainerFlagsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the five ecloud binaries")
	}
	dir := t.TempDir()
	known := map[string]map[string]bool{} // command -> flags of its --help
	helpOf := func(command string) map[string]bool {
		if f, ok := known[command]; ok {
			return f
		}
		pkg, ok := binaries[command]
		if !ok {
			t.Fatalf("no main package known for command %s: add it to binaries", command)
		}
		bin := filepath.Join(dir, path.Base(command))
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
		// --help exits 0 (pflag) or 2 (flag); either way it prints the flags.
		out, _ := exec.Command(bin, "--help").CombinedOutput()
		flags := map[string]bool{}
		for _, m := range flagName.FindAllStringSubmatch(string(out), -1) {
			flags[m[1]] = true
		}
		if len(flags) < 3 {
			t.Fatalf("%s --help lists %d flags:\n%s", command, len(flags), out)
		}
		known[command] = flags
		return flags
	}
	for _, dir := range []string{".", "overlays/replace-default-scheduler", "overlays/host-ovs"} {
		for _, u := range build(t, dir) {
			ctrs, found, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			if !found {
				continue
			}
			for _, c := range ctrs {
				m := c.(map[string]any)
				cmd, _, _ := unstructured.NestedStringSlice(m, "command")
				args, _, _ := unstructured.NestedStringSlice(m, "args")
				if len(cmd) == 0 {
					t.Errorf("%s: container %v has no command (the image's entrypoint is not checked)", id(u), m["name"])
					continue
				}
				flags := helpOf(cmd[0])
				for _, a := range append(cmd[1:], args...) {
					name, ok := strings.CutPrefix(a, "--")
					if !ok {
						continue
					}
					name, _, _ = strings.Cut(name, "=")
					if !flags[name] {
						t.Errorf("%s: %s passes --%s, which %s --help does not list", dir, id(u), name, cmd[0])
					}
				}
			}
		}
	}
}
